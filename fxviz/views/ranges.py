"""`fold_ranges`: runs of blocks built alike but for their sizes, drawn once with the range.

DenseNet's `_DenseLayer`s each take 32 more channels than the one before, an EfficientNet
stage's MBConvs differ in their first block's channels and their stochastic-depth rate: no two
are identical, so `fold_repeats` leaves them, and the picture is one box per layer. Here a run
of 3 or more consecutive siblings with the same structure once the numbers in their
hyper-parameters are left out (classes, ops, nesting), each reading the one before, is drawn
once: the first block keeps its nodes and shapes, its cluster says how many it stands for and
what varies (`_DenseLayer ×6, in 64 → 224 (+32 each)`). Whatever read any folded block reads
the kept one, so a dense block's concatenation of every layer is one edge, not six.

The drawing asks for this only when the picture would not fit a screen otherwise
(drawing.fitted): a small model keeps every block's own numbers in sight.
"""

from __future__ import annotations

import re
from dataclasses import replace

from fxviz.graph import Graph, Module, ParamCount, natural_key
from fxviz.views.structure import MIN_REPEAT, Index, fold_run, shape_key

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e-?\d+)?")


def fold_ranges(graph: Graph, min_repeat: int = MIN_REPEAT) -> Graph:
    """Draw runs of `min_repeat` or more blocks that differ only in numbers once (see above)."""
    parents = [m.path for m in graph.modules if graph.children(m.path)]
    index = Index(graph)
    for parent in sorted(parents, key=lambda p: (p.count(".") if p else -1, natural_key(p))):
        if graph.module(parent) is None:  # folded away with a run around it
            continue
        for run in _runs(index, list(index.graph.children(parent))):
            if sum(_blocks(index.graph, path) for path in run) >= min_repeat:
                graph = _fold(graph, run, index)
                index = Index(graph)
    return graph


def _blocks(graph: Graph, path: str) -> int:
    module = graph.module(path)
    return module.repeat if module is not None else 1


def _loose(graph: Graph, path: str) -> str:
    """A block's structure with every number left out: classes, hyper-parameter names,
    nesting (not parameter counts, which follow from the numbers)."""
    module = graph.module(path)
    assert module is not None
    inner = ",".join(_loose(graph, child) for child in graph.children(path))
    return f"{module.class_name}({_NUMBER.sub('#', module.hparams)})[{inner}]"


def _reads(index: Index, before: str, after: str) -> bool:
    ids_before = index.ids(before)
    return any(set(index.graph.nodes[i].inputs) & ids_before for i in index.members.get(after, ()))


def _runs(index: Index, siblings: list[str]) -> list[list[str]]:
    """Maximal runs (2 or more siblings) alike but for numbers, each reading the one before,
    and not all identical (`fold_repeats` folds those)."""
    runs: list[list[str]] = []
    current: list[str] = []
    previous: object = None
    for path in siblings:
        members = index.members.get(path)
        ops = shape_key(index.graph, members, path, shapes=False) if members else None
        key = (_loose(index.graph, path), ops) if members else None
        if key is not None and key == previous and _reads(index, current[-1], path):
            current.append(path)
        else:
            runs.append(current)
            current = [path] if key is not None else []
        previous = key
    runs.append(current)
    return [run for run in runs if len(run) > 1 and len({index.signatures[p] for p in run}) > 1]


def _fold(graph: Graph, run: list[str], index: Index) -> Graph:
    first = run[0]
    keep = [graph.nodes[i].id for i in index.members[first]]
    remap: dict[str, str] = {}
    for path in run[1:]:
        remap.update(zip((graph.nodes[i].id for i in index.members[path]), keep, strict=True))
    start = first.rpartition("–")[0] or first  # `features.4.1` for a folded `features.4.1–2`
    label = f"{start}–{_last_name(start, run[-1])}"
    blocks = [m for path in run if (m := graph.module(path)) is not None]

    def entry(m: Module) -> Module:
        return replace(
            m,
            repeat=sum(b.repeat for b in blocks),
            params=sum((b.params for b in blocks), ParamCount()),
            buffers=sum(b.buffers for b in blocks),
            varies=varies(graph, run),
        )

    return fold_run(graph, run, label, set(remap), remap, entry)


def _last_name(start: str, last: str) -> str:
    """How a folded run's label ends: `6` for `denselayer1` … `denselayer6`, as `layer.0–11`
    reads; the last block's whole name when the two names share no stem."""
    end = last.rpartition(".")[2].rpartition("–")[2]
    stem = start.rpartition(".")[2].rstrip("0123456789")
    if stem and end.startswith(stem) and end[len(stem) :].isdigit():
        return end[len(stem) :]
    return end


def varies(graph: Graph, run: list[str]) -> str:
    """What differs along a run, by its first numbers that do: `in 64 → 224 (+32 each)`,
    `p 0.0125 → 0.0375`; numbers that move together are said once."""
    columns = list(zip(*(_numbers(graph, path) for path in run), strict=False))
    said: list[str] = []
    seen: set[tuple[str, ...]] = set()
    for column in columns:
        values = tuple(value for _, value in column)
        if len(set(values)) == 1 or values in seen:
            continue
        seen.add(values)
        said.append(f"{column[0][0]} {_span(values)}")
        if len(said) == 2:
            break
    return ", ".join(said)


def _numbers(graph: Graph, path: str) -> list[tuple[str, str]]:
    """Each number in a block's hyper-parameters, in tree order, with what to call it: its
    keyword (`stride`), `in` for the block's first number, else `child #k`."""
    found: list[tuple[str, str]] = []
    stack = [path]
    while stack:
        current = stack.pop(0)
        module = graph.module(current)
        if module is not None and module.hparams:
            relative = current[len(path) :].lstrip(".") or module.class_name
            for k, item in enumerate(module.hparams.split(", ")):
                keyword, equals, value = item.partition("=")
                for number in _NUMBER.findall(value if equals else keyword):
                    name = keyword if equals else ("in" if not found else f"{relative} #{k + 1}")
                    found.append((name, number))
        stack = list(graph.children(current)) + stack
    return found


def _span(values: tuple[str, ...]) -> str:
    text = f"{values[0]} → {values[-1]}"
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        return text
    steps = {round(b - a, 9) for a, b in zip(numbers, numbers[1:], strict=False)}
    if len(steps) == 1:
        (step,) = steps
        shown = int(step) if step == int(step) else step
        text += f" ({'+' if step > 0 else ''}{shown} each)"
    return text
