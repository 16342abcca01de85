"""What changed between two architectures, as a reviewer sorts it: causes and consequences.

A *cause* is local: a module added, removed, moved, or changed in its class, hyper-parameters,
own parameters or frozen state; a graph input whose shape changed; a module that reads from
somewhere else (rewired). An output shape that changed because something upstream did is a
*consequence*: it is kept (kind "shape") with the index of the cause it follows from, the
nearest one upstream in the data flow. A shape change with no cause upstream (a function
changed, not a module) is a cause of its own. Later layers renumbered by an insertion are
kind "renumbered", neither.

Works on saved graphs alone, so `fxviz diff a.json b.json` never imports torch.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

from fxviz.diff.match import Matching, is_position, match
from fxviz.graph import (
    Graph,
    Module,
    Node,
    drawing,
    lineage,
    parent_path,
    split_hparams,
    within,
)
from fxviz.humanize import format_shape

DIFF_SCHEMA_VERSION = 2

ChangeKind = Literal[
    "input", "added", "removed", "renamed", "renumbered", "changed", "rewired", "shape"
]


@dataclass(frozen=True, slots=True)
class Change:
    """One difference. `path_a`/`path_b` are "" where the module exists on one side only.
    `facets` say what changed in words that do not depend on where (`sizes ×2 (64 -> 128)`,
    `class Bert* -> Electra*`), so that the same edit in many places groups; `cause` is, for
    a consequence, the index of the change it follows from."""

    kind: ChangeKind
    path_a: str
    path_b: str
    class_name: str
    details: tuple[str, ...] = ()
    params_delta: int = 0
    facets: tuple[str, ...] = ()
    cause: int | None = None

    @property
    def path(self) -> str:
        return self.path_b or self.path_a

    @property
    def is_consequence(self) -> bool:
        return self.kind == "shape" and self.cause is not None


@dataclass(frozen=True, slots=True)
class Group:
    """Changes a reviewer names once: `what` changed, `where` (a path pattern), which
    `members` (indices into the changes), and how many consequences follow from them."""

    kind: ChangeKind
    what: str
    where: str
    members: tuple[int, ...]
    params_delta: int
    consequences: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "what": self.what,
            "where": self.where,
            "members": list(self.members),
            "params_delta": self.params_delta,
            "consequences": self.consequences,
        }


@dataclass(frozen=True, slots=True)
class GraphDiff:
    a: str
    b: str
    changes: tuple[Change, ...]
    groups: tuple[Group, ...]
    params_a: int
    params_b: int
    flops_a: int
    flops_b: int
    first_divergence: str = ""
    schema_version: int = DIFF_SCHEMA_VERSION
    # The graphs compared, for a notebook's display; not part of the diff's JSON.
    graphs: tuple[Graph, Graph] | None = field(default=None, compare=False, repr=False)

    @property
    def identical(self) -> bool:
        return not self.changes and self.params_a == self.params_b

    def counts(self) -> dict[str, int]:
        """How many changes of each kind; consequences are counted as `shape`."""
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
                    "facets": list(c.facets),
                    "params_delta": c.params_delta,
                    "cause": c.cause,
                }
                for c in self.changes
            ],
            "groups": [g.to_dict() for g in self.groups],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def _repr_html_(self) -> str:
        """A notebook shows the diff's page: the merged picture and the report beside it."""
        text: str = drawing("diff_notebook_html")(self)
        return text

    def _repr_svg_(self) -> str:
        text: str = drawing("diff_svg")(self)
        return text

    def _repr_mimebundle_(self, include: object = None, exclude: object = None) -> dict[str, str]:
        if self.graphs is None:  # read back from JSON: the report alone
            from fxviz.diff.report import format_report

            return {"text/plain": format_report(self)}
        return {"text/html": self._repr_html_(), "image/svg+xml": self._repr_svg_()}


def diff(a: Graph, b: Graph) -> GraphDiff:
    """Compare two traced graphs: match their modules (fxviz.diff.match), list the causes in
    model order, then the shape changes that follow from them, then group."""
    from fxviz.diff.groups import group

    m = match(a, b)
    causes = _input_changes(a, b) + _module_changes(a, b, m)
    rank_b = {mod.path: float(i) for i, mod in enumerate(b.modules)}
    rank_a = _ranks_in_b(a, m, rank_b)
    causes.sort(
        key=lambda c: (
            c.kind != "input",
            rank_b.get(c.path_b, 0.0) if c.path_b else rank_a.get(c.path_a, 0.0),
            c.kind,
        )
    )
    changes = causes + _shape_changes(a, b, m, causes, rank_b)
    return GraphDiff(
        a=a.name if a.source == a.name else a.source,
        b=b.name if b.source == b.name else b.source,
        changes=tuple(changes),
        groups=group(changes, b),
        params_a=a.totals.params.total,
        params_b=b.totals.params.total,
        flops_a=a.totals.flops,
        flops_b=b.totals.flops,
        graphs=(a, b),
        first_divergence=next(
            (
                f"{c.path}: {c.details[0].removeprefix('output ')}"
                for c in changes
                if c.kind == "shape"
            ),
            "",
        ),
    )


