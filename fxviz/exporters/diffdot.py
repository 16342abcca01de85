"""A diff as one diagram: graph B, with A's removed modules beside it, coloured as the report
groups the changes: a module's colour is that of the nearest change at or around it."""

from __future__ import annotations

from dataclasses import replace

from fxviz.diff import Change, GraphDiff, format_report
from fxviz.exporters.dot import DotOptions, to_dot
from fxviz.graph import Graph, Node, lineage, within


def diff_to_dot(a: Graph, b: Graph, d: GraphDiff, options: DotOptions | None = None) -> str:
    merged, status, report = merged_picture(a, b, d)
    return to_dot(merged, options, status=status, changes=report)


def merged_picture(a: Graph, b: Graph, d: GraphDiff) -> tuple[Graph, dict[str, str], list[str]]:
    """The graph a diff draws (B with A's removed modules), each node's change kind, and the
    report's lines."""
    whole: dict[str, str] = {c.path_b: c.kind for c in d.changes if c.kind in ("added", "renamed")}
    own = {c.path_b: s for c in d.changes if c.path_b and (s := _status(c))}
    status = {n.id: s for n in b.nodes if (s := _colour(n, b, whole, own))}
    inputs = {c.path_b for c in d.changes if c.kind == "input"}
    status |= {n.id: "changed" for n in b.nodes if n.kind == "input" and n.target in inputs}
    removed: list[Node] = []
    ids_b = {n.id for n in b.nodes}
    gone = [c.path_a for c in d.changes if c.kind == "removed"]
    for node in a.nodes:
        where = node.owner
        if where and any(within(where, path) for path in gone):
            node_id = f"removed__{node.id}"
            inputs_of = tuple(i if i in ids_b else f"removed__{i}" for i in node.inputs)
            removed.append(replace(node, id=node_id, inputs=inputs_of))
            status[node_id] = "removed"
    kept = {n.id for n in removed} | ids_b
    removed = [replace(n, inputs=tuple(i for i in n.inputs if i in kept)) for n in removed]
    merged = replace(
        b,
        name=f"{d.a} -> {d.b}",
        nodes=(*b.nodes[:-1], *removed, b.nodes[-1]) if b.nodes else tuple(removed),
        modules=(*b.modules, *(m for m in a.modules if any(within(m.path, p) for p in gone))),
    )
    report = [line.strip() for line in format_report(d).splitlines() if line.startswith("  ")]
    return merged, status, report


def _status(change: Change) -> str:
    """The colour of a module's own node: a class renamed with nothing else is a rename; the
    layers an insertion renumbered and the shapes that follow from a change get none."""
    if change.kind == "changed" and all(f.startswith("class ") for f in change.facets):
        return "renamed"
    if change.kind in ("renumbered", "input") or change.is_consequence:
        return ""
    return "changed" if change.kind == "shape" else change.kind


# When a drawn node holds several changes (a module collapsed by --depth), the one it shows.
_PRIORITY = ("changed", "added", "removed", "rewired", "renamed")


def _colour(node: Node, b: Graph, whole: dict[str, str], own: dict[str, str]) -> str:
    """Everything inside an added or moved module takes its colour; a module's node takes its
    own, or when --depth collapsed it, the strongest change inside it. Functions inside a
    module whose class alone changed stay plain: the cluster's label names the new class."""
    around = next((whole[p] for p in lineage(node.owner) if p in whole), "")
    if around or node.kind != "module":
        return around
    if not b.children(node.target):
        return own.get(node.target, "")
    inside = {s for p, s in own.items() if within(p, node.target)}
    return next((s for s in _PRIORITY if s in inside), "")
