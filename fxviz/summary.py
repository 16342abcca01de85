"""`fxviz summary`: the module tree as table rows, with shapes, parameters and FLOPs.

Rows come from the graph alone (no torch): a module's output shape is its first call's output
(for containers, the last node its forward ran); its FLOPs are the sum over every node inside
it, so the root row's FLOPs equal the graph's total.
"""

from __future__ import annotations

from dataclasses import dataclass

from fxviz.graph import Graph, ParamCount
from fxviz.humanize import format_shape


@dataclass(frozen=True, slots=True)
class Row:
    path: str
    depth: int
    class_name: str
    output: str
    params: ParamCount
    flops: int


def summary_rows(graph: Graph, depth: int | None = None) -> list[Row]:
    """One row per module down to `depth` path components (all when None), in tree order."""
    rows = []
    for module in graph.modules:
        level = module.path.count(".") + 1 if module.path else 0
        if depth is not None and level > depth:
            continue
        inside = [
            n
            for n in graph.nodes
            if n.kind not in ("input", "output") and graph.owns(n, module.path)
        ]
        calls = [n for n in inside if n.kind == "module" and n.target == module.path]
        last = calls[0] if calls else (inside[-1] if inside else None)
        if not module.path:
            last = next((n for n in graph.nodes if n.kind == "output"), last)
        shapes = [
            format_shape(v.shape or ()) for v in (last.outputs if last else ()) if v.is_tensor
        ]
        rows.append(
            Row(
                path=module.path,
                depth=level,
                class_name=module.class_name,
                output=", ".join(shapes[:3]) + (" …" if len(shapes) > 3 else ""),
                params=module.params,
                flops=sum(n.flops for n in inside),
            )
        )
    return rows