def _ranks_in_b(a: Graph, m: Matching, rank_b: dict[str, float]) -> dict[str, float]:
    """A's modules placed in B's order: one B lacks goes just after the last module before
    it that B has."""
    ranks: dict[str, float] = {}
    last = -1.0
    for module in a.modules:
        matched = m.pairs.get(module.path)
        if matched is not None and matched in rank_b:
            last = rank_b[matched]
            ranks[module.path] = last
        else:
            ranks[module.path] = last + 0.5
    return ranks


def _module_changes(a: Graph, b: Graph, m: Matching) -> list[Change]:
    changes: list[Change] = []
    inside_moved = {p for top in m.moved for p in m.pairs if p == top or p.startswith(top + ".")}
    for path_a, path_b in m.pairs.items():
        if not path_a:  # the root: its class is the model's; what its config decides counts
            root_a, root_b = _module(a, ""), _module(b, "")
            if root_a.hparams != root_b.hparams:
                before, after = root_a.hparams or "()", root_b.hparams or "()"
                facet = _sizes_facet(root_a.hparams, root_b.hparams)
                detail = f"{before} -> {after}"
                changes.append(Change("changed", "", "", root_b.class_name, (detail,), 0, (facet,)))
            continue
        change = _changed(a, b, path_a, path_b)
        if path_a in m.moved:
            changes.append(_renamed(m, path_a, path_b, _module(b, path_b).class_name, change))
            continue
        if path_a not in inside_moved and _last(path_a) != _last(path_b):
            cls = _module(b, path_b).class_name
            changes.append(Change("renumbered", path_a, path_b, cls, (f"{path_a} -> {path_b}",)))
        if change is not None:
            changes.append(change)
    moved_a, moved_b = set(m.moved), set(m.moved.values())
    for path in m.removed:
        module = _module(a, path)
        own = module.params.total - _held(a, path, moved_a)
        changes.append(Change("removed", path, "", module.class_name, _position(a, path), -own))
    src_b = _sources(b)
    for path in m.added:
        module = _module(b, path)
        own = module.params.total - _held(b, path, moved_b)
        where = _position(b, path) or _branch(m, path, src_b)
        changes.append(Change("added", "", path, module.class_name, where, own))
    return changes + _rewired(a, b, m)


def _branch(m: Matching, path: str, src_b: dict[str, set[str]]) -> tuple[str, ...]:
    """`a new branch beside block.attn (both read act)`: an added module that reads what a
    module both models have reads, and whose readers read more than it (a join)."""
    reads = src_b.get(path, set())
    kept = set(m.pairs.values()) - {""}
    readers = [k for k in kept if path in src_b.get(k, set())]
    if not reads or any(src_b[k] == {path} for k in readers):
        return ()  # in line: what read its input now reads it
    beside = sorted(k for k in kept if src_b.get(k, set()) & reads and not within(k, path))
    if not beside:
        return ()
    shared = ", ".join(sorted(reads & src_b[beside[0]]))
    # The outermost module around it that both models have and that does not hold the branch.
    around = next(p for p in reversed(lineage(beside[0])) if p in kept and not within(path, p))
    return (f"a new branch beside {around} (both read {shared})",)


# A renamed module's facets that say where it is, not what it computes.
_NAME_FACETS = ("renamed ", "moved", "class ")


def _held(graph: Graph, path: str, moved: set[str]) -> int:
    """The parameters of the moved modules inside `path`: a new container's are theirs."""
    return sum(
        _module(graph, p).params.total for p in moved if p != path and p.startswith(path + ".")
    )


def _renamed(
    m: Matching, path_a: str, path_b: str, class_name: str, change: Change | None
) -> Change:
    """A module renamed (`attn -> self_attn`, in the same place) or moved (`block ->
    encoder.block`), and what else changed in it, as one change."""
    same_place = m.pairs.get(parent_path(path_a)) == parent_path(path_b)
    name = f"renamed {_last(path_a)} -> {_last(path_b)}"
    facet = name if same_place else "moved"
    details = (f"{path_a} -> {path_b}", *(change.details if change else ()))
    facets = (facet, *(change.facets if change else ()))
    delta = change.params_delta if change else 0
    return Change("renamed", path_a, path_b, class_name, details, delta, facets)


