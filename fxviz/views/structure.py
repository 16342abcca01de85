"""What the folding views ask of a graph: structural signatures, each module's members, readers,
and how a folded path is written."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import replace

from fxviz.graph import (
    Graph,
    Module,
    ModuleMemory,
    Node,
    lineage,
    within,
)


def signatures(graph: Graph) -> dict[str, str]:
    """Every module subtree's structure without its names: classes, hyper-parameters and
    parameter counts, nested. Two blocks with the same signature are built the same."""
    found: dict[str, str] = {}

    def signature(path: str) -> str:
        if path not in found:
            m = graph.module(path)
            assert m is not None
            inner = ",".join(signature(c) for c in graph.children(path))
            found[path] = f"{m.class_name}({m.hparams}|{m.params.total})[{inner}]"
        return found[path]

    for m in graph.modules:
        signature(m.path)
    return found


MIN_REPEAT = 3


class Index:
    """What `fold_repeats` asks of a graph again and again, computed once per graph: each
    module's member nodes (its own and its submodules'), each node's readers, signatures."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.members: dict[str, list[int]] = defaultdict(list)
        for i, n in enumerate(graph.nodes):
            if n.kind in ("input", "output") or not n.owner:
                continue
            for path in lineage(n.owner):
                self.members[path].append(i)
        self.readers = readers_of(graph.nodes)
        self.signatures = signatures(graph)

    def ids(self, path: str) -> set[str]:
        return {self.graph.nodes[i].id for i in self.members.get(path, ())}


def shape_key(
    graph: Graph, indices: list[int], path: str, shapes: bool = True
) -> tuple[tuple[str, ...], ...]:
    """What each member is and makes (its shapes unless `shapes` is off), with paths
    relative to the block (names ignored)."""
    keys = []
    # Drawn with torch.compile's graphs: blocks fold only where their graphs and breaks fall
    # alike (counted from the block's first graph), so no break is folded out of sight.
    compiled = any(graph.nodes[i].compiled for i in indices)
    base = (
        min((g for i in indices for g in graph.nodes[i].compiled if g), default=0)
        if compiled
        else 0
    )
    for i in indices:
        n = graph.nodes[i]
        what = n.target[len(path) :] if n.names_path else n.target
        made = (str(v.shape) for v in n.outputs) if shapes else ()
        key = (n.kind, n.module_class or "", what, *made)
        if compiled:
            graphs = tuple(g - base if g else -1 for g in n.compiled)
            key += (str(graphs), str(len(n.breaks)))
        keys.append(key)
    return tuple(keys)


def chained(index: Index, before: str, after: str) -> bool:
    """`after` reads `before`, and nothing else reads `before`."""
    ids_before, ids_after = index.ids(before), index.ids(after)
    readers = set().union(*(index.readers[i] for i in ids_before))
    return bool(readers & ids_after) and not readers - ids_before - ids_after


def readers_of(nodes: Iterable[Node]) -> dict[str, list[str]]:
    """Each node's readers, by id."""
    readers: dict[str, list[str]] = defaultdict(list)
    for node in nodes:
        for source in node.inputs:
            readers[source].append(node.id)
    return readers


def relabel(path: str, old: str, new: str) -> str:
    return new + path[len(old) :] if within(path, old) else path


def into_loop(path: str, where: str, loop: str) -> str:
    """`path` as drawn inside the loop `loop` placed in `where`."""
    if not within(path, where):
        return path
    rest = path[len(where) :].lstrip(".")
    return f"{loop}.{rest}" if rest else loop


def fold_run(
    graph: Graph,
    run: list[str],
    label: str,
    drop: set[str],
    remap: dict[str, str],
    entry: Callable[[Module], Module],
) -> Graph:
    """Draw the blocks of `run` as its first, relabelled `label`: the nodes in `drop` go,
    whatever read a node in `remap` reads its counterpart in the first block, the first
    block's modules move under `label`, and `entry` makes the run's module entry from the
    first block's (its count, its totals)."""
    first = run[0]
    nodes: list[Node] = []
    for node in graph.nodes:
        if node.id in drop:
            continue
        if within(node.owner, first):
            node = replace(
                node,
                target=relabel(node.target, first, label)
                if node.names_path  # `features.1.0–2.layer_scale`
                else node.target,
                scope=relabel(node.scope, first, label),
            )
        if any(i in remap for i in node.inputs):
            node = replace(node, inputs=tuple(dict.fromkeys(remap.get(i, i) for i in node.inputs)))
        nodes.append(node)
    modules: list[Module] = []
    for m in graph.modules:
        if any(within(m.path, p) for p in run[1:]):
            continue
        if within(m.path, first):
            m = replace(m, path=relabel(m.path, first, label))
            if m.path == label:
                m = replace(entry(m), memory=run_memory(graph, run))
        modules.append(m)
    return replace(graph, nodes=tuple(nodes), modules=tuple(modules))


def run_memory(graph: Graph, run: list[str]) -> ModuleMemory | None:
    """The memory of a run of blocks drawn as one: what they all saved, the most any held."""
    shares = [m.memory for p in run if (m := graph.module(p)) is not None and m.memory]
    if not shares:
        return None
    return ModuleMemory(saved=sum(s.saved for s in shares), live=max(s.live for s in shares))
