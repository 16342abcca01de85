"""Views make a big graph readable: pure functions from Graph to Graph, composable.

- `fold_repeats`: consecutive sibling modules with the same structure (classes, hyper-
  parameters, parameter counts, node shapes; names ignored), each reading the one before,
  are drawn once: the first keeps its nodes, relabelled `encoder.layer.0–11` with
  `repeat=12`, and whatever read the last one now reads it.
- `fold_periods`: blocks that take turns (three linear-attention layers, then one full, ×8)
  are drawn once as a group, in a cluster `layers.0–31` marked ×8, whatever read the last
  group reading the kept one.
- `drop_dead_ends`: ops whose values nothing reads (an attention call's unused `[1]`) are
  left out.
- `box_leaf_modules`: a module with no submodules of its own (Llama's `LlamaRMSNorm`, a GELU
  wrapper) is drawn as one box, as torch.nn's own leaves (`LayerNorm`) are.
- `group_lines`: the ops one source line ran back to back (`apply_rotary_pos_emb(q, k, cos,
  sin)`: 16 ATen ops) are drawn as one node that lists them.
- `fold_steps`: a loop the model ran step by step (an expanded LSTM's 12 time steps, a cell
  called once per token) is drawn as one step in a cluster marked `×12`; what every step
  reads (the weights) is drawn once, beside it.
- `collapse`: every module deeper than `depth` becomes one node with its inputs, outputs,
  total parameters and FLOPs.

All of them only change the picture: JSON output is always the full traced graph.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import replace
from typing import NamedTuple, TypeVar

from fxviz.graph import (
    GROUP,
    LOOP,
    Graph,
    Module,
    Node,
    ParamCount,
    Value,
    indexed,
    lineage,
    natural_key,
    parent_path,
    unique_id,
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


class _Call(NamedTuple):
    """One call of a module: its path and which call it is (0 for the first)."""

    path: str
    nth: int = 0


MIN_REPEAT = 3

_Key = TypeVar("_Key", bound=Hashable)

# Makes a contracted group's node from its id, outside inputs and the values read outside it.
_Build = Callable[[str, tuple[str, ...], tuple[Value, ...]], Node]


def apply_views(
    graph: Graph,
    *,
    depth: int | None = None,
    fold: bool = True,
    every_op: bool = False,
    expand: tuple[str, ...] = (),
) -> Graph:
    """The default picture: repeated blocks folded, leaf modules boxed, each source line's ops
    grouped, a loop's steps folded, then modules deeper than `depth` collapsed. `every_op`
    draws every traced op; `expand` names module classes to keep open (`--expand LSTM`)."""
    if fold:
        graph = fold_periods(fold_repeats(graph))
    if not every_op:
        graph = group_lines(box_leaf_modules(drop_dead_ends(graph), expand), expand)
    if fold:
        graph = fold_steps(graph)
    if depth is not None:
        graph = collapse(graph, depth)
    return graph


def drop_dead_ends(graph: Graph) -> Graph:
    """Leave out ops whose values nothing reads: the unused `[1]` of an attention call that
    returns `(out, None)`, a `.size()` whose number went nowhere. Module calls stay, read or
    not: they are the model's own structure."""
    readers: dict[str, int] = defaultdict(int)
    for node in graph.nodes:
        for source in node.inputs:
            readers[source] += 1
    dead: set[str] = set()
    for node in reversed(graph.nodes):
        if node.kind in ("function", "method") and not readers[node.id]:
            dead.add(node.id)
            for source in node.inputs:
                readers[source] -= 1
    if not dead:
        return graph
    return replace(graph, nodes=tuple(n for n in graph.nodes if n.id not in dead))


def fold_repeats(graph: Graph, min_repeat: int = MIN_REPEAT) -> Graph:
    """Draw runs of `min_repeat` or more identical consecutive blocks once, with their count.

    Two blocks are not folded by default: that saves little and hides real module names."""
    parents = [m.path for m in graph.modules if graph.children(m.path)]
    index = _Index(graph)
    for parent in sorted(parents, key=lambda p: (p.count(".") if p else -1, natural_key(p))):
        for run in _runs(index, list(index.graph.children(parent))):
            if len(run) >= min_repeat:
                graph = _fold(graph, run, index)
                index = _Index(graph)
    return graph


class _Index:
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
        self.readers = _readers(graph.nodes)
        self.signatures = signatures(graph)

    def ids(self, path: str) -> set[str]:
        return {self.graph.nodes[i].id for i in self.members.get(path, ())}


