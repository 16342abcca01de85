"""`fold_repeats`: identical consecutive blocks drawn once, with their count."""

from __future__ import annotations

from dataclasses import replace

from fxviz.graph import (
    Graph,
    Module,
    ParamCount,
    natural_key,
)
from fxviz.views.structure import (
    MIN_REPEAT,
    Index,
    chained,
    fold_run,
    shape_key,
)


def fold_repeats(graph: Graph, min_repeat: int = MIN_REPEAT) -> Graph:
    """Draw runs of `min_repeat` or more identical consecutive blocks once, with their count.

    Two blocks are not folded by default: that saves little and hides real module names."""
    parents = [m.path for m in graph.modules if graph.children(m.path)]
    index = Index(graph)
    for parent in sorted(parents, key=lambda p: (p.count(".") if p else -1, natural_key(p))):
        for run in _runs(index, list(index.graph.children(parent))):
            if len(run) >= min_repeat:
                graph = _fold(graph, run, index)
                index = Index(graph)
    return graph


def _runs(index: Index, siblings: list[str]) -> list[list[str]]:
    """Maximal runs (2 or more) of consecutive, identical, chained siblings."""
    runs: list[list[str]] = []
    current: list[str] = []
    previous_key: object = None
    for path in siblings:
        members = index.members.get(path)
        key = (index.signatures[path], shape_key(index.graph, members, path)) if members else None
        if key is not None and key == previous_key and chained(index, current[-1], path):
            current.append(path)
        else:
            if len(current) > 1:
                runs.append(current)
            current = [path] if key is not None else []
        previous_key = key
    if len(current) > 1:
        runs.append(current)
    return runs


def _fold(graph: Graph, run: list[str], index: Index) -> Graph:
    first, last = run[0], run[-1]
    keep = index.members[first]
    drop = set().union(*(index.ids(path) for path in run[1:]))
    last_ids = [graph.nodes[i].id for i in index.members[last]]
    remap = dict(zip(last_ids, (graph.nodes[i].id for i in keep), strict=False))
    label = f"{first}–{last.rpartition('.')[2]}" if "." in first else f"{first}–{last}"
    count = len(run)

    def entry(m: Module) -> Module:
        return replace(
            m,
            repeat=m.repeat * count,
            params=ParamCount(m.params.trainable * count, m.params.frozen * count),
            buffers=m.buffers * count,
        )

    return fold_run(graph, run, label, drop, remap, entry)
