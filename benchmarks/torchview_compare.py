"""fxviz against torchview, the best-known peer, on the same models in the same process.

    pip install -e ".[bench]"      # torchview 0.2.7
    python benchmarks/torchview_compare.py [--device cpu|meta] [--runs 5]

Both tools get the same model object (torchvision's built without weights; Hugging Face's
BERT-base and GPT-2 from their default configs, as `fxviz.load("hf:bert")` builds them) and
the same inputs, and each produces its default diagram as DOT source: torchview's
`draw_graph(...).visual_graph.source`, fxviz's `trace` + default views + `to_dot`. Graphviz
layout is left out: it is the same program for both. The two tools alternate, `--runs`
times each after one warm-up call of each, and the table reports the medians and fxviz's
time as a ratio of torchview's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torchvision

os.environ.setdefault("HF_HUB_OFFLINE", "1")

MODELS = {
    "resnet18": (1, 3, 224, 224),
    "resnet50": (1, 3, 224, 224),
    "mobilenet_v3_small": (1, 3, 224, 224),
    "efficientnet_b0": (1, 3, 224, 224),
    "convnext_tiny": (1, 3, 224, 224),
    "vit_b_16": (1, 3, 224, 224),
    "densenet121": (1, 3, 224, 224),
}
HUGGING_FACE = ["hf:bert", "hf:gpt2"]  # default configs: BERT-base, GPT-2 (124M), 12 layers


def timed(run: Callable[[], str]) -> tuple[float, str]:
    start = time.perf_counter()
    dot = run()
    return time.perf_counter() - start, dot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "meta"])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    try:
        import torchview
    except ImportError:
        raise SystemExit("torchview is not installed: pip install torchview==0.2.7") from None
    import fxviz

    cases: list[tuple[str, Any, Callable[[], str], Callable[[], str]]] = []
    for name, shape in MODELS.items():
        with torch.device(args.device):
            model = torchvision.models.get_model(name, weights=None).eval()
            x = torch.zeros(shape)

        def with_torchview(model: Any = model, x: torch.Tensor = x) -> str:
            drawn = torchview.draw_graph(model, input_data=x, device=args.device)
            return str(drawn.visual_graph.source)

        def with_fxviz(model: Any = model, x: torch.Tensor = x) -> str:
            return fxviz.trace(model, x).to_dot()  # the default picture, views applied

        cases.append((name, model, with_torchview, with_fxviz))
    for spec in HUGGING_FACE:
        loaded = fxviz.load(spec, device=args.device)

        def hf_torchview(loaded: Any = loaded) -> str:
            inputs = dict(loaded.kwargs)
            drawn = torchview.draw_graph(loaded.module, input_data=inputs, device=args.device)
            return str(drawn.visual_graph.source)

        def hf_fxviz(loaded: Any = loaded) -> str:
            return fxviz.trace(loaded).to_dot()

        cases.append((spec, loaded.module, hf_torchview, hf_fxviz))

    print(
        f"device {args.device}; medians of {args.runs} alternating runs after a warm-up; "
        f"DOT source, no layout; torch {torch.__version__}, torchview {torchview.__version__}"
    )
    print()
    print("| model | torchview | fxviz | fxviz / torchview | boxes torchview / fxviz |")
    print("|---|---|---|---|---|")
    ratios = []
    for name, _, with_torchview, with_fxviz in cases:
        try:
            with_torchview()
        except Exception as exc:  # a peer's failure is a row, not the end of the table
            with_fxviz()
            fx = statistics.median(timed(with_fxviz)[0] for _ in range(args.runs))
            failed = str(exc).splitlines()[0][:60]
            print(f"| {name} | failed: {failed} | {fx * 1000:.0f} ms | – | – |")
            continue
        with_fxviz()  # warm both: first calls import and compile lazily
        tv_times, fx_times = [], []
        for _ in range(args.runs):
            tv_time, tv_dot = timed(with_torchview)
            fx_time, fx_dot = timed(with_fxviz)
            tv_times.append(tv_time)
            fx_times.append(fx_time)
        tv, fx = statistics.median(tv_times), statistics.median(fx_times)
        ratios.append(fx / tv)
        boxes = f"{tv_dot.count('[label=')} / {fx_dot.count('[label=')}"
        print(f"| {name} | {tv * 1000:.0f} ms | {fx * 1000:.0f} ms | {fx / tv:.2f} | {boxes} |")
    print()
    mean, worst = statistics.geometric_mean(ratios), max(ratios)
    print(f"fxviz / torchview: geometric mean {mean:.2f}, worst {worst:.2f}")


if __name__ == "__main__":
    main()