def _shape_key(graph: Graph, indices: list[int], path: str) -> tuple[tuple[str, ...], ...]:
    """What each member is and makes, with paths relative to the block (names ignored)."""
    keys = []
    for i in indices:
        n = graph.nodes[i]
        what = n.target[len(path) :] if n.kind in ("module", "constant") else n.target
        keys.append((n.kind, n.module_class or "", what, *(str(v.shape) for v in n.outputs)))
    return tuple(keys)


def _runs(index: _Index, siblings: list[str]) -> list[list[str]]:
    """Maximal runs (2 or more) of consecutive, identical, chained siblings."""
    runs: list[list[str]] = []
    current: list[str] = []
    previous_key: object = None
    for path in siblings:
        members = index.members.get(path)
        key = (index.signatures[path], _shape_key(index.graph, members, path)) if members else None
        if key is not None and key == previous_key and _chained(index, current[-1], path):
            current.append(path)
        else:
            if len(current) > 1:
                runs.append(current)
            current = [path] if key is not None else []
        previous_key = key
    if len(current) > 1:
        runs.append(current)
    return runs


def _chained(index: _Index, before: str, after: str) -> bool:
    """`after` reads `before`, and nothing else reads `before`."""
    ids_before, ids_after = index.ids(before), index.ids(after)
    readers = set().union(*(index.readers[i] for i in ids_before))
    return bool(readers & ids_after) and not readers - ids_before - ids_after


def _fold(graph: Graph, run: list[str], index: _Index) -> Graph:
    first, last = run[0], run[-1]
    keep = index.members[first]
    drop = set().union(*(index.ids(path) for path in run[1:]))
    last_ids = [graph.nodes[i].id for i in index.members[last]]
    remap = dict(zip(last_ids, (graph.nodes[i].id for i in keep), strict=False))
    label = f"{first}–{last.rpartition('.')[2]}" if "." in first else f"{first}–{last}"
    nodes: list[Node] = []
    for node in graph.nodes:
        if node.id in drop:
            continue
        if within(node.owner, first):
            node = replace(
                node,
                target=_relabel(node.target, first, label)
                if node.kind in ("module", "constant")  # `features.1.0–2.layer_scale`
                else node.target,
                scope=_relabel(node.scope, first, label),
            )
        if any(i in remap for i in node.inputs):
            inputs = tuple(dict.fromkeys(remap.get(i, i) for i in node.inputs))
            node = replace(node, inputs=inputs)
        nodes.append(node)
    count = len(run)
    folded_modules: list[Module] = []
    for m in graph.modules:
        if any(within(m.path, p) for p in run[1:]):
            continue
        if within(m.path, first):
            m = replace(m, path=_relabel(m.path, first, label))
            if m.path == label:
                m = replace(
                    m,
                    repeat=m.repeat * count,
                    params=ParamCount(m.params.trainable * count, m.params.frozen * count),
                    buffers=m.buffers * count,
                )
        folded_modules.append(m)
    return replace(graph, nodes=tuple(nodes), modules=tuple(folded_modules))


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
    index = _Index(graph)
    for parent in sorted(parents, key=lambda p: (p.count(".") if p else -1, natural_key(p))):
        while groups := _period_run(index, list(index.graph.children(parent)), min_repeat):
            graph = _fold_period(index.graph, parent, groups, index)
            index = _Index(graph)
    return index.graph


def _period_run(index: _Index, siblings: list[str], min_repeat: int) -> list[list[str]] | None:
    """The longest run of `min_repeat` or more identical consecutive groups of 2 to
    `MAX_PERIOD` blocks, each block reading the one before; the first such, else None."""
    graph = index.graph
    blocks = [path for path in siblings if index.members.get(path) and graph.children(path)]
    if len(blocks) < 2 * min_repeat:
        return None
    keys = [
        (index.signatures[path], _shape_key(graph, index.members[path], path))
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
        if all(_chained(index, a, b) for a, b in zip(run, run[1:], strict=False)):
            return [run[i : i + period] for i in range(0, span, period)]
    return None


def _fold_period(graph: Graph, parent: str, groups: list[list[str]], index: _Index) -> Graph:
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
            if node.kind in ("module", "constant"):  # `layers.3.fc` is drawn in the group
                target = _into_loop(target, parent, group)
            node = replace(node, target=target, scope=_into_loop(node.scope, parent, group))
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
        replace(m, path=_into_loop(m.path, parent, group))
        for m in graph.modules
        if any(within(m.path, p) for p in first)
    ]
    return replace(graph, nodes=tuple(nodes), modules=tuple(modules))


