"""`box_leaf_modules`: each call of a module with no submodules drawn as one box."""

from __future__ import annotations

from collections import defaultdict

from fxviz.graph import (
    Graph,
    Node,
    lineage,
    parent_path,
)
from fxviz.views.contract import (
    Call,
    consecutive,
    contract_modules,
)


def box_leaf_modules(graph: Graph, expand: tuple[str, ...] = ()) -> Graph:
    """Draw each call of a module that has no submodules as one box, its own parameters and
    buffers inside it; classes named in `expand` stay open.

    A call is a run of consecutive nodes in that module's scope (its constants may sit
    elsewhere: a constant goes with the one call that reads it), so a norm called twice is
    two boxes, as a torch.nn leaf called twice is two nodes."""
    # A submodule that never ran (Swin's attention reads `self.qkv.weight` itself, through
    # F.linear) does not make its parent a container: the parent is a leaf too.
    ran: set[str] = set()
    for node in graph.nodes:
        if node.kind not in ("input", "output", "constant"):
            ran.update(lineage(node.owner))
    containers = {parent_path(path) for path in ran}
    leaves = {
        m.path
        for m in graph.modules
        if m.path and m.path not in containers and m.class_name not in expand
    }

    def leaf_of(path: str) -> str | None:
        """The outermost leaf `path` is in (itself, or a module around a submodule that
        never ran)."""
        return next((p for p in reversed(lineage(path)) if p in leaves), None)

    def call_key(node: Node) -> str | None:
        if node.kind in ("input", "output"):
            return None
        where = leaf_of(node.owner)
        # A torch.nn leaf's call is one node already.
        return None if node.kind == "module" and node.target == where else where

    # Constants are skipped, not run breakers: export puts them all at the top.
    calls = consecutive((n for n in graph.nodes if n.kind != "constant"), call_key)
    call_of = {n.id: index for index, (_, run) in enumerate(calls) for n in run}
    readers: dict[str, set[int]] = defaultdict(set)
    for node in graph.nodes:
        for i in node.inputs:
            readers[i].add(call_of.get(node.id, -1))
    for node in graph.nodes:
        leaf = leaf_of(node.scope)
        if node.kind == "constant" and leaf is not None and len(readers[node.id]) == 1:
            (index,) = readers[node.id]
            if index >= 0 and calls[index][0] == leaf:
                calls[index][1].append(node)
    seen: dict[str, int] = defaultdict(int)
    group_of: dict[str, Call] = {}
    for path, run in calls:
        call = Call(path, seen[path])
        seen[path] += 1
        group_of.update((n.id, call) for n in run)
    return contract_modules(graph, group_of)
