"""Draw every model in torchvision.models.list_models() with its default input.

    python benchmarks/zoo.py            # all of them; prints `torchvision zoo: N/N drawn`
    python benchmarks/zoo.py resnet vit # only names containing these

Each model is traced (auto: fx, then torch.export, then a recorded run) on meta, and its DOT
is built; failures are listed with their one-line reason. Exit status 1 if any failed.
"""

from __future__ import annotations

import sys
import time
from collections import Counter

import fxviz
from fxviz.errors import FxvizError
from fxviz.loaders.torchvision import list_torchvision_models


def main(filters: list[str]) -> int:
    names = [n for n in list_torchvision_models() if not filters or any(f in n for f in filters)]
    start = time.perf_counter()
    failed: list[tuple[str, str]] = []
    tracers: Counter[str] = Counter()
    for name in names:
        began = time.perf_counter()
        try:
            graph = fxviz.trace(name)
            graph.to_dot()
        except FxvizError as exc:
            failed.append((name, str(exc)))
            print(f"FAIL {name}: {exc}", flush=True)
            continue
        tracers[graph.tracer] += 1
        print(
            f"ok   {name}: {graph.tracer} on {graph.device}, {len(graph.nodes)} nodes, "
            f"{time.perf_counter() - began:.1f}s",
            flush=True,
        )
    total = time.perf_counter() - start
    by_tracer = ", ".join(f"{k} {v}" for k, v in sorted(tracers.items()))
    drawn = len(names) - len(failed)
    print(f"torchvision zoo: {drawn}/{len(names)} drawn in {total:.0f}s ({by_tracer})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
