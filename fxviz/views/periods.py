"""`fold_periods`: blocks that take turns, drawn once as a group with its count."""

from __future__ import annotations

from dataclasses import replace

from fxviz.graph import (
    GROUP,
    Graph,
    Module,
    Node,
    ParamCount,
    natural_key,
    unique_id,
    within,
)
from fxviz.views.structure import (
    MIN_REPEAT,
    Index,
    chained,
    into_loop,
    shape_key,
)

MAX_PERIOD = 8


def fold_periods(graph: Graph, min_repeat: int = MIN_REPEAT) -> Graph:
    """Draw `min_repeat` or more identical consecutive *groups* of blocks once: a model
    whose layers take turns (Qwen3.5's three linear-attention layers and one full, Gemma 3's
    five sliding-window layers and one global) repeats a group of a few blocks, not one.

    Runs of one block are folded first (`fold_repeats`), so a group may hold folded runs
    (`layers.2–4`). The first group stays, inside a cluster `layers.1–44` marked ×11 (a
    module entry this view makes, class GROUP, as fold_steps makes `loop`): its blocks'
    paths go under it (`layers.1–44.2–4.mlp`), drawn without it (`layers.2–4.mlp`), and
    whatever read the last group reads the kept one. Only blocks with
    submodules group: a Sequential's (Conv, ReLU) pairs stay as they are."""
    # Only a module with room for `min_repeat` groups of two blocks can hold a run: most
    # have none, and then the view costs no index of the graph.
    parents = [
        m.path
        for m in graph.modules
        if sum(bool(graph.children(c)) for c in graph.children(m.path)) >= 2 * min_repeat
    ]
    if not parents:
        return graph
    index = Index(graph)
    for parent in sorted(parents, key=lambda p: (p.count(".") if p else -1, natural_key(p))):
        while groups := _period_run(index, list(index.graph.children(parent)), min_repeat):
            graph = _fold_period(index.graph, parent, groups, index)
            index = Index(graph)
    return index.graph


def _period_run(index: Index, siblings: list[str], min_repeat: int) -> list[list[str]] | None:
    """The longest run of `min_repeat` or more identical consecutive groups of 2 to
    `MAX_PERIOD` blocks, each block reading the one before; the first such, else None."""
    graph = index.graph
    blocks = [path for path in siblings if index.members.get(path) and graph.children(path)]
    if len(blocks) < 2 * min_repeat:
        return None
    keys = [
        (index.signatures[path], shape_key(graph, index.members[path], path))
        if path in blocks
        else None
        for path in siblings
    ]
    candidates = []
    for period in range(2, MAX_PERIOD + 1):
        for start in range(len(siblings) - period * min_repeat + 1):
            block = keys[start : start + period]
            if None in block or len(set(block)) < 2:  # one kind: fold_repeats' work
                continue
            count = 1
            while keys[start + count * period : start + (count + 1) * period] == block:
                count += 1
            if count >= min_repeat:
                candidates.append((count * period, start, period))
    for span, start, period in sorted(candidates, key=lambda c: (-c[0], c[1])):
        run = siblings[start : start + span]
        if all(chained(index, a, b) for a, b in zip(run, run[1:], strict=False)):
            return [run[i : i + period] for i in range(0, span, period)]
    return None


def _fold_period(graph: Graph, parent: str, groups: list[list[str]], index: Index) -> Graph:
    first, last = groups[0], groups[-1]
    tail = last[-1].rpartition(".")[2]
    head = first[0].rpartition(".")[2]
    taken = {m.path for m in graph.modules}
    start, end = head.split("–")[0], tail.split("–")[-1]
    group = unique_id(f"{parent}.{start}–{end}" if parent else f"{start}–{end}", taken)
    kept = [i for path in first for i in index.members[path]]
    dropped = {graph.nodes[i].id for g in groups[1:] for path in g for i in index.members[path]}
    last_ids = [graph.nodes[i].id for path in last for i in index.members[path]]
    remap = dict(zip(last_ids, (graph.nodes[i].id for i in kept), strict=True))
    kept_ids = {graph.nodes[i].id for i in kept}
    nodes: list[Node] = []
    for node in graph.nodes:
        if node.id in dropped:
            continue
        if node.id in kept_ids:
            target = node.target
            if node.names_path:  # `layers.3.fc` is drawn in the group
                target = into_loop(target, parent, group)
            node = replace(node, target=target, scope=into_loop(node.scope, parent, group))
        if any(i in remap for i in node.inputs):
            node = replace(node, inputs=tuple(dict.fromkeys(remap.get(i, i) for i in node.inputs)))
        nodes.append(node)
    count = len(groups)
    blocks = [graph.module(path) for path in first]
    params = [m.params for m in blocks if m is not None]
    modules = [m for m in graph.modules if not any(within(m.path, p) for g in groups for p in g)]
    modules.append(
        Module(
            path=group,
            class_name=GROUP,
            qualname="",
            repeat=count,
            params=ParamCount(
                sum(p.trainable for p in params) * count, sum(p.frozen for p in params) * count
            ),
            buffers=sum(m.buffers for m in blocks if m is not None) * count,
        )
    )
    # The kept group's blocks move under the group; the display leaves its path out.
    modules += [
        replace(m, path=into_loop(m.path, parent, group))
        for m in graph.modules
        if any(within(m.path, p) for p in first)
    ]
    return replace(graph, nodes=tuple(nodes), modules=tuple(modules))