_STEP_KINDS = frozenset({"function", "method", "line", "module"})
_OPS = frozenset({"function", "method", "line"})


def fold_steps(graph: Graph, min_repeat: int = MIN_REPEAT) -> Graph:
    """Draw a loop's steps once: `min_repeat` or more consecutive stretches of the model's
    run that do the same ops in the same modules in the same order, wired the same way, each
    reading the one before: an expanded LSTM's time steps, `for t in range(T): h =
    self.cell(x[:, t], h)`, ALBERT's one layer called 12 times.

    The first step stays, inside a cluster `loop ×12` (around the module the steps call, or
    inside the module whose code loops); what only one step reads (its slice of the
    input) goes into its step; whatever read any step's values reads the kept step's (the
    stacked outputs, the last step's state). What every step reads (the weights) stays
    outside the cluster, drawn once. Loops are looked for in the outermost modules first."""
    within_scope: dict[str, list[Node]] = defaultdict(list)
    for node in graph.nodes:
        if node.kind in _STEP_KINDS:
            for path in ["", *lineage(node.owner)]:
                within_scope[path].append(node)
    readers = _readers(graph.nodes)
    taken: set[str] = set()
    runs: list[_Steps] = []
    for scope in sorted(within_scope, key=lambda p: (p.count(".") if p else -1, natural_key(p))):
        nodes = [n for n in within_scope[scope] if n.id not in taken]
        for run in _find_steps(graph, scope, nodes, readers, min_repeat):
            runs.append(run)
            taken.update(i for step in run.steps + run.private for i in step)
    return _fold_steps(graph, runs, readers) if runs else graph


class _Steps(NamedTuple):
    """A loop in `scope`: each step's node ids in the order they ran, and the ops each step
    alone reads (its slice of the input), aligned across steps."""

    scope: str
    steps: list[list[str]]
    private: list[list[str]]


def _readers(nodes: Iterable[Node]) -> dict[str, list[str]]:
    """Each node's readers, by id."""
    readers: dict[str, list[str]] = defaultdict(list)
    for node in nodes:
        for source in node.inputs:
            readers[source].append(node.id)
    return readers


def _step_key(node: Node) -> tuple[object, ...]:
    """What a node is in a step, whichever step: its op or module, where it ran and its
    shapes; not its arguments (the step's index is one of them), nor how many inputs it has
    (the first step may start from constants, which are not drawn)."""
    return (node.kind, node.target, node.scope, tuple(str(v.shape) for v in node.outputs))


def _find_steps(
    graph: Graph,
    scope: str,
    nodes: list[Node],
    readers: dict[str, list[str]],
    min_repeat: int,
) -> list[_Steps]:
    """The loops among one scope's nodes (in the order they ran): the ones covering most
    nodes first, none overlapping."""
    keys = [_step_key(n) for n in nodes]
    position = {n.id: i for i, n in enumerate(nodes)}
    candidates: list[tuple[int, int, _Steps]] = []
    for period in _periods(keys, min_repeat):
        start = 0
        while start + period < len(keys):
            end = start
            while end + period < len(keys) and keys[end] == keys[end + period]:
                end += 1
            span = end - start + period  # nodes start .. end+period-1 repeat with `period`
            if end > start and span >= min_repeat * period:
                stretch = nodes[start : start + span]
                run = _best_phase(graph, scope, stretch, period, readers, min_repeat)
                if run is not None:
                    covered = len(run.steps) * period
                    candidates.append((covered, position[run.steps[0][0]], run))
            start = max(end, start + 1)
    taken: set[str] = set()
    found = []
    for _, _, run in sorted(candidates, key=lambda c: (-c[0], c[1])):
        ids = {i for step in run.steps + run.private for i in step}
        if not ids & taken:
            taken |= ids
            found.append(run)
    return found


def _periods(keys: list[tuple[object, ...]], min_repeat: int) -> list[int]:
    """Step lengths worth trying: distances between consecutive occurrences of one key that
    occur often enough to make a loop, the most frequent first (at most 16)."""
    last: dict[tuple[object, ...], int] = {}
    count: dict[int, int] = defaultdict(int)
    for i, key in enumerate(keys):
        if key in last:
            count[i - last[key]] += 1
        last[key] = i
    often = [d for d, c in count.items() if c >= min_repeat - 1 and d * min_repeat <= len(keys)]
    return sorted(often, key=lambda d: (-count[d], d))[:16]


