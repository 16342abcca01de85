"""What `--symbolic` costs: the draw with shapes as expressions against the plain draw.

`python benchmarks/symbolic.py [--runs 3] [--only resnet18,hf:bert]` draws each model to SVG
both ways, alternating, two ways: the command a user runs (`fxviz MODEL -o m.svg` and the
same with `--symbolic`, each a new process), and in this process after a first draw of each
(imports and caches warm: what a gallery or a notebook pays per model). It prints the median
seconds and their ratios, with what the symbolic draw found: the share of tensor values given
expressions, and the constraints.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import fxviz
from fxviz.graph import Graph

REPO = Path(__file__).parents[1]
MODELS = [
    ("resnet18", ()),
    ("vit_b_16", ()),
    ("convnext_tiny", ()),
    (f"{REPO}/examples/lstm_tagger.py:LSTMTagger", ()),
    ("hf:bert", ("num_hidden_layers=2",)),
    ("hf:gpt2", ("num_hidden_layers=2",)),
    ("hf:t5", ("num_layers=2",)),
    ("hf:whisper", ("encoder_layers=2", "decoder_layers=2")),
    ("hf:llama", ("num_hidden_layers=2",)),
]


def _draw(loaded: fxviz.LoadedModel, out: Path, symbolic: bool) -> tuple[float, Graph]:
    started = time.perf_counter()
    graph = fxviz.trace(loaded, symbolic=symbolic)
    graph.save(out)
    return time.perf_counter() - started, graph


def _command(spec: str, config: tuple[str, ...], out: Path, symbolic: bool) -> float:
    fxviz_cli = Path(sys.executable).with_name("fxviz")
    command = [str(fxviz_cli), spec, *(f"--config={c}" for c in config), "-o", str(out), "-q"]
    started = time.perf_counter()
    subprocess.run([*command, *(["--symbolic"] if symbolic else [])], check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated specs")
    options = parser.parse_args()
    chosen = [m for m in MODELS if not options.only or m[0] in options.only.split(",")]
    print("## `--symbolic` against the plain draw: `python benchmarks/symbolic.py`\n")
    print(
        f"torch {torch.__version__}, {platform.machine()}, median of {options.runs} runs "
        "each, alternating: `fxviz MODEL -o m.svg` and with `--symbolic`, each a new "
        "process; then in this process, after a first draw of each, the whole draw to SVG "
        "(trace, views, Graphviz). `with expr`: the share of tensor values drawn as "
        "expressions.\n"
    )
    print(
        "| model | `fxviz` s | `--symbolic` s | ratio | in process: plain s | symbolic s "
        "| ratio | with expr | constraints |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "m.svg"
        for spec, config in chosen:
            loaded = fxviz.load(spec, config=config)
            _draw(loaded, out, False)
            _, graph = _draw(loaded, out, True)
            plain, symbolic, cli_plain, cli_symbolic = [], [], [], []
            for _ in range(options.runs):
                plain.append(_draw(loaded, out, False)[0])
                symbolic.append(_draw(loaded, out, True)[0])
                cli_plain.append(_command(spec, config, out, False))
                cli_symbolic.append(_command(spec, config, out, True))
            a, b = statistics.median(plain), statistics.median(symbolic)
            c, d = statistics.median(cli_plain), statistics.median(cli_symbolic)
            tensors = [v for n in graph.nodes for v in n.outputs if v.is_tensor]
            share = sum(v.expr is not None for v in tensors) / max(len(tensors), 1)
            found = "; ".join(c.text for c in graph.symbolic.constraints) if graph.symbolic else ""
            name = Path(spec).name.split(":")[-1] if "/" in spec else spec
            print(
                f"| {name} | {c:.2f} | {d:.2f} | {d / c:.2f} | {a:.2f} | {b:.2f} | {b / a:.2f} "
                f"| {share:.0%} | {found or '–'} |"
            )
            sys.stdout.flush()


if __name__ == "__main__":
    main()