def _changed(a: Graph, b: Graph, path_a: str, path_b: str) -> Change | None:
    ma, mb = _module(a, path_a), _module(b, path_b)
    details: list[str] = []
    facets: list[str] = []
    if ma.class_name != mb.class_name:
        details.append(f"class {ma.class_name} -> {mb.class_name}")
        facets.append(_class_facet(ma.class_name, mb.class_name))
    if ma.hparams != mb.hparams:
        details.append(f"{ma.hparams or '()'} -> {mb.hparams or '()'}")
        # Another class has other arguments: their numbers mean nothing side by side.
        same_class = ma.class_name == mb.class_name
        facets.append(_sizes_facet(ma.hparams, mb.hparams) if same_class else "hyper-parameters")
    own_a, own_b = _own_params(a, path_a), _own_params(b, path_b)
    if own_a != own_b:
        details.append(f"params {own_a:,} -> {own_b:,}")
        if ma.hparams == mb.hparams:
            facets.append("own parameters")
    if ma.params.frozen != mb.params.frozen and not b.children(path_b):
        details.append(f"frozen {ma.params.frozen:,} -> {mb.params.frozen:,}")
        facets.append("frozen" if mb.params.frozen > ma.params.frozen else "made trainable")
    if not details:
        return None
    return Change(
        "changed", path_a, path_b, mb.class_name, tuple(details), own_b - own_a, tuple(facets)
    )


def _class_facet(before: str, after: str) -> str:
    """`class Bert* -> Electra*` when the names differ by a CamelCase prefix, so that a family
    of renamed classes groups; else the two names."""
    family = _family(before, after)
    return f"class {family[0]}* -> {family[1]}*" if family else f"class {before} -> {after}"


def _family(before: str, after: str) -> tuple[str, str] | None:
    common = 0
    while common < min(len(before), len(after)) and before[-1 - common] == after[-1 - common]:
        common += 1
    for k in range(common, 0, -1):
        head_a, head_b = before[:-k], after[:-k]
        if (
            before[-k].isupper()
            and head_a
            and head_b
            and not head_a[-1].isupper()
            and not head_b[-1].isupper()
        ):
            return head_a, head_b
    return None


# Keyword hyper-parameters that are not widths: a change to them is named, not scaled.
_NOT_SIZES = frozenset(
    {
        "kernel_size",
        "stride",
        "padding",
        "dilation",
        "groups",
        "output_padding",
        "eps",
        "momentum",
        "p",
        "padding_idx",
    }
)
_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def _sizes_facet(before: str, after: str) -> str:
    """The numbers that changed, by argument: `sizes ×2 (64 -> 128)`, `sizes 768 -> 256`,
    `stride 1 -> 2`; `hyper-parameters` where more than numbers changed. Sizes are the
    positional numbers and keywords such as `in_features`; `kernel_size` and the like are named."""
    tokens_a, tokens_b = split_hparams(before), split_hparams(after)
    if len(tokens_a) != len(tokens_b) or any(
        _NUMBER.sub("#", x) != _NUMBER.sub("#", y) for x, y in zip(tokens_a, tokens_b, strict=True)
    ):
        return _keywords_facet(tokens_a, tokens_b)
    positional: list[tuple[str, str]] = []
    named: list[str] = []
    for x, y in zip(tokens_a, tokens_b, strict=True):
        for n, o in zip(_NUMBER.findall(x), _NUMBER.findall(y), strict=True):
            if n == o:
                continue
            key = x.partition("=")[0] if "=" in x else ""
            if key in _NOT_SIZES:
                named.append(f"{key} {n} -> {o}")
            elif (n, o) not in positional:
                positional.append((n, o))
    parts = []
    if positional:
        listed = ", ".join(f"{n} -> {o}" for n, o in positional)
        ratio = _ratio(positional)
        parts.append(f"sizes {ratio} ({listed})" if ratio else f"sizes {listed}")
    return ", ".join([*parts, *dict.fromkeys(named)])