def _best_phase(
    graph: Graph,
    scope: str,
    stretch: list[Node],
    period: int,
    readers: dict[str, list[str]],
    min_repeat: int,
) -> _Steps | None:
    """Where a step starts within a periodic stretch: of the cuts that make steps wired
    alike, the one with the most steps, then the fewest edges from a step to the next (a
    time step hands on h and c), then the earliest."""
    best: tuple[tuple[int, float], list[list[Node]]] | None = None
    # A stretch starts where the repetition does, so the cut is almost always at or near its
    # start: trying 64 cuts at most keeps a long step (thousands of ops) linear.
    for offset in range(min(period, 64)):
        count = (len(stretch) - offset) // period
        if count < min_repeat:
            break
        steps = [stretch[offset + k * period : offset + (k + 1) * period] for k in range(count)]
        crossing = _handed_on(steps)
        if crossing == 0:
            return None  # cut here, the steps are independent: repetition, not a loop
        rank = (-count, crossing / (count - 1)) if crossing else None
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, steps)
    if best is None:
        return None
    ids = [[n.id for n in step] for step in best[1]]
    return _Steps(scope, ids, _private(graph, ids, readers))


def _handed_on(steps: list[list[Node]]) -> int | None:
    """How many edges go from one step to the next, if every step is wired like the others:
    each input comes from the same place in its own step, from the same place in the step
    before, or from outside (one node for every step, or each step its own; the first step
    reads the initial state where the others read the step before). None when steps are
    wired differently; 0 when no step reads the one before."""
    where = {n.id: (k, a) for k, step in enumerate(steps) for a, n in enumerate(step)}
    pattern: dict[tuple[int, int], tuple[str, object]] = {}
    crossing = 0
    for k, step in enumerate(steps):
        for a, node in enumerate(step):
            inputs = len(steps[1][a].inputs)
            if len(node.inputs) != inputs and (k > 0 or len(node.inputs) > inputs):
                return None
            for j, source in enumerate(node.inputs):
                k_source, b = where.get(source, (-1, -1))
                link: tuple[str, object]
                if k_source == k:
                    link = ("own", b)
                elif k_source >= 0 and k_source == k - 1:
                    link = ("previous", b)
                    crossing += 1
                elif k_source >= 0:
                    return None
                else:
                    link = ("outside", source)
                known = pattern.setdefault((a, j), link)
                if known == link:
                    continue
                if k == 1 and known[0] == "outside" and link[0] == "previous":
                    pattern[(a, j)] = link  # step 0 read the initial state there
                elif known[0] == "outside" and link[0] == "outside":
                    pattern[(a, j)] = ("outside", None)  # each step reads its own
                else:
                    return None
    return crossing


def _private(
    graph: Graph, steps: list[list[str]], readers: dict[str, list[str]]
) -> list[list[str]]:
    """For each step, the ops outside it that only it reads (`x[:, t]` computed before the
    loop), when every step has the same kind of them; else none. The first step follows
    only the inputs where the second found some: what else it alone reads is the initial
    state (h0, c0), which is not part of a step."""
    order = {n.id: i for i, n in enumerate(graph.nodes)}

    def grown(step: list[str], slots: set[tuple[int, int]] | None) -> list[str]:
        members = set(step)
        frontier = [
            source
            for a, n in enumerate(step)
            for j, source in enumerate(graph.node(n).inputs)
            if source not in members and (slots is None or (a, j) in slots)
        ]
        private: set[str] = set()
        while frontier:
            candidate = frontier.pop()
            node = graph.node(candidate)
            if candidate in members or node.kind not in _OPS:
                continue
            if all(r in members for r in readers[candidate]):
                members.add(candidate)
                private.add(candidate)
                frontier += node.inputs
        return sorted(private, key=order.__getitem__)

    later = [grown(step, None) for step in steps[1:]]
    second = set(later[0])
    slots = {
        (a, j)
        for a, n in enumerate(steps[1])
        for j, source in enumerate(graph.node(n).inputs)
        if source in second
    }
    found = [grown(steps[0], slots), *later]
    kinds = {tuple(_step_key(graph.node(i)) for i in p) for p in found}
    return found if len(kinds) == 1 else [[] for _ in steps]


