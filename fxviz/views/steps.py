"""`fold_steps`: a loop the model ran step by step, drawn as one step marked with its count."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import NamedTuple

from fxviz.graph import (
    LOOP,
    Graph,
    Module,
    Node,
    lineage,
    natural_key,
    parent_path,
    unique_id,
    within,
)
from fxviz.views.structure import (
    MIN_REPEAT,
    into_loop,
    readers_of,
)

# Steps that do not read each other make a loop only this many times over (to fit a screen).
MIN_INDEPENDENT = 4
# The hyper-parameters of a loop whose steps do not read each other.
INDEPENDENT = "independent steps"
_STEP_KINDS = frozenset({"function", "method", "line", "module"})
_OPS = frozenset({"function", "method", "line"})


def fold_steps(graph: Graph, min_repeat: int = MIN_REPEAT, independent: bool = False) -> Graph:
    """Draw a loop's steps once: `min_repeat` or more consecutive stretches of the model's
    run that do the same ops in the same modules in the same order, wired the same way, each
    reading the one before: an expanded LSTM's time steps, `for t in range(T): h =
    self.cell(x[:, t], h)`, ALBERT's one layer called 12 times.

    The first step stays, inside a cluster `loop ×12` (around the module the steps call, or
    inside the module whose code loops); what only one step reads (its slice of the
    input) goes into its step; whatever read any step's values reads the kept step's (the
    stacked outputs, the last step's state). What every step reads (the weights) stays
    outside the cluster, drawn once. Loops are looked for in the outermost modules first.

    `independent` also folds steps that do not read each other (SSD's post-processing, one
    step per class, 90 of them side by side): the drawing asks for it to fit a screen."""
    within_scope: dict[str, list[Node]] = defaultdict(list)
    for node in graph.nodes:
        if node.kind in _STEP_KINDS:
            for path in ["", *lineage(node.owner)]:
                within_scope[path].append(node)
    readers = readers_of(graph.nodes)
    taken: set[str] = set()
    runs: list[_Steps] = []
    for scope in sorted(within_scope, key=lambda p: (p.count(".") if p else -1, natural_key(p))):
        nodes = [n for n in within_scope[scope] if n.id not in taken]
        for run in _find_steps(graph, scope, nodes, readers, min_repeat, independent):
            runs.append(run)
            taken.update(i for step in run.steps + run.private for i in step)
    return _fold_steps(graph, runs, readers) if runs else graph


class _Steps(NamedTuple):
    """A loop in `scope`: each step's node ids in the order they ran, and the ops each step
    alone reads (its slice of the input), aligned across steps."""

    scope: str
    steps: list[list[str]]
    private: list[list[str]]
    independent: bool = False  # no step reads the one before


def _step_key(node: Node, shapes: bool = True) -> tuple[object, ...]:
    """What a node is in a step, whichever step: its op or module, where it ran and (unless
    `shapes` is off) its shapes; not its arguments (the step's index is one of them), nor
    how many inputs it has (the first step may start from constants, which are not drawn)."""
    shown = tuple(str(v.shape) for v in node.outputs) if shapes else ()
    return (node.kind, node.target, node.scope, shown)


def _find_steps(
    graph: Graph,
    scope: str,
    nodes: list[Node],
    readers: dict[str, list[str]],
    min_repeat: int,
    independent: bool = False,
) -> list[_Steps]:
    """The loops among one scope's nodes (in the order they ran): the ones covering most
    nodes first, none overlapping."""
    # Folding for a screen, steps may differ in their shapes (SSD's classes keep as many
    # boxes as scored high): the cluster says one step is drawn.
    keys = [_step_key(n, shapes=not independent) for n in nodes]
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
                run = _best_phase(graph, scope, stretch, period, readers, min_repeat, independent)
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
    independent: bool = False,
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
        if crossing == 0 and not (independent and period >= 2 and count >= MIN_INDEPENDENT):
            # Cut here, the steps are independent: repetition, not a loop, unless folding
            # for a screen, and many steps of several ops each (three `torch.cat`s of
            # different lists are not a loop).
            return None
        rank = (-count, crossing / (count - 1)) if crossing is not None else None
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, steps)
    if best is None:
        return None
    ids = [[n.id for n in step] for step in best[1]]
    run = _Steps(scope, ids, _private(graph, ids, readers), best[0][1] == 0)
    if run.independent and not _shares_its_inputs(graph, run):
        return None
    return run


def _shares_its_inputs(graph: Graph, run: _Steps) -> bool:
    """Every step reads what the kept first one reads from outside the loop (SSD's classes
    all read the one score tensor): folded, no step's own input is left read by nothing."""
    inside = {i for step in run.steps + run.private for i in step}
    kept = {s for i in run.steps[0] + run.private[0] for s in graph.node(i).inputs}
    for step in run.steps[1:] + run.private[1:]:
        for i in step:
            if any(s not in inside and s not in kept for s in graph.node(i).inputs):
                return False
    return True


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
        modules.append(
            Module(
                path=path,
                class_name=LOOP,
                qualname="",
                repeat=len(run.steps),
                hparams=INDEPENDENT if run.independent else "",
            )
        )
        # The modules the kept step ran in get a copy under the loop, for their clusters.
        inner = {
            p for i in kept for p in lineage(graph.node(i).scope) if within(p, where) and p != where
        }
        for m in graph.modules:
            if m.path in inner:
                modules.append(replace(m, path=into_loop(m.path, where, path)))
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
            scope = into_loop(scope, *moved[node.id])
        nodes.append(replace(node, inputs=inputs, scope=scope))
    # Ops that only dropped steps read (when steps had no common kind of private input) are
    # left without readers: drop them too.
    left = readers_of(nodes)
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
