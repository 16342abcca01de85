"""fxviz against torchview, the best-known peer, on the same models in the same process.

    pip install -e ".[bench]"      # torchview 0.2.7
    python benchmarks/torchview_compare.py [--device cpu|meta] [--repeat 3]

Both tools get the same model object (torchvision, built without weights) and the same input,
and each produces its default diagram as DOT source: torchview's `draw_graph(...)
.visual_graph.source`, fxviz's `trace` + default views + `to_dot`. Graphviz layout is left
out: it is the same program for both. Each timing is the best of `--repeat` runs, the two
tools alternating, and the table reports fxviz's time as a ratio of torchview's.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torchvision

MODELS = {
    "resnet18": (1, 3, 224, 224),
    "resnet50": (1, 3, 224, 224),
    "mobilenet_v3_small": (1, 3, 224, 224),
    "efficientnet_b0": (1, 3, 224, 224),
    "convnext_tiny": (1, 3, 224, 224),
    "vit_b_16": (1, 3, 224, 224),
    "densenet121": (1, 3, 224, 224),
}


def best_of(repeat: int, run: Callable[[], str]) -> tuple[float, str]:
    times, dot = [], ""
    for _ in range(repeat):
        start = time.perf_counter()
        dot = run()
        times.append(time.perf_counter() - start)
    return min(times), dot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "meta"])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    try:
        import torchview
    except ImportError:
        raise SystemExit("torchview is not installed: pip install torchview==0.2.7") from None
    import fxviz

    print(f"device {args.device}; best of {args.repeat}; DOT source, no layout")
    print(f"{'model':20} {'torchview':>10} {'fxviz':>8} {'ratio':>6}   nodes tv / fxviz")
    ratios = []
    for name, shape in MODELS.items():
        with torch.device(args.device):
            model = torchvision.models.get_model(name, weights=None).eval()
            x = torch.zeros(shape)

        def with_torchview(model: torch.nn.Module = model, x: torch.Tensor = x) -> str:
            drawn = torchview.draw_graph(model, input_data=x, device=args.device)
            return str(drawn.visual_graph.source)

        def with_fxviz(model: torch.nn.Module = model, x: torch.Tensor = x) -> str:
            return fxviz.trace(model, x).to_dot()  # the default picture, views applied

        with_torchview(), with_fxviz()  # warm both: first calls import and compile lazily
        tv_times, fx_times = [], []
        for _ in range(args.repeat):
            tv_time, tv_dot = best_of(1, with_torchview)
            fx_time, fx_dot = best_of(1, with_fxviz)
            tv_times.append(tv_time)
            fx_times.append(fx_time)
        tv, fx = min(tv_times), min(fx_times)
        ratios.append(fx / tv)
        nodes = f"{tv_dot.count('[label=')} / {fx_dot.count('[label=')}"
        print(f"{name:20} {tv:9.2f}s {fx:7.2f}s {fx / tv:6.2f}   {nodes}")
    geomean = 1.0
    for r in ratios:
        geomean *= r
    print(f"geometric mean of fxviz / torchview: {geomean ** (1 / len(ratios)):.2f}")


if __name__ == "__main__":
    main()
