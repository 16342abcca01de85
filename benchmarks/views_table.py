"""How much the default views take away: the README's table of node counts.

    python benchmarks/views_table.py

For BERT-base and an 80-layer Llama (node counts do not depend on widths, so the Llama is
built narrow to keep this quick), prints the traced nodes, the nodes the default picture
draws, and the same with `--depth 2` and with `--all-ops`.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

MODELS = {
    "BERT-base": ("hf:bert", []),
    "Llama, 80 layers": (
        "hf:llama",
        [
            "num_hidden_layers=80",
            "hidden_size=64",
            "intermediate_size=128",
            "num_attention_heads=4",
            "num_key_value_heads=2",
            "vocab_size=100",
        ],
    ),
}


def main() -> None:
    import fxviz
    from fxviz.drawing import draw_options, picture

    print("| model | traced nodes | drawn by default | `--depth 2` | `--all-ops` |")
    print("|---|---|---|---|---|")
    for label, (spec, config) in MODELS.items():
        graph = fxviz.trace(spec, config=config)
        counts = [
            len(picture(graph, draw_options(**options)).nodes)
            for options in ({}, {"depth": 2}, {"all_ops": True})
        ]
        print(f"| {label} | {len(graph.nodes):,} | " + " | ".join(f"{c:,}" for c in counts) + " |")


if __name__ == "__main__":
    main()
