"""Views make a big graph readable: pure functions from Graph to Graph, composable.

- `fold_repeats`: consecutive sibling modules with the same structure (classes, hyper-
  parameters, parameter counts, node shapes; names ignored), each reading the one before,
  are drawn once: the first keeps its nodes, relabelled `encoder.layer.0–11` with
  `repeat=12`, and whatever read the last one now reads it.
- `drop_dead_ends`: ops whose values nothing reads (an attention call's unused `[1]`) are
  left out.
- `box_leaf_modules`: a module with no submodules of its own (Llama's `LlamaRMSNorm`, a GELU
  wrapper) is drawn as one box, as torch.nn's own leaves (`LayerNorm`) are.
- `group_lines`: the ops one source line ran back to back (`apply_rotary_pos_emb(q, k, cos,
  sin)`: 16 ATen ops) are drawn as one node that lists them.
- `collapse`: every module deeper than `depth` becomes one node with its inputs, outputs,
  total parameters and FLOPs.

All four only change the picture: JSON output is always the full traced graph.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import replace
from typing import NamedTuple, TypeVar

from fxviz.graph import (
    Graph,
    Module,
    Node,
    ParamCount,
    Value,
    indexed,
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
    grouped, then modules deeper than `depth` collapsed. `every_op` draws every traced op;
    `expand` names module classes to keep open (`--expand LlamaRMSNorm`)."""
    if fold:
        graph = fold_repeats(graph)
    if not every_op:
        graph = group_lines(box_leaf_modules(drop_dead_ends(graph), expand), expand)
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
            parts = n.owner.split(".")
            for k in range(1, len(parts) + 1):
                self.members[".".join(parts[:k])].append(i)
        self.readers: dict[str, set[str]] = defaultdict(set)
        for n in graph.nodes:
            for source in n.inputs:
                self.readers[source].add(n.id)
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
        inputs = tuple(dict.fromkeys(remap.get(i, i) for i in node.inputs))
        if within(node.owner, first):
            node = replace(
                node,
                target=_relabel(node.target, first, label)
                if node.kind == "module"
                else node.target,
                scope=_relabel(node.scope, first, label),
            )
        nodes.append(replace(node, inputs=inputs))
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
    leaves = {
        m.path
        for m in graph.modules
        if m.path and not graph.children(m.path) and m.class_name not in expand
    }

    def call_key(node: Node) -> str | None:
        where = node.owner
        inside = node.kind not in ("input", "output", "module") and where in leaves
        return where if inside else None

    # Constants are skipped, not run breakers: export puts them all at the top.
    calls = _consecutive((n for n in graph.nodes if n.kind != "constant"), call_key)
    call_of = {n.id: index for index, (_, run) in enumerate(calls) for n in run}
    readers: dict[str, set[int]] = defaultdict(set)
    for node in graph.nodes:
        for i in node.inputs:
            readers[i].add(call_of.get(node.id, -1))
    for node in graph.nodes:
        if node.kind == "constant" and node.scope in leaves and len(readers[node.id]) == 1:
            (index,) = readers[node.id]
            if index >= 0 and calls[index][0] == node.scope:
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
