"""`fxviz compile` against `torch._dynamo.explain`, in one process: the time of drawing
torch.compile's graphs onto resnet18 against explain alone (a ratio), and for each model the
graphs and breaks both find.

    python benchmarks/compile.py [--runs 5]

Prints a Markdown section for RESULTS.md."""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import subprocess
import time
from collections import Counter
from pathlib import Path

import torch

import fxviz
from fxviz import api

REPO = Path(__file__).parents[1]
EXAMPLES = REPO / "examples" / "graph_breaks.py"
MODELS = [
    ("resnet18", {}),
    ("vit_b_16", {}),
    ("hf:gpt2", {"layers": 2}),
    *(
        (f"{EXAMPLES}:{name}", {})
        for name in ("ItemScale", "Printing", "DataDependentIf", "NumpyMedian", "CallCounter")
    ),
    ("fasterrcnn_mobilenet_v3_large_fpn", {}),
]


def explain(spec: str, extra: dict[str, int], device: str) -> object:
    loaded = api.load(spec, device=device, **extra)  # type: ignore[arg-type]
    logging.getLogger("torch._dynamo").setLevel(logging.ERROR)
    return torch._dynamo.explain(loaded.module)(*loaded.args, **loaded.kwargs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    ).stdout.strip()
    print("## torch.compile's graph breaks: `python benchmarks/compile.py`\n")
    print(
        f"torch {torch.__version__}, {platform.machine()}, commit {commit}, "
        f"{time.strftime('%Y-%m-%d')}. Each model through `fxviz.compiled` (what `fxviz compile` "
        "runs: load, trace, two calls under a capturing backend, matching) and through "
        "`torch._dynamo.explain` on the same model and inputs.\n"
    )
    print("| model | device | graphs (explain) | breaks (explain) | recompiles | by reason | s |")
    print("|---|---|---|---|---|---|---|")
    fxviz.compiled("resnet18")  # warm: imports, first dynamo use
    for spec, extra in MODELS:
        start = time.perf_counter()
        graph = fxviz.compiled(spec, **extra)  # type: ignore[arg-type]
        seconds = time.perf_counter() - start
        c = graph.compilation
        assert c is not None
        device = (
            "cpu" if any("torch.compile ran on cpu" in n for n in graph.notes) else graph.device
        )
        out = explain(spec, extra, device)
        reasons = Counter(b.reason for b in c.breaks)
        said = "; ".join(f"{n} × {r}" for r, n in reasons.most_common()) or "–"
        name = spec.replace(f"{EXAMPLES}:", "graph_breaks.py:")
        print(
            f"| {name} | {device} | {len(c.graphs)} ({out.graph_count}) | {len(c.breaks)} "  # type: ignore[attr-defined]
            f"({len(out.break_reasons)}) | {len(c.recompiles)} | {said} | {seconds:.1f} |"  # type: ignore[attr-defined]
        )
    loaded = api.load("resnet18")
    ours, theirs = [], []
    for _ in range(runs):
        start = time.perf_counter()
        fxviz.compiled("resnet18")
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        torch._dynamo.explain(loaded.module)(*loaded.args)
        theirs.append(time.perf_counter() - start)
    a, b = statistics.median(ours), statistics.median(theirs)
    print(
        f"\nresnet18 on meta, {runs} runs each, alternating, medians: `fxviz.compiled` "
        f"{a:.2f} s, `torch._dynamo.explain` alone {b:.2f} s: **{a / b:.2f}×** "
        f"(fxviz's runs {', '.join(f'{t:.2f}' for t in ours)}; explain's "
        f"{', '.join(f'{t:.2f}' for t in theirs)})."
    )


if __name__ == "__main__":
    main()
