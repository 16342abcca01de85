"""`collapse`: modules deeper than a depth drawn as one node each."""

from __future__ import annotations

from collections import defaultdict

from fxviz.graph import Graph, Node
from fxviz.views.contract import Call, consecutive, contract_modules
from fxviz.views.structure import readers_of


def collapse(graph: Graph, depth: int) -> Graph:
    """Draw every module deeper than `depth` path components as one node."""
    if depth < 1:
        raise ValueError("depth counts path components and starts at 1")

    # A module at depth N takes everything its forward ran: submodules and functions alike
    # (a block's residual `add` sits in its scope); a lone leaf at depth N stays as it is.
    # Each call is its own node (a run of consecutive nodes, as box_leaf_modules has it): SAM's
    # one `activation`, run after two upsamplings, drawn as one node read its own output.
    def path_of(node: Node) -> str | None:
        where = node.owner
        if node.kind in ("input", "output") or not where or where.count(".") + 1 < depth:
            return None
        return ".".join(where.split(".")[:depth])

    def call_key(node: Node) -> str | None:
        path = path_of(node)
        own_call = node.kind == "module" and node.target == path
        return None if own_call else path  # a leaf's own call is one node already

    group_of: dict[str, Call] = {}
    seen: dict[str, int] = defaultdict(int)
    for path, run in consecutive((n for n in graph.nodes if n.kind != "constant"), call_key):
        group_of.update((n.id, Call(path, seen[path])) for n in run)
        seen[path] += 1
    # A constant goes with the call of its module that reads it, else with the first.
    readers = readers_of(graph.nodes)
    for node in graph.nodes:
        home = path_of(node) if node.kind == "constant" else None
        if home is not None:
            calls = [c for r in readers[node.id] if (c := group_of.get(r)) and c.path == home]
            group_of[node.id] = calls[0] if calls else Call(home)
    return contract_modules(graph, group_of)
