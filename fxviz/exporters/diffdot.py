"""A diff as one diagram: graph B, with A's removed modules beside it, coloured by change."""

from __future__ import annotations

from dataclasses import replace

from fxviz.diff import GraphDiff
from fxviz.exporters.dot import DotOptions, to_dot
from fxviz.graph import Graph, Node, within


def diff_to_dot(a: Graph, b: Graph, d: GraphDiff, options: DotOptions | None = None) -> str:
    status: dict[str, str] = {}
    for node in b.nodes:
        for change in d.changes:
            if change.path_b and within(
                node.target if node.kind == "module" else node.scope, change.path_b
            ):
                status[node.id] = change.kind
    removed: list[Node] = []
    ids_b = {n.id for n in b.nodes}
    gone = [c.path_a for c in d.changes if c.kind == "removed"]
    for node in a.nodes:
        where = node.target if node.kind == "module" else node.scope
        if any(within(where, path) for path in gone) and where:
            node_id = f"removed:{node.id}"
            inputs = tuple(i if i in ids_b else f"removed:{i}" for i in node.inputs)
            removed.append(replace(node, id=node_id, inputs=inputs))
            status[node_id] = "removed"
    kept = {n.id for n in removed} | ids_b
    removed = [replace(n, inputs=tuple(i for i in n.inputs if i in kept)) for n in removed]
    merged = replace(
        b,
        name=f"{d.a} -> {d.b}",
        nodes=(*b.nodes[:-1], *removed, b.nodes[-1]) if b.nodes else tuple(removed),
        modules=(*b.modules, *(m for m in a.modules if any(within(m.path, p) for p in gone))),
    )
    return to_dot(merged, options, status=status, legend=True)
