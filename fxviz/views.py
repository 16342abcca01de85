"""Views make a big graph readable: pure functions from Graph to Graph, composable.

- `fold_repeats`: consecutive sibling modules with the same structure (classes, hyper-
  parameters, parameter counts, node shapes; names ignored), each reading the one before,
  are drawn once: the first keeps its nodes, relabelled `encoder.layer.0–11` with class
  `BertLayer ×12`, and whatever read the last one now reads it.
- `collapse`: every module deeper than `depth` becomes one node with its inputs, outputs,
  total parameters and FLOPs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from fxviz.graph import Graph, Module, Node, ParamCount, Value, natural_key, unique_id


def owner(node: Node) -> str:
    """The module a node belongs to: a module call's own path, else its scope."""
    return node.target if node.kind == "module" else node.scope


def within(path: str, top: str) -> bool:
    """`path` is `top` or inside it (`layer1.2.conv1` is within `layer1.2`)."""
    return path == top or (bool(top) and path.startswith(top + "."))


def structure_signature(path: str, modules: dict[str, Module]) -> str:
    """A module subtree's structure without its names."""
    m = modules[path]
    depth = path.count(".") + 1
    children = [p for p in modules if p.startswith(path + ".") and p.count(".") == depth]
    inner = ",".join(structure_signature(c, modules) for c in children)
    return f"{m.class_name}({m.hparams}|{m.params.total})[{inner}]"


MIN_REPEAT = 3


def apply_views(graph: Graph, depth: int | None = None, fold: bool = True) -> Graph:
    """The default picture: repeated blocks folded, then modules deeper than `depth` collapsed."""
    if fold:
        graph = fold_repeats(graph)
    if depth is not None:
        graph = collapse(graph, depth)
    return graph


def fold_repeats(graph: Graph, min_repeat: int = MIN_REPEAT) -> Graph:
    """Draw runs of `min_repeat` or more identical consecutive blocks once, with their count.

    Two blocks are not folded by default: that saves little and hides real module names."""
    modules = {m.path: m for m in graph.modules}
    children: dict[str, list[str]] = defaultdict(list)
    for path in sorted((p for p in modules if p), key=natural_key):
        children[path.rpartition(".")[0]].append(path)
    for parent in sorted(children, key=lambda p: (p.count(".") if p else -1, natural_key(p))):
        for run in _runs(graph, children[parent], modules):
            if len(run) >= min_repeat:
                graph = _fold(graph, run)
            modules = {m.path: m for m in graph.modules}
    return graph


def _members(graph: Graph, path: str) -> list[int]:
    return [
        i
        for i, n in enumerate(graph.nodes)
        if n.kind not in ("input", "output") and within(owner(n), path)
    ]


def _shape_key(graph: Graph, indices: list[int], path: str) -> tuple[tuple[str, ...], ...]:
    """What each member is and makes, with paths relative to the block (names ignored)."""
    keys = []
    for i in indices:
        n = graph.nodes[i]
        what = n.target[len(path) :] if n.kind in ("module", "constant") else n.target
        keys.append((n.kind, n.module_class or "", what, *(str(v.shape) for v in n.outputs)))
    return tuple(keys)


def _runs(graph: Graph, siblings: list[str], modules: dict[str, Module]) -> list[list[str]]:
    """Maximal runs (2 or more) of consecutive, identical, chained siblings."""
    runs: list[list[str]] = []
    current: list[str] = []
    previous_key: object = None
    for path in siblings:
        members = _members(graph, path)
        key = (
            (structure_signature(path, modules), _shape_key(graph, members, path))
            if members
            else None
        )
        if key is not None and key == previous_key and _chained(graph, current[-1], path):
            current.append(path)
        else:
            if len(current) > 1:
                runs.append(current)
            current = [path] if key is not None else []
        previous_key = key
    if len(current) > 1:
        runs.append(current)
    return runs


def _chained(graph: Graph, before: str, after: str) -> bool:
    """`after` reads `before`, and nothing else reads `before`."""
    ids_before = {graph.nodes[i].id for i in _members(graph, before)}
    ids_after = {graph.nodes[i].id for i in _members(graph, after)}
    reads = any(set(graph.nodes[i].inputs) & ids_before for i in _members(graph, after))
    leaks = any(
        set(n.inputs) & ids_before
        for n in graph.nodes
        if n.id not in ids_before and n.id not in ids_after
    )
    return reads and not leaks