def _keywords_facet(tokens_a: list[str], tokens_b: list[str]) -> str:
    """Arguments added or dropped, beside the ones that changed: `512 -> 514, +padding_idx=1`;
    `hyper-parameters` where the two lists do not line up."""
    keyed_a = {t.partition("=")[0]: t for t in tokens_a if "=" in t}
    keyed_b = {t.partition("=")[0]: t for t in tokens_b if "=" in t}
    plain_a = [t for t in tokens_a if "=" not in t]
    plain_b = [t for t in tokens_b if "=" not in t]
    if len(plain_a) != len(plain_b):
        return "hyper-parameters"
    parts = [f"{x} -> {y}" for x, y in zip(plain_a, plain_b, strict=True) if x != y]
    for key in keyed_a.keys() & keyed_b.keys():
        if keyed_a[key] != keyed_b[key]:
            parts.append(f"{keyed_a[key]} -> {keyed_b[key].partition('=')[2]}")
    parts += [f"+{keyed_b[k]}" for k in keyed_b if k not in keyed_a]
    parts += [f"-{keyed_a[k]}" for k in keyed_a if k not in keyed_b]
    return ", ".join(parts) or "hyper-parameters"


def _ratio(pairs: list[tuple[str, str]]) -> str:
    """`×2` or `÷3` when every pair scales by the same whole factor, else ""."""
    if not all(n.isdigit() and o.isdigit() and int(n) and int(o) for n, o in pairs):
        return ""
    factors = {int(o) / int(n) for n, o in pairs}
    if len(factors) != 1:
        return ""
    factor = factors.pop()
    if factor > 1 and factor.is_integer():
        return f"×{int(factor)}"
    if factor < 1 and (1 / factor).is_integer():
        return f"÷{int(1 / factor)}"
    return ""


def _position(graph: Graph, path: str) -> tuple[str, ...]:
    """Where in a `Sequential`/`ModuleList` a module sits: `after features.0 (Conv2d)`."""
    if not is_position(path):
        return ()
    siblings = graph.children(parent_path(path))
    at = siblings.index(path)
    if at == 0:
        return (f"first in {parent_path(path) or 'the model'}",)
    before = siblings[at - 1]
    return (f"after {before} ({_module(graph, before).class_name})",)


def _input_changes(a: Graph, b: Graph) -> list[Change]:
    inputs_a = {n.target: n for n in a.nodes if n.kind == "input"}
    inputs_b = {n.target: n for n in b.nodes if n.kind == "input"}
    changes = []
    for name, node in inputs_b.items():
        before = inputs_a.get(name)
        if before is None:
            changes.append(Change("input", "", name, "input", ("added",), facets=("input",)))
        elif _value_text(before) != _value_text(node):
            detail = _value_change(before, node)
            changes.append(Change("input", name, name, "input", (detail,), facets=("input",)))
    for name in inputs_a.keys() - inputs_b.keys():
        changes.append(Change("input", name, "", "input", ("removed",), facets=("input",)))
    return changes


def _shape_changes(
    a: Graph, b: Graph, m: Matching, causes: list[Change], rank_b: dict[str, float]
) -> list[Change]:
    """Each matched module whose (first call's) output changed, with the cause it follows."""
    located_b = {
        c.path_b: i
        for i, c in enumerate(causes)
        if c.kind in ("added", "rewired")
        or (c.kind == "changed" and not all(f.startswith("class ") for f in c.facets))
        or (c.kind == "renamed" and not all(f.startswith(_NAME_FACETS) for f in c.facets))
    }
    located_a = {c.path_a: i for i, c in enumerate(causes) if c.kind == "removed"}
    fed_b = {c.path_b: i for i, c in enumerate(causes) if c.kind == "input" and c.path_b}
    fed_a = {c.path_a: i for i, c in enumerate(causes) if c.kind == "input" and c.path_a}
    latest_b = _latest_cause(b, located_b, fed_b)
    latest_a = _latest_cause(a, located_a, fed_a)
    calls_a, calls_b = _first_calls(a), _first_calls(b)
    found = []
    for path_a, path_b in sorted(m.pairs.items(), key=lambda p: rank_b.get(p[1], 0)):
        na, nb = calls_a.get(path_a), calls_b.get(path_b)
        if na is None or nb is None or _value_text(na) == _value_text(nb):
            continue
        cause = latest_b.get(nb.id)
        if cause is None:
            cause = latest_a.get(na.id)
        detail = f"output {_value_change(na, nb)}"
        found.append(
            Change(
                "shape",
                path_a,
                path_b,
                _module(b, path_b).class_name,
                (detail,),
                facets=("output shape",),
                cause=cause,
            )
        )
    return found


def _latest_cause(
    graph: Graph, at_path: dict[str, int], at_input: dict[str, int]
) -> dict[str, int]:
    """For each node: the cause that ran last among those upstream of it (itself included),
    following the data. A cause's place is its first node."""
    place: dict[int, int] = {}
    latest: dict[str, int] = {}
    for i, node in enumerate(graph.nodes):
        own = at_input.get(node.target) if node.kind == "input" else _enclosing(node.owner, at_path)
        candidates = [latest[x] for x in node.inputs if x in latest]
        if own is not None:
            place.setdefault(own, i)
            candidates.append(own)
        if candidates:
            latest[node.id] = max(candidates, key=place.__getitem__)
    return latest