def _fold_steps(graph: Graph, runs: list[_Steps], readers: dict[str, list[str]]) -> Graph:
    remap: dict[str, str] = {}
    moved: dict[str, tuple[str, str]] = {}  # kept node -> (where the loop is, its cluster)
    modules = list(graph.modules)
    taken = {m.path for m in modules}
    for run in runs:
        kept = run.steps[0] + run.private[0]
        where, wrapped = _loop_place(graph, run)
        path = unique_id(f"{where}.loop" if where else "loop", taken)
        modules.append(Module(path=path, class_name=LOOP, qualname="", repeat=len(run.steps)))
        # The modules the kept step ran in get a copy under the loop, for their clusters.
        inner = {
            p for i in kept for p in lineage(graph.node(i).scope) if within(p, where) and p != where
        }
        for m in graph.modules:
            if m.path in inner:
                modules.append(replace(m, path=_into_loop(m.path, where, path)))
        moved.update((i, (where, path)) for i in kept)
        for step, private in zip(run.steps[1:], run.private[1:], strict=True):
            remap.update(zip(step + private, kept, strict=True))
    nodes: list[Node] = []
    for node in graph.nodes:
        if node.id in remap:
            continue
        inputs = tuple(dict.fromkeys(remap.get(i, i) for i in node.inputs))
        scope = node.scope
        if node.id in moved:
            scope = _into_loop(scope, *moved[node.id])
        nodes.append(replace(node, inputs=inputs, scope=scope))
    # Ops that only dropped steps read (when steps had no common kind of private input) are
    # left without readers: drop them too.
    left = _readers(nodes)
    dead: set[str] = set()
    for node in reversed(nodes):
        if node.kind in _OPS and readers[node.id] and not left[node.id]:
            dead.add(node.id)
            for source in node.inputs:
                left[source].remove(node.id)
    kept_nodes = tuple(n for n in nodes if n.id not in dead)
    return replace(graph, nodes=kept_nodes, modules=tuple(modules))


def _loop_place(graph: Graph, run: _Steps) -> tuple[str, str]:
    """Where a loop's cluster goes: (the module it sits in, the module it wraps or "").
    Steps that are whole calls of one module (ALBERT's shared layer) wrap that module;
    steps that are part of a module's own code (an LSTM's time steps) sit inside it."""
    owners = [graph.node(i).owner for step in run.steps for i in step]
    common = owners[0].split(".") if owners[0] else []
    for owner in owners[1:]:
        parts = owner.split(".") if owner else []
        k = 0
        while k < min(len(common), len(parts)) and common[k] == parts[k]:
            k += 1
        common = common[:k]
    where = ".".join(common)
    if where and where != run.scope:
        ran = {i for step in run.steps for i in step}
        inside = (n for n in graph.nodes if n.kind in _STEP_KINDS and within(n.owner, where))
        if all(n.id in ran for n in inside):
            return parent_path(where), where
    return where, ""


def _into_loop(path: str, where: str, loop: str) -> str:
    """`path` as drawn inside the loop `loop` placed in `where`."""
    if not within(path, where):
        return path
    rest = path[len(where) :].lstrip(".")
    return f"{loop}.{rest}" if rest else loop


def _relabel(path: str, old: str, new: str) -> str:
    return new + path[len(old) :] if within(path, old) else path


def collapse(graph: Graph, depth: int) -> Graph:
    """Draw every module deeper than `depth` path components as one node."""
    if depth < 1:
        raise ValueError("depth counts path components and starts at 1")
    # A module at depth N takes everything its forward ran: submodules and functions alike
    # (a block's residual `add` sits in its scope); a lone leaf at depth N stays as it is.
    group_of: dict[str, _Call] = {}
    for node in graph.nodes:
        where = node.owner
        if node.kind not in ("input", "output") and where and where.count(".") + 1 >= depth:
            group_of[node.id] = _Call(".".join(where.split(".")[:depth]))
    return _contract_modules(graph, group_of)


