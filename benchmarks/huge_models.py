"""The largest open model shapes, drawn on meta from their configs with no layer shrinking:
wall time and peak memory of each whole `fxviz` process.

    python benchmarks/huge_models.py            # every shape below, one process each
    python benchmarks/huge_models.py deepseek_v3

Each line is one `fxviz hf:TYPE --config … -o x.svg` process, as a user runs it: import,
build on meta (no weights allocated), trace, fold, lay out and write the SVG.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHAPES: dict[str, tuple[str, list[str]]] = {
    # Llama-3.1-405B: hidden 16384, 126 layers, 128 heads, 8 KV heads, intermediate 53248
    "llama-3.1-405b": (
        "hf:llama",
        [
            "hidden_size=16384",
            "num_hidden_layers=126",
            "num_attention_heads=128",
            "num_key_value_heads=8",
            "intermediate_size=53248",
            "vocab_size=128256",
        ],
    ),
    # Mixtral-8x22B: 8 experts, 2 per token, 56 layers
    "mixtral-8x22b": (
        "hf:mixtral",
        [
            "hidden_size=6144",
            "num_hidden_layers=56",
            "num_attention_heads=48",
            "num_key_value_heads=8",
            "intermediate_size=16384",
            "vocab_size=32768",
        ],
    ),
    # transformers' default configs
    "qwen3_moe": ("hf:qwen3_moe", []),
    "deepseek_v3": ("hf:deepseek_v3", []),  # 671B parameters, 256 experts, 61 layers
}


def run(name: str, spec: str, config: list[str], folder: Path) -> None:
    fxviz = Path(sys.executable).with_name("fxviz")
    command = [str(fxviz), spec, "-o", str(folder / f"{name}.svg")]
    for item in config:
        command += ["--config", item]
    start = time.perf_counter()
    child = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    output = child.stdout.read().decode() if child.stdout else ""
    last = output.strip().splitlines()[-1] if output.strip() else ""
    peak = usage.ru_maxrss / 1024 / 1024  # KiB -> GiB
    print(f"{name}: {seconds:.1f} s, peak {peak:.2f} GiB, exit {os.waitstatus_to_exitcode(status)}")
    print(f"  {last}")


def main() -> None:
    chosen = sys.argv[1:] or list(SHAPES)
    with tempfile.TemporaryDirectory() as folder:
        for name in chosen:
            spec, config = SHAPES[name]
            run(name, spec, config, Path(folder))


if __name__ == "__main__":
    main()