def _enclosing(path: str, at: dict[str, int]) -> int | None:
    """The cause at `path` or at the nearest module around it."""
    return next((at[p] for p in lineage(path) if p in at), None)


def _value_change(before: Node, after: Node) -> str:
    """`1×8 -> 1×16`, with the dtypes only where they are what changed."""
    a, b = _value_text(before, dtype=False), _value_text(after, dtype=False)
    if a == b:
        a, b = _value_text(before), _value_text(after)
    return f"{a} -> {b}"


def _value_text(node: Node, dtype: bool = True) -> str:
    shapes = ", ".join(format_shape(v.shape or (), v.expr) for v in node.outputs if v.is_tensor)
    dtypes = sorted({v.dtype for v in node.outputs if v.is_tensor and v.dtype})
    return f"{shapes} {','.join(dtypes)}" if dtypes and dtype else shapes


def _first_calls(graph: Graph) -> dict[str, Node]:
    """Each module path's first call node (modules drawn as one node)."""
    found: dict[str, Node] = {}
    for node in graph.nodes:
        if node.kind == "module" and node.target not in found:
            found[node.target] = node
    return found


def _rewired(a: Graph, b: Graph, m: Matching) -> list[Change]:
    """Matched modules whose inputs now come from other modules, unless an added or removed
    module explains it (inserting a block rewires its successor). Two modules that read each
    other the other way round now are one swap, and so is what only the swap rewired."""
    src_a, src_b = _sources(a), _sources(b)
    added, removed = set(m.added), set(m.removed)
    found: dict[str, tuple[str, set[str], set[str]]] = {}
    for path_a, before in src_a.items():
        path_b = m.pairs.get(path_a)
        if path_b is None or path_b not in src_b:
            continue
        mapped = {m.pairs.get(s, s) for s in before}
        after = src_b[path_b]
        lost, gained = mapped - after, after - mapped
        explained = any(_inside(s, added) for s in gained) or any(
            _inside(s, removed) for s in before
        )
        if (lost or gained) and not explained:
            found[path_a] = (path_b, mapped, after)
    changes = []
    swapped: set[str] = set()
    for path_a, (path_b, mapped, after) in found.items():
        for other_a, (other_b, other_mapped, other_after) in found.items():
            if other_a == path_a or path_a in swapped or other_a in swapped:
                continue
            # A: other reads this one; B: this one reads the other.
            if path_b in other_mapped and other_b in after and other_b not in mapped:
                swapped |= {path_a, other_a}
                feeds = ", ".join(sorted(other_after - {path_b}) or ["the input"])
                detail = f"{other_b} and {path_b} swapped: now {feeds} -> {other_b} -> {path_b}"
                cls = _module(b, path_b).class_name
                changes.append(
                    Change("rewired", path_a, path_b, cls, (detail,), facets=("swapped",))
                )
    pairs_b = {m.pairs[p] for p in swapped}
    for path_a, (path_b, mapped, after) in found.items():
        if path_a in swapped or (swapped and (mapped ^ after) <= pairs_b):
            continue
        detail = f"inputs {', '.join(sorted(mapped))} -> {', '.join(sorted(after))}"
        cls = _module(b, path_b).class_name
        now = ", ".join(_source_words(s) for s in sorted(after - mapped)) or "less"
        was = ", ".join(_source_words(s) for s in sorted(mapped - after)) or "nothing more"
        facets = ("inputs", f"reading {now} instead of {was}")
        changes.append(Change("rewired", path_a, path_b, cls, (detail,), facets=facets))
    return changes


def _source_words(source: str) -> str:
    """`input_ids` for `<input input_ids>`, `the buffer embeddings.position_ids` for a
    constant, a module's path as it is."""
    if source.startswith("<input "):
        return source.removeprefix("<input ").removesuffix(">")
    if source.startswith("<constant "):
        return "the tensor " + source.removeprefix("<constant ").removesuffix(">")
    return source


def _inside(path: str, tops: set[str]) -> bool:
    return any(p in tops for p in lineage(path))


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


def _own_params(graph: Graph, path: str) -> int:
    return _module(graph, path).params.total - sum(
        _module(graph, c).params.total for c in graph.children(path)
    )


def _module(graph: Graph, path: str) -> Module:
    module = graph.module(path)
    assert module is not None, path
    return module


def _last(path: str) -> str:
    return path.rpartition(".")[2]
