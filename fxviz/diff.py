"""What changed between two architectures: a structural matcher over two Graphs.

Matching, in order:
1. Modules with the same path are the same module; a different class, hyper-parameters,
   parameter count or output shape makes it *changed*.
2. Of what is left, a subtree in A and one in B with the same structure (classes, hyper-
   parameters, parameter counts, wiring of their children, names ignored) are the same module
   *renamed* or moved (`block` -> `stage`), not a removal plus an addition.
3. The rest is *added* or *removed*, reported at the top-most module only (`layer3.2`, not
   each of its convolutions).
4. A matched module whose inputs now come from a different module is *rewired*, unless the
   new or old source was itself added or removed (inserting a block rewires its successor).

Works on saved graphs alone, so `fxviz diff a.json b.json` never imports torch.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Literal

from fxviz.graph import Graph, Module, Node, within
from fxviz.humanize import format_shape
from fxviz.views import signatures

DIFF_SCHEMA_VERSION = 1

ChangeKind = Literal["added", "removed", "renamed", "changed", "rewired"]


@dataclass(frozen=True, slots=True)
class Change:
    """One difference; `path_a`/`path_b` are "" where the module exists on one side only."""

    kind: ChangeKind
    path_a: str
    path_b: str
    class_name: str
    details: tuple[str, ...] = ()
    params_delta: int = 0

    @property
    def path(self) -> str:
        return self.path_b or self.path_a


@dataclass(frozen=True, slots=True)
class GraphDiff:
    a: str
    b: str
    changes: tuple[Change, ...]
    params_a: int
    params_b: int
    flops_a: int
    flops_b: int
    first_divergence: str = ""
    schema_version: int = DIFF_SCHEMA_VERSION

    @property
    def identical(self) -> bool:
        return not self.changes and self.params_a == self.params_b

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for change in self.changes:
            counts[change.kind] += 1
        return dict(counts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "a": self.a,
            "b": self.b,
            "identical": self.identical,
            "params": {
                "a": self.params_a,
                "b": self.params_b,
                "delta": self.params_b - self.params_a,
            },
            "flops": {"a": self.flops_a, "b": self.flops_b, "delta": self.flops_b - self.flops_a},
            "first_divergence": self.first_divergence,
            "counts": dict(sorted(self.counts().items())),
            "changes": [
                {
                    "kind": c.kind,
                    "path_a": c.path_a,
                    "path_b": c.path_b,
                    "class_name": c.class_name,
                    "details": list(c.details),
                    "params_delta": c.params_delta,
                }
                for c in self.changes
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def diff(a: Graph, b: Graph) -> GraphDiff:
    """Compare two traced graphs (see the module docstring for how modules are matched)."""
    mods_a = {m.path: m for m in a.modules if m.path}
    mods_b = {m.path: m for m in b.modules if m.path}
    out_a, out_b = _module_outputs(a), _module_outputs(b)
    changes: list[Change] = []

    common = [p for p in mods_a if p in mods_b]
    for path in common:
        details = _differences(a, b, path, out_a.get(path), out_b.get(path))
        if details:
            delta = _own_params(b, path) - _own_params(a, path)
            changes.append(Change("changed", path, path, mods_b[path].class_name, details, delta))

    only_a = _tops([p for p in mods_a if p not in mods_b])
    only_b = _tops([p for p in mods_b if p not in mods_a])
    renamed: dict[str, str] = {}
    signatures_b: dict[str, list[str]] = defaultdict(list)
    of_a, of_b = signatures(a), signatures(b)
    for path in only_b:
        signatures_b[of_b[path]].append(path)
    for path in only_a:
        candidates = signatures_b.get(of_a[path])
        if candidates:
            target = candidates.pop(0)
            renamed[path] = target
            changes.append(
                Change("renamed", path, target, mods_a[path].class_name, (f"{path} -> {target}",))
            )
    for path in only_a:
        if path not in renamed:
            m = mods_a[path]
            changes.append(Change("removed", path, "", m.class_name, (), -m.params.total))
    moved_to = set(renamed.values())
    for path in only_b:
        if path not in moved_to:
            m = mods_b[path]
            changes.append(Change("added", "", path, m.class_name, (), m.params.total))

    gone = {p for p in mods_a if any(within(p, top) for top in only_a if top not in renamed)}
    new = {p for p in mods_b if any(within(p, top) for top in only_b if top not in moved_to)}
    changes += _rewired(a, b, renamed, gone, new)
    # In model order: B's module order, A's for what exists only in A.
    rank_a = {p: i for i, p in enumerate(mods_a)}
    rank_b = {p: i for i, p in enumerate(mods_b)}
    changes.sort(key=lambda c: (rank_b.get(c.path_b, rank_a.get(c.path_a, 0)), c.kind))
    return GraphDiff(
        a=a.name if a.source == a.name else a.source,
        b=b.name if b.source == b.name else b.source,
        changes=tuple(changes),
        params_a=a.totals.params.total,
        params_b=b.totals.params.total,
        flops_a=a.totals.flops,
        flops_b=b.totals.flops,
        first_divergence=_first_divergence(a, b, out_a, out_b),
    )


def _tops(paths: list[str]) -> list[str]:
    """Only the top-most of a set of paths: `layer1.2`, not also `layer1.2.conv1`."""
    chosen = set(paths)
    return [p for p in paths if not any(within(p, q) and p != q for q in chosen)]


def _own_params(graph: Graph, path: str) -> int:
    return _module(graph, path).params.total - sum(
        _module(graph, c).params.total for c in graph.children(path)
    )


def _module(graph: Graph, path: str) -> Module:
    module = graph.module(path)
    assert module is not None, path
    return module


def _module_outputs(graph: Graph) -> dict[str, Node]:
    """Each module path's first call node (leaf modules)."""
    found: dict[str, Node] = {}
    for node in graph.nodes:
        if node.kind == "module" and node.target not in found:
            found[node.target] = node
    return found


