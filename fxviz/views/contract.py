"""Contracting groups of nodes into one node: the machinery the boxing, grouping and collapsing
views share."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import replace
from typing import NamedTuple, TypeVar

from fxviz.graph import (
    Graph,
    Node,
    ParamCount,
    Value,
    indexed,
    parent_path,
    unique_id,
)


class Call(NamedTuple):
    """One call of a module: its path and which call it is (0 for the first)."""

    path: str
    nth: int = 0


Key = TypeVar("Key", bound=Hashable)


# Makes a contracted group's node from its id, outside inputs and the values read outside it.
Build = Callable[[str, tuple[str, ...], tuple[Value, ...]], Node]


def contract_modules(graph: Graph, group_of: dict[str, Call]) -> Graph:
    """Replace each module call's nodes (`group_of`: node id → the call) by one module node."""
    members: dict[Call, list[Node]] = defaultdict(list)
    for node in graph.nodes:
        if node.id in group_of:
            members[group_of[node.id]].append(node)
    for call, group in list(members.items()):
        if len(group) == 1 and group[0].kind == "module" and group[0].target == call.path:
            del members[call]
            del group_of[group[0].id]
    if not group_of:
        return graph
    taken = {n.id for n in graph.nodes if n.id not in group_of}
    group_id = {
        call: unique_id(call.path.replace(".", "_").replace("–", "_"), taken) for call in members
    }
    call_of = {node_id: call for call, node_id in group_id.items()}

    def build(node_id: str, inputs: tuple[str, ...], outputs: tuple[Value, ...]) -> Node:
        call = call_of[node_id]
        module, group = graph.module(call.path), members[call]
        return Node(
            id=node_id,
            kind="module",
            target=call.path,
            scope=parent_path(call.path),
            module_class=module.class_name if module else "",
            inputs=inputs,
            outputs=outputs,
            # A module's parameters are drawn once, on its first call (as traced graphs do).
            params=module.params if module and not call.nth else ParamCount(),
            buffers=module.buffers if module and not call.nth else 0,
            flops=sum(n.flops * repeat_count(graph, n.owner) for n in group),
            source=group[0].source,
        )

    return contract(graph, {i: group_id[c] for i, c in group_of.items()}, build)


def repeat_count(graph: Graph, path: str) -> int:
    """How many times a node at `path` ran: 80 inside a folded run of 80 decoder layers,
    whose nodes are those of one layer (folds nest, so the counts multiply)."""
    count = 1
    parts = path.split(".")
    for k in range(1, len(parts) + 1):
        module = graph.module(".".join(parts[:k]))
        count *= module.repeat if module else 1
    return count


def contract(graph: Graph, group_of: dict[str, str], build: Build) -> Graph:
    """Replace each group of nodes (`group_of`: node id → group id) by the node `build`
    makes from the group's id, its outside inputs and the values read outside it."""
    members: dict[str, list[Node]] = defaultdict(list)
    for node in graph.nodes:
        if node.id in group_of:
            members[group_of[node.id]].append(node)
    consumers: dict[str, set[str]] = defaultdict(set)
    for node in graph.nodes:
        for i in node.inputs:
            consumers[i].add(group_of.get(node.id, node.id))
    nodes: list[Node] = []
    for node in graph.nodes:
        group = group_of.get(node.id)
        if group is None:
            inputs = tuple(dict.fromkeys(group_of.get(i, i) for i in node.inputs))
            nodes.append(replace(node, inputs=inputs))
        elif node is members[group][0]:
            inside = {n.id for n in members[group]}
            inputs = tuple(
                dict.fromkeys(
                    group_of.get(i, i) for n in members[group] for i in n.inputs if i not in inside
                )
            )
            produced = [n.outputs for n in members[group] if consumers[n.id] - {group}]
            built = build(group, inputs, indexed(produced) if produced else ())
            nodes.append(_compiled_as(built, members[group]))
    return replace(graph, nodes=topological(nodes))


def _compiled_as(node: Node, group: list[Node]) -> Node:
    """A box for many ops ran in every torch.compile graph they ran in, and carries their
    graph breaks."""
    compiled = tuple(sorted({g for n in group for g in n.compiled}))
    breaks = tuple(sorted({b for n in group for b in n.breaks}))
    if not compiled and not breaks:
        return node
    return replace(node, compiled=compiled, breaks=breaks)


def topological(nodes: list[Node]) -> tuple[Node, ...]:
    """The order the model ran in, changed only where contraction put a node before one of
    its inputs: such a node waits until its inputs are placed, and nothing else moves (a
    level-by-level order would pull every independent branch, a decoder's embedding, to
    the top). Linear in the nodes and edges: a placed node releases only its own waiters."""
    position = {n.id: i for i, n in enumerate(nodes)}
    placed: set[str] = set()
    ordered: list[Node] = []
    missing: dict[str, int] = {}
    waiters: dict[str, list[Node]] = defaultdict(list)

    def place(first: Node) -> None:
        queue = deque([first])
        while queue:
            node = queue.popleft()
            ordered.append(node)
            placed.add(node.id)
            for waiter in waiters.pop(node.id, ()):
                missing[waiter.id] -= 1
                if not missing[waiter.id]:
                    del missing[waiter.id]
                    queue.append(waiter)

    for node in nodes:
        absent = {i for i in node.inputs if i in position and i not in placed}
        if not absent:
            place(node)
            continue
        missing[node.id] = len(absent)
        for i in absent:
            waiters[i].append(node)
    # A cycle cannot come from contracting modules; should one appear, keep its order.
    return tuple(ordered + [n for n in nodes if n.id in missing])


def consecutive(
    nodes: Iterable[Node], key: Callable[[Node], Key | None]
) -> list[tuple[Key, list[Node]]]:
    """Maximal runs of consecutive nodes that share a key; a node keyed None breaks a run."""
    runs: list[tuple[Key, list[Node]]] = []
    previous: Key | None = None
    for node in nodes:
        current = key(node)
        if current is not None and current == previous:
            runs[-1][1].append(node)
        elif current is not None:
            runs.append((current, [node]))
        previous = current
    return runs