def box_leaf_modules(graph: Graph, expand: tuple[str, ...] = ()) -> Graph:
    """Draw each call of a module that has no submodules as one box, its own parameters and
    buffers inside it; classes named in `expand` stay open.

    A call is a run of consecutive nodes in that module's scope (its constants may sit
    elsewhere: a constant goes with the one call that reads it), so a norm called twice is
    two boxes, as a torch.nn leaf called twice is two nodes."""
    # A submodule that never ran (Swin's attention reads `self.qkv.weight` itself, through
    # F.linear) does not make its parent a container: the parent is a leaf too.
    ran: set[str] = set()
    for node in graph.nodes:
        if node.kind not in ("input", "output", "constant"):
            ran.update(lineage(node.owner))
    containers = {parent_path(path) for path in ran}
    leaves = {
        m.path
        for m in graph.modules
        if m.path and m.path not in containers and m.class_name not in expand
    }

    def leaf_of(path: str) -> str | None:
        """The outermost leaf `path` is in (itself, or a module around a submodule that
        never ran)."""
        return next((p for p in reversed(lineage(path)) if p in leaves), None)

    def call_key(node: Node) -> str | None:
        if node.kind in ("input", "output"):
            return None
        where = leaf_of(node.owner)
        # A torch.nn leaf's call is one node already.
        return None if node.kind == "module" and node.target == where else where

    # Constants are skipped, not run breakers: export puts them all at the top.
    calls = _consecutive((n for n in graph.nodes if n.kind != "constant"), call_key)
    call_of = {n.id: index for index, (_, run) in enumerate(calls) for n in run}
    readers: dict[str, set[int]] = defaultdict(set)
    for node in graph.nodes:
        for i in node.inputs:
            readers[i].add(call_of.get(node.id, -1))
    for node in graph.nodes:
        leaf = leaf_of(node.scope)
        if node.kind == "constant" and leaf is not None and len(readers[node.id]) == 1:
            (index,) = readers[node.id]
            if index >= 0 and calls[index][0] == leaf:
                calls[index][1].append(node)
    seen: dict[str, int] = defaultdict(int)
    group_of: dict[str, _Call] = {}
    for path, run in calls:
        call = _Call(path, seen[path])
        seen[path] += 1
        group_of.update((n.id, call) for n in run)
    return _contract_modules(graph, group_of)


def _contract_modules(graph: Graph, group_of: dict[str, _Call]) -> Graph:
    """Replace each module call's nodes (`group_of`: node id → the call) by one module node."""
    members: dict[_Call, list[Node]] = defaultdict(list)
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
            flops=sum(n.flops * _repeats(graph, n.owner) for n in group),
            source=group[0].source,
        )

    return _contract(graph, {i: group_id[c] for i, c in group_of.items()}, build)


def _repeats(graph: Graph, path: str) -> int:
    """How many times a node at `path` ran: 80 inside a folded run of 80 decoder layers,
    whose nodes are those of one layer (folds nest, so the counts multiply)."""
    count = 1
    parts = path.split(".")
    for k in range(1, len(parts) + 1):
        module = graph.module(".".join(parts[:k]))
        count *= module.repeat if module else 1
    return count


def group_lines(graph: Graph, expand: tuple[str, ...] = ()) -> Graph:
    """Draw the ops that one source line ran back to back as one node.

    Only a run of consecutive function and method nodes from the same line of the same
    module's code is grouped (`self.q_proj(x).view(shape).transpose(1, 2)` groups the view
    and the transpose, not the module call), so contracting it can never make a cycle.
    Modules whose class is in `expand` keep every op."""
    opened = [m.path for m in graph.modules if m.class_name in expand]

    def line_key(node: Node) -> tuple[str, str, int] | None:
        if node.kind not in ("function", "method") or node.source is None:
            return None
        if any(within(node.scope, p) for p in opened):
            return None
        return (node.scope, node.source.file, node.source.line)

    runs = [run for _, run in _consecutive(graph.nodes, line_key)]
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

    return _contract(graph, group_of, build)


def _consecutive(
    nodes: Iterable[Node], key: Callable[[Node], _Key | None]
) -> list[tuple[_Key, list[Node]]]:
    """Maximal runs of consecutive nodes that share a key; a node keyed None breaks a run."""
    runs: list[tuple[_Key, list[Node]]] = []
    previous: _Key | None = None
    for node in nodes:
        current = key(node)
        if current is not None and current == previous:
            runs[-1][1].append(node)
        elif current is not None:
            runs.append((current, [node]))
        previous = current
    return runs


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


def _contract(graph: Graph, group_of: dict[str, str], build: _Build) -> Graph:
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
            nodes.append(build(group, inputs, indexed(produced) if produced else ()))
    return replace(graph, nodes=_topological(nodes))


def _topological(nodes: list[Node]) -> tuple[Node, ...]:
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
