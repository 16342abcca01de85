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
    group_of: dict[str, Call] = {}
    for node in graph.nodes:
        where = node.owner
        if node.kind not in ("input", "output") and where and where.count(".") + 1 >= depth:
            group_of[node.id] = Call(".".join(where.split(".")[:depth]))
    return contract_modules(graph, group_of)