def _fold(graph: Graph, run: list[str]) -> Graph:
    first, last = run[0], run[-1]
    keep = _members(graph, first)
    drop = {graph.nodes[i].id for path in run[1:] for i in _members(graph, path)}
    last_ids = [graph.nodes[i].id for i in _members(graph, last)]
    remap = dict(zip(last_ids, (graph.nodes[i].id for i in keep), strict=False))
    label = f"{first}–{last.rpartition('.')[2]}" if "." in first else f"{first}–{last}"
    nodes: list[Node] = []
    for node in graph.nodes:
        if node.id in drop:
            continue
        inputs = tuple(dict.fromkeys(remap.get(i, i) for i in node.inputs))
        if within(owner(node), first):
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
                    class_name=f"{m.class_name} ×{count}",
                    params=ParamCount(m.params.trainable * count, m.params.frozen * count),
                )
        folded_modules.append(m)
    return replace(graph, nodes=tuple(nodes), modules=tuple(folded_modules))


def _relabel(path: str, old: str, new: str) -> str:
    return new + path[len(old) :] if within(path, old) else path


def collapse(graph: Graph, depth: int) -> Graph:
    """Draw every module deeper than `depth` path components as one node."""
    if depth < 1:
        raise ValueError("depth counts path components and starts at 1")
    modules = {m.path: m for m in graph.modules}
    # A module at depth N takes everything its forward ran: submodules and functions alike
    # (a block's residual `add` sits in its scope); a lone leaf at depth N stays as it is.
    group_of: dict[str, str] = {}
    for node in graph.nodes:
        where = owner(node)
        if node.kind not in ("input", "output") and where and where.count(".") + 1 >= depth:
            group_of[node.id] = ".".join(where.split(".")[:depth])
    members: dict[str, list[Node]] = defaultdict(list)
    for node in graph.nodes:
        if node.id in group_of:
            members[group_of[node.id]].append(node)
    for path, group in list(members.items()):
        if len(group) == 1 and group[0].kind == "module" and group[0].target == path:
            del members[path]
            del group_of[group[0].id]
    if not group_of:
        return graph
    taken = {n.id for n in graph.nodes if n.id not in group_of}
    group_id: dict[str, str] = {}
    for path in members:
        group_id[path] = unique_id(path.replace(".", "_").replace("–", "_"), taken)
    rename = {node_id: group_id[path] for node_id, path in group_of.items()}
    consumers: dict[str, set[str]] = defaultdict(set)
    for node in graph.nodes:
        for i in node.inputs:
            consumers[i].add(rename.get(node.id, node.id))
    nodes: list[Node] = []
    emitted: set[str] = set()
    for node in graph.nodes:
        if node.id not in group_of:
            inputs = tuple(dict.fromkeys(rename.get(i, i) for i in node.inputs))
            nodes.append(replace(node, inputs=inputs))
            continue
        path = group_of[node.id]
        if path in emitted:
            continue
        emitted.add(path)
        nodes.append(_group_node(group_id[path], path, members[path], rename, consumers, modules))
    return replace(graph, nodes=_topological(nodes))


def _group_node(
    node_id: str,
    path: str,
    members: list[Node],
    rename: dict[str, str],
    consumers: dict[str, set[str]],
    modules: dict[str, Module],
) -> Node:
    inside = {n.id for n in members}
    inputs = tuple(
        dict.fromkeys(rename.get(i, i) for n in members for i in n.inputs if i not in inside)
    )
    produced = [n for n in members if consumers[n.id] - {node_id}]
    outputs: tuple[Value, ...] = ()
    for index, n in enumerate(produced):
        values = (
            n.outputs
            if len(produced) == 1
            else tuple(replace(v, path=f"[{index}]{v.path}") for v in n.outputs)
        )
        outputs += values
    module = modules.get(path)
    return Node(
        id=node_id,
        kind="module",
        target=path,
        scope=path.rpartition(".")[0],
        module_class=module.class_name if module else "",
        inputs=inputs,
        outputs=outputs,
        params=module.params if module else ParamCount(),
        buffers=module.buffers if module else 0,
        flops=sum(n.flops for n in members),
        source=members[0].source,
    )


def _topological(nodes: list[Node]) -> tuple[Node, ...]:
    """Stable order in which every node comes after its inputs (contraction can reorder)."""
    position = {n.id: i for i, n in enumerate(nodes)}
    done: set[str] = set()
    ordered: list[Node] = []
    pending = list(nodes)
    while pending:
        rest = []
        for node in pending:
            if all(i in done or i not in position for i in node.inputs):
                ordered.append(node)
                done.add(node.id)
            else:
                rest.append(node)
        if len(rest) == len(pending):  # a cycle cannot come from contracting modules; keep order
            ordered += rest
            break
        pending = rest
    return tuple(ordered)