def _shape_text(node: Node | None) -> str:
    if node is None:
        return ""
    return ", ".join(format_shape(v.shape or ()) for v in node.outputs if v.is_tensor)


def _differences(
    a: Graph, b: Graph, path: str, na: Node | None, nb: Node | None
) -> tuple[str, ...]:
    ma, mb = _module(a, path), _module(b, path)
    details = []
    if ma.class_name != mb.class_name:
        details.append(f"class {ma.class_name} -> {mb.class_name}")
    if ma.hparams != mb.hparams:
        details.append(f"{ma.hparams or '()'} -> {mb.hparams or '()'}")
    own_a, own_b = _own_params(a, path), _own_params(b, path)
    if own_a != own_b:
        details.append(f"params {own_a:,} -> {own_b:,}")
    if ma.params.frozen != mb.params.frozen and not a.children(path):
        details.append(f"frozen {ma.params.frozen:,} -> {mb.params.frozen:,}")
    shape_a, shape_b = _shape_text(na), _shape_text(nb)
    if na is not None and nb is not None and shape_a != shape_b:
        details.append(f"output {shape_a} -> {shape_b}")
    dtypes_a = [v.dtype for v in na.outputs] if na else []
    dtypes_b = [v.dtype for v in nb.outputs] if nb else []
    if na is not None and nb is not None and dtypes_a != dtypes_b:
        details.append(f"dtype {','.join(map(str, dtypes_a))} -> {','.join(map(str, dtypes_b))}")
    return tuple(details)


def _sources(graph: Graph) -> dict[str, set[str]]:
    """For each module path: the modules (or inputs) its first call reads, through functions."""
    by_id = {n.id: n for n in graph.nodes}
    memo: dict[str, frozenset[str]] = {}

    def producers(node_id: str) -> frozenset[str]:
        if node_id in memo:
            return memo[node_id]
        node = by_id[node_id]
        if node.kind == "module":
            result = frozenset({node.target})
        elif node.kind in ("input", "constant"):
            result = frozenset({f"<{node.kind} {node.target}>"})
        else:
            memo[node_id] = frozenset()
            result = frozenset().union(*(producers(i) for i in node.inputs))
        memo[node_id] = result
        return result

    found: dict[str, set[str]] = {}
    for node in graph.nodes:
        if node.kind == "module" and node.target not in found:
            found[node.target] = set().union(*(producers(i) for i in node.inputs))
    return found


def _rewired(
    a: Graph, b: Graph, renamed: dict[str, str], gone: set[str], new: set[str]
) -> list[Change]:
    src_a, src_b = _sources(a), _sources(b)
    moved = {
        old: renamed[top] + old[len(top) :] for top in renamed for old in src_a if within(old, top)
    }
    changes = []
    for path_a, before in src_a.items():
        path_b = moved.get(path_a, path_a)
        if path_b not in src_b or path_a in gone:
            continue
        mapped = {moved.get(s, s) for s in before}
        after = src_b[path_b]
        lost, gained = mapped - after, after - mapped
        explained = any(s in new for s in gained) or any(s in gone for s in before - src_b.keys())
        if (lost or gained) and not explained:
            detail = f"inputs {', '.join(sorted(mapped))} -> {', '.join(sorted(after))}"
            cls = next((m.class_name for m in b.modules if m.path == path_b), "")
            changes.append(Change("rewired", path_a, path_b, cls, (detail,)))
    return changes


def _first_divergence(a: Graph, b: Graph, out_a: dict[str, Node], out_b: dict[str, Node]) -> str:
    for path, node in out_a.items():
        other = out_b.get(path)
        if other is not None and _shape_text(node) != _shape_text(other):
            return f"{path}: {_shape_text(node)} -> {_shape_text(other)}"
    return ""


_SIGNS = {"added": "+", "removed": "-", "renamed": "~", "changed": "*", "rewired": ">"}


def format_report(d: GraphDiff) -> str:
    """The terminal report: changes grouped by top-level module, then the totals."""
    if d.identical:
        return f"{d.a} and {d.b} are identical\n"
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(d.counts().items()))
    lines = [f"{d.a} -> {d.b}: {counts}"]
    groups: dict[str, list[Change]] = defaultdict(list)
    for change in d.changes:
        groups[change.path.split(".")[0]].append(change)
    for group, changes in groups.items():
        delta = sum(c.params_delta for c in changes)
        lines.append(f"  {group}" + (f" ({delta:+,} params)" if delta else ""))
        for c in changes:
            what = c.path if c.kind != "renamed" else f"{c.path_a} -> {c.path_b}"
            extra = [f"{c.params_delta:+,} params"] if c.params_delta else []
            extra += [x for x in c.details if c.kind != "renamed"]
            lines.append(
                f"    {_SIGNS[c.kind]} {c.kind:<8} {what} ({c.class_name})"
                + "".join(f"; {x}" for x in extra)
            )
    lines.append(f"params: {d.params_a:,} -> {d.params_b:,} ({d.params_b - d.params_a:+,})")
    lines.append(f"FLOPs: {d.flops_a:,} -> {d.flops_b:,} ({d.flops_b - d.flops_a:+,})")
    if d.first_divergence:
        lines.append(f"first shape that diverges: {d.first_divergence}")
    return "\n".join(lines) + "\n"
