"""Which module of A is which module of B, decided top-down from the module trees alone.

- Children with names (`conv1`, `embeddings`) match by name.
- Children that are positions (`features.0`, `features.1`, … of a `Sequential` or `ModuleList`)
  are aligned as diff(1) aligns lines: a longest-common-subsequence over their structure, then
  over their classes inside what is left, then in order where a stretch was replaced one for
  one. Inserting a layer therefore adds one module and renumbers the later ones; it never turns
  them into other classes.
- What is still unmatched on both sides and built the same (classes, hyper-parameters and
  parameter counts, names ignored) is one module moved or renamed (`block` -> `stage`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from fxviz.graph import Graph, lineage
from fxviz.views import signatures

_Key = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class Matching:
    """`pairs` maps every module A and B both have (the root "" included) from A's path to
    B's; `moved` holds the top of each subtree matched by structure alone; `removed` and
    `added` the top-most modules with no counterpart."""

    pairs: dict[str, str]
    moved: dict[str, str]
    removed: tuple[str, ...]
    added: tuple[str, ...]


def match(a: Graph, b: Graph) -> Matching:
    sig_a, sig_b = signatures(a), signatures(b)
    keys = [(sig_a.__getitem__, sig_b.__getitem__), (_class_of(a), _class_of(b))]
    pairs: dict[str, str] = {}
    if a.module("") is not None and b.module("") is not None:
        pairs[""] = ""
        _match_below(a, b, "", "", keys, pairs)

    paths_a = [m.path for m in a.modules if m.path]
    paths_b = [m.path for m in b.modules if m.path]
    matched_b = set(pairs.values())
    only_a = _tops([p for p in paths_a if p not in pairs])
    only_b = _tops([p for p in paths_b if p not in matched_b])
    by_signature: dict[str, list[str]] = defaultdict(list)
    for path in only_b:
        by_signature[sig_b[path]].append(path)
    moved: dict[str, str] = {}
    for path in only_a:
        candidates = by_signature.get(sig_a[path])
        if candidates:
            moved[path] = candidates.pop(0)
            _zip_subtrees(a, b, path, moved[path], pairs)
    targets = set(moved.values())
    return Matching(
        pairs=pairs,
        moved=moved,
        removed=tuple(p for p in only_a if p not in moved),
        added=tuple(p for p in only_b if p not in targets),
    )


def is_position(path: str) -> bool:
    """`features.3` is a position in its container; `layer1` and `conv1` are names."""
    return path.rpartition(".")[2].isdigit()


def _match_below(
    a: Graph, b: Graph, pa: str, pb: str, keys: list[tuple[_Key, _Key]], pairs: dict[str, str]
) -> None:
    for x, y in _pair_children(a.children(pa), b.children(pb), keys):
        pairs[x] = y
        _match_below(a, b, x, y, keys, pairs)


def _pair_children(
    ca: Sequence[str], cb: Sequence[str], keys: list[tuple[_Key, _Key]]
) -> list[tuple[str, str]]:
    if ca and cb and all(is_position(p) for p in (*ca, *cb)):
        return _aligned(ca, cb, keys)
    names_b = {p.rpartition(".")[2]: p for p in cb}
    return [(p, names_b[name]) for p in ca if (name := p.rpartition(".")[2]) in names_b]


def _aligned(
    ca: Sequence[str], cb: Sequence[str], keys: list[tuple[_Key, _Key]]
) -> list[tuple[str, str]]:
    """Sequence alignment by the first key; stretches it leaves unmatched are aligned by the
    next key, and a stretch replaced one for one is paired in order."""
    if not ca or not cb:
        return []
    if not keys:
        return list(zip(ca, cb, strict=True)) if len(ca) == len(cb) else []
    key_a, key_b = keys[0]
    matcher = SequenceMatcher(None, [key_a(p) for p in ca], [key_b(p) for p in cb], False)
    pairs: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            pairs += zip(ca[i1:i2], cb[j1:j2], strict=True)
        elif tag == "replace":
            pairs += _aligned(ca[i1:i2], cb[j1:j2], keys[1:])
    return pairs


def _zip_subtrees(a: Graph, b: Graph, pa: str, pb: str, pairs: dict[str, str]) -> None:
    """Pair two subtrees built the same, child by child."""
    pairs[pa] = pb
    for x, y in zip(a.children(pa), b.children(pb), strict=True):
        _zip_subtrees(a, b, x, y, pairs)


def _class_of(graph: Graph) -> _Key:
    def class_name(path: str) -> str:
        module = graph.module(path)
        return module.class_name if module is not None else ""

    return class_name


def _tops(paths: list[str]) -> list[str]:
    """Only the top-most of a set of paths: `layer1.2`, not also `layer1.2.conv1`."""
    chosen = set(paths)
    return [p for p in paths if not any(q in chosen for q in lineage(p)[1:])]
