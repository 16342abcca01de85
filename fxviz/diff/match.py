"""Which module of A is which module of B, decided top-down from the module trees alone.

- Children with names (`conv1`, `embeddings`) match by name. Those left over on both sides
  (`attn` in A, `self_attn` in B) are aligned in order by structure, then by class (a
  family of classes, `BertSelfAttention` and `RobertaSelfAttention`, counts as one): a
  module renamed, changed or not, is one module renamed, never one removed and one added.
- Children that are positions (`features.0`, `features.1`, … of a `Sequential` or `ModuleList`)
  are aligned as diff(1) aligns lines: a longest-common-subsequence over their structure, then
  over their classes inside what is left, then in order where a stretch was replaced one for
  one. Inserting a layer therefore adds one module and renumbers the later ones; it never turns
  them into other classes.
- What is still unmatched on both sides and built the same (classes, hyper-parameters and
  parameter counts, names ignored) is one module moved or renamed (`block` -> `stage`),
  also into or out of a new container (`block` -> `encoder.block`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from fxviz.graph import Graph, lineage, within
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
    moved: dict[str, str] = {}
    if a.module("") is not None and b.module("") is not None:
        pairs[""] = ""
        _match_below(a, b, "", "", keys, pairs, moved)

    paths_a = [m.path for m in a.modules if m.path]
    paths_b = [m.path for m in b.modules if m.path]
    # Built the same, elsewhere: a top-most unmatched module of one side and any unmatched
    # module of the other (a block moved into a new container is not top-most there).
    for top_of, other, sig_top, sig_other, flip in (
        (paths_a, paths_b, sig_a, sig_b, False),
        (paths_b, paths_a, sig_b, sig_a, True),
    ):
        taken_a = set(pairs)
        taken_b = set(pairs.values())
        mine, theirs = (taken_b, taken_a) if flip else (taken_a, taken_b)
        tops = _tops([p for p in top_of if p not in mine])
        by_signature: dict[str, list[str]] = defaultdict(list)
        for path in other:
            if path not in theirs:
                by_signature[sig_other[path]].append(path)
        for path in tops:
            candidates = [c for c in by_signature.get(sig_top[path], ()) if c not in theirs]
            if not candidates:
                continue
            x, y = (candidates[0], path) if flip else (path, candidates[0])
            moved[x] = y
            _zip_subtrees(a, b, x, y, pairs)
            theirs.update(p for p in other if within(p, candidates[0]))
            mine.update(p for p in top_of if within(p, path))
    matched_b = set(pairs.values())
    return Matching(
        pairs=pairs,
        moved=moved,
        removed=tuple(_tops([p for p in paths_a if p not in pairs])),
        added=tuple(_tops([p for p in paths_b if p not in matched_b])),
    )


def is_position(path: str) -> bool:
    """`features.3` is a position in its container; `layer1` and `conv1` are names."""
    return path.rpartition(".")[2].isdigit()


def _match_below(
    a: Graph,
    b: Graph,
    pa: str,
    pb: str,
    keys: list[tuple[_Key, _Key]],
    pairs: dict[str, str],
    renamed: dict[str, str],
) -> None:
    for x, y, by_name in _pair_children(a, b, a.children(pa), b.children(pb), keys):
        pairs[x] = y
        if not by_name:
            renamed[x] = y
        _match_below(a, b, x, y, keys, pairs, renamed)


def _pair_children(
    a: Graph, b: Graph, ca: Sequence[str], cb: Sequence[str], keys: list[tuple[_Key, _Key]]
) -> list[tuple[str, str, bool]]:
    """(A's child, B's child, whether they pair by name or position) for every pair."""
    if ca and cb and all(is_position(p) for p in (*ca, *cb)):
        return [(x, y, True) for x, y in _aligned(ca, cb, keys)]
    names_b = {p.rpartition(".")[2]: p for p in cb}
    found = [(p, names_b[name], True) for p in ca if (name := p.rpartition(".")[2]) in names_b]
    left_a = [p for p in ca if p.rpartition(".")[2] not in names_b]
    named_a = {x for x, _, _ in found}
    left_b = [p for p in cb if p not in {y for _, y, _ in found}]
    if left_a and left_b and named_a | set(left_a):
        found += [(x, y, False) for x, y in _aligned(left_a, left_b, keys) if _akin(a, b, x, y)]
    return found


def _akin(a: Graph, b: Graph, x: str, y: str) -> bool:
    """Two modules one could be the other renamed: the same class, or one family's
    (`BertSelfAttention`, `RobertaSelfAttention`)."""
    ma, mb = a.module(x), b.module(y)
    if ma is None or mb is None:
        return False
    return ma.class_name == mb.class_name or _same_family(ma.class_name, mb.class_name)


def _same_family(before: str, after: str) -> bool:
    """`BertSelfAttention` and `RobertaSelfAttention`: one CamelCase tail after a prefix."""
    tail_a, tail_b = _tail(before), _tail(after)
    return bool(tail_a) and tail_a == tail_b


def _tail(name: str) -> str:
    """`SelfAttention` for `BertSelfAttention`: from the second capital on."""
    capitals = [i for i, c in enumerate(name) if c.isupper()]
    return name[capitals[1] :] if len(capitals) > 1 else ""


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
