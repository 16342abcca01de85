"""`drop_dead_ends`: ops whose values nothing reads are left out."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from fxviz.graph import (
    Graph,
)


def drop_dead_ends(graph: Graph) -> Graph:
    """Leave out ops whose values nothing reads: the unused `[1]` of an attention call that
    returns `(out, None)`, a `.size()` whose number went nowhere; and inputs the model never
    reads (RWKV's `attention_mask`: the graph's notes say so). Module calls stay, read or
    not: they are the model's own structure."""
    readers: dict[str, int] = defaultdict(int)
    for node in graph.nodes:
        for source in node.inputs:
            readers[source] += 1
    dead: set[str] = set()
    for node in reversed(graph.nodes):
        tensors = bool(node.outputs) and all(v.is_tensor for v in node.outputs)
        unread_tensor = node.kind == "input" and tensors
        if (node.kind in ("function", "method") or unread_tensor) and not readers[node.id]:
            dead.add(node.id)
            for source in node.inputs:
                readers[source] -= 1
    if not dead:
        return graph
    return replace(graph, nodes=tuple(n for n in graph.nodes if n.id not in dead))
