"""`collapse`: modules deeper than a depth drawn as one node each."""

from __future__ import annotations

from fxviz.graph import (
    Graph,
)
from fxviz.views.contract import (
    Call,
    contract_modules,
)


def collapse(graph: Graph, depth: int) -> Graph:
    """Draw every module deeper than `depth` path components as one node."""
    if depth < 1:
        raise ValueError("depth counts path components and starts at 1")
    # A module at depth N takes everything its forward ran: submodules and functions alike
    # (a block's residual `add` sits in its scope); a lone leaf at depth N stays as it is.
    # Each call of a module is its own node: a module run twice (SAM's one `activation`
    # after two upsamplings) drawn as one node would read its own output, a cycle.
    group_of: dict[str, Call] = {}
    calls: dict[str, int] = {}
    current: tuple[str, bool] | None = None  # the path being collapsed, and if it was called
    for node in graph.nodes:
        where = node.owner
        if node.kind in ("input", "output") or not where or where.count(".") + 1 < depth:
            current = None if node.kind != "constant" else current
            continue
        path = ".".join(where.split(".")[:depth])
        own_call = node.kind == "module" and node.target == path
        if node.kind != "constant" and (
            current is None or current[0] != path or (own_call and current[1])
        ):
            calls[path] = calls.get(path, -1) + 1
            current = (path, own_call)
        elif current is not None and own_call:
            current = (path, True)
        group_of[node.id] = Call(path, max(calls.get(path, 0), 0))
    return contract_modules(graph, group_of)
