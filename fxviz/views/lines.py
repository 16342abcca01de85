"""`group_lines`: the ops one source line ran back to back, drawn as one node."""

from __future__ import annotations

from collections import defaultdict

from fxviz.graph import (
    Graph,
    Node,
    Value,
    within,
)
from fxviz.views.contract import (
    consecutive,
    contract,
)


def group_lines(graph: Graph, expand: tuple[str, ...] = ()) -> Graph:
    """Draw the ops that one source line ran back to back as one node.

    Only a run of consecutive function and method nodes from the same line of the same
    module's code is grouped (`self.q_proj(x).view(shape).transpose(1, 2)` groups the view
    and the transpose, not the module call), so contracting it can never make a cycle.
    Modules whose class is in `expand` keep every op; ops of different torch.compile graphs
    (`x.mean()` captured, its `.item()` run in Python) are not grouped."""
    opened = [m.path for m in graph.modules if m.class_name in expand]

    def line_key(node: Node) -> tuple[str, str, int, tuple[int, ...]] | None:
        if node.kind not in ("function", "method") or node.source is None:
            return None
        if any(within(node.scope, p) for p in opened):
            return None
        return (node.scope, node.source.file, node.source.line, node.compiled)

    runs = [run for _, run in consecutive(graph.nodes, line_key)]
    # Unpacking a call's tuple (`out, _ = self.lstm(x)`) is two getitems: drawn as indices.
    groups = {
        run[0].id: run for run in runs if len(run) > 1 and any(n.target != "getitem" for n in run)
    }
    if not groups:
        return graph
    group_of = {n.id: first for first, run in groups.items() for n in run}

    def build(first: str, inputs: tuple[str, ...], outputs: tuple[Value, ...]) -> Node:
        run = groups[first]
        source = run[0].source
        assert source is not None  # line_key keys only nodes with a source
        return Node(
            id=first,
            kind="line",
            target=f"{source.file}:{source.line}",
            scope=run[0].scope,
            inputs=inputs,
            outputs=outputs,
            arguments=_op_summary(run),
            flops=sum(n.flops for n in run),
            source=source,
        )

    return contract(graph, group_of, build)


def _op_summary(run: list[Node]) -> str:
    """`16 ops: mul ×4, slice ×4, …`: ops that compute (FLOPs) first, then the most used."""
    counts: dict[str, int] = defaultdict(int)
    flops: dict[str, int] = defaultdict(int)
    for n in run:
        name = n.target.rpartition(".")[2] if n.kind == "function" else f".{n.target}()"
        counts[name] += 1
        flops[name] += n.flops
    order = sorted(counts, key=lambda name: (flops[name] == 0, -counts[name]))
    shown = ", ".join(f"{name} ×{counts[name]}" if counts[name] > 1 else name for name in order)
    return f"{len(run)} ops: {shown}"
