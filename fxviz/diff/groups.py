"""Changes a reviewer names once: the same edit in many places is one line with a count and
a path pattern (`layer{1..4}.*.conv2`), a family of renamed classes is one rename, the layers
an insertion renumbered are one line.

Grouping keys get coarser until the groups fit a screen: first by exact edit (`sizes ×2`),
then by what kind of edit (`hyper-parameters`), then by kind of change alone.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from fxviz.diff.changes import Change, Group
from fxviz.graph import Graph, parent_path

BUDGET = 12
PATTERN_WIDTH = 72

_Key = tuple[str, ...]


def group(changes: Sequence[Change], b: Graph) -> tuple[Group, ...]:
    """Every change that is not a consequence, in groups, in the order of their first member."""
    shown = [i for i, c in enumerate(changes) if not c.is_consequence]
    keyed: dict[_Key, list[int]] = {}
    for level in range(3):
        keyed = {}
        for i in shown:
            keyed.setdefault(_key(changes[i], level), []).append(i)
        if len(keyed) <= BUDGET:
            break
    follow = Counter(c.cause for c in changes if c.is_consequence)
    return tuple(_describe(key, members, changes, follow, b) for key, members in keyed.items())


def _key(change: Change, level: int) -> _Key:
    kind = change.kind
    if kind == "input":
        return (kind, change.path)
    if kind == "shape" or level == 2:
        return (kind,)
    if kind == "renamed":
        return (kind, change.class_name, *(change.facets if level < 2 else change.facets[:1]))
    if kind in ("added", "removed"):
        return (kind, change.class_name)
    if kind == "renumbered":
        return (kind, parent_path(change.path_b))
    if kind == "rewired" and change.facets[1:]:  # what it reads now, and what no longer
        return (kind, re.sub(r"\d+", "#", change.facets[1])) if level < 2 else (kind,)
    if kind == "rewired":
        return (kind, *(re.sub(r"\d+", "#", d) for d in change.details)) if level == 0 else (kind,)
    return (kind, *(_facet_key(f) if level == 0 else _coarse(f) for f in change.facets))


def _facet_key(facet: str) -> str:
    """`sizes ×2 (64 -> 128)` groups with `sizes ×2 (128 -> 256)`."""
    return facet.partition(" (")[0] if _is_ratio(facet) else facet


def _coarse(facet: str) -> str:
    return facet if facet.startswith("class ") else "hyper-parameters"


def _is_ratio(facet: str) -> bool:
    return facet.startswith(("sizes ×", "sizes ÷"))


def _describe(
    key: _Key,
    members: list[int],
    changes: Sequence[Change],
    follow: Counter[int | None],
    b: Graph,
) -> Group:
    picked = [changes[i] for i in members]
    first, n = picked[0], len(picked)
    kind = first.kind
    paths = [c.path for c in picked]
    what, where = "", ""
    if kind == "input":
        what = f"input {first.path}: {first.details[0]}"
    elif kind in ("added", "removed"):
        classes = Counter(c.class_name for c in picked)
        if n == 1:
            what = f"{first.path} ({first.class_name})"
            if first.details and first.details[0].startswith("a new branch"):
                what += f", {first.details[0]}"
        else:
            what = ", ".join(f"{k} {name}" for name, k in classes.items())
            what += _placement(picked)
            where = pattern(paths)
    elif kind == "renamed":
        also = "; ".join(_facet_text(f, picked) for f in first.facets[1:])
        also = f", {also}" if also else ""
        facet = first.facets[0] if first.facets else "moved"
        if n == 1:
            verb = "moved " if facet == "moved" else ""
            what = f"{verb}{first.path_a} -> {first.path_b} ({first.class_name}){also}"
        elif facet.startswith("renamed ") and all(c.facets == first.facets for c in picked):
            what = f"{n} {facet} ({first.class_name}){also}"
            where = pattern([c.path_b for c in picked])
        else:
            moved = all(c.facets[:1] == ("moved",) for c in picked)
            what = f"{n} {'moved' if moved else 'renamed'}"
            where = ", ".join(c.details[0] for c in picked[:3]) + (", …" if n > 3 else "")
    elif kind == "renumbered":
        last = picked[-1]
        container = parent_path(first.path_b) if len(key) > 1 else ""
        what = f"{n} renumbered" + (f" in {container}" if container else "")
        where = first.details[0] + (f" … {last.details[0]}" if n > 1 else "")
    elif kind == "rewired" and first.facets == ("swapped",):
        what = "; ".join(c.details[0] for c in picked[:3]) + ("; …" if n > 3 else "")
    elif kind == "rewired":
        what = f"{first.path} ({first.class_name}) rewired" if n == 1 else f"{n} rewired"
        where = first.details[0] if n == 1 else pattern(paths)
        reading = {c.facets[1] for c in picked if c.facets[1:]}
        if len(reading) == 1 and len(picked) == len([c for c in picked if c.facets[1:]]):
            what += f", {reading.pop()}"
            where = "" if n == 1 else pattern(paths)
    elif kind == "shape":
        what = f"{n} output shape{'s' if n > 1 else ''} changed with no module change before"
        where = f"{pattern(paths)}; first {first.path}: {first.details[0]}"
    else:
        what = "; ".join(_facet_text(f, picked) for f in key[1:]) or "changed"
        where = pattern(paths) + _counted(picked, b) if paths != [""] else "the model's config"
    return Group(
        kind=kind,
        what=what,
        where=where,
        members=tuple(members),
        params_delta=sum(c.params_delta for c in picked),
        consequences=sum(follow[i] for i in members),
    )


def _facet_text(key: str, picked: list[Change]) -> str:
    if key.startswith("class ") and key.endswith("*") and len(picked) == 1:
        return picked[0].details[0]  # one class, not a family: its own two names
    if key.startswith("class ") and key.endswith("*"):
        return "classes " + key.removeprefix("class ")
    if _is_ratio(key):
        examples: dict[str, None] = {}
        for change in picked:
            for facet in change.facets:
                if facet.startswith(key + " ("):
                    examples.update(dict.fromkeys(facet[len(key) + 2 : -1].split(", ")))
        shown = list(examples)[:2]
        return f"{key} ({', '.join(shown)}{', …' if len(examples) > 2 else ''})"
    return key


def _placement(picked: list[Change]) -> str:
    """`, each after a Conv2d` when every one of them follows the same class."""
    befores = {c.details[0].rpartition(" (")[2].rstrip(")") for c in picked if c.details}
    placed = all(c.details and c.details[0].startswith("after ") for c in picked)
    if len(befores) == 1 and placed and befores != {picked[0].class_name}:
        return f", each after a {befores.pop()}"
    return ""


def _counted(picked: list[Change], b: Graph) -> str:
    """` (165 modules in 33 Bottleneck)`: how many, and the blocks they sit in."""
    n = len(picked)
    if n == 1:
        return ""
    parents = {parent_path(c.path_b) for c in picked}
    classes = {m.class_name for p in parents if (m := b.module(p)) is not None}
    if len(parents) < n and len(classes) == 1 and len(parents) > 1:
        return f" ({n} modules in {len(parents)} {classes.pop()})"
    return f" ({n} modules)"


def pattern(paths: Sequence[str], width: int = PATTERN_WIDTH) -> str:
    """A short name for a set of module paths: `layer1.2, layer2.{2,3}, layer3.{2..5}` exactly
    where that fits, else with wildcards (`layer{1..4}.*.conv2`), else their top modules."""
    unique = list(dict.fromkeys(paths))
    exact = ", ".join(_exact([p.split(".") for p in unique]))
    if len(exact) <= width:
        return exact
    by_length: dict[int, list[list[str]]] = {}
    for p in unique:
        by_length.setdefault(p.count("."), []).append(p.split("."))
    general = ", ".join(dict.fromkeys(_wildcard(group) for group in by_length.values()))
    if len(general) <= width:
        return general
    tops = ", ".join(dict.fromkeys(p.split(".")[0] + (".*" if "." in p else "") for p in unique))
    return tops if len(tops) <= width else tops[: width - 1].rpartition(", ")[0] + ", …"


def _exact(paths: list[list[str]]) -> list[str]:
    """Brace patterns, each without a top-level comma, that together name exactly `paths`."""
    entries: list[tuple[str, str]] = []  # (head, what follows it), in order
    heads: dict[str, list[list[str]]] = {}
    for p in paths:
        heads.setdefault(p[0], []).append(p[1:])
    for head, rests in heads.items():
        if any(not r for r in rests):
            entries.append((head, ""))
        alternatives = _exact([r for r in rests if r]) if any(rests) else []
        if len(alternatives) > 1 and not any("{" in alt for alt in alternatives):
            alternatives = ["{" + ",".join(alternatives) + "}"]
        entries += [(head, "." + alt) for alt in alternatives]
    rendered: list[str] = []
    run: list[str] = []
    for i, (head, rest) in enumerate(entries):
        run.append(head)
        if i + 1 == len(entries) or entries[i + 1][1] != rest:
            rendered.append(_alternatives(run) + rest)
            run = []
    return rendered


def _alternatives(names: list[str]) -> str:
    """`2` / `{2..5}` / `{1,4,8}` / `layer{1..4}` / `{conv1,bn1}`."""
    if len(names) == 1:
        return names[0]
    split = [re.fullmatch(r"(.*?)(\d+)", n) for n in names]
    if all(split) and len({s[1] for s in split if s}) == 1:
        prefix = split[0][1] if split[0] else ""
        numbers = [int(s[2]) for s in split if s]
        if len(numbers) >= 3 and numbers == list(range(numbers[0], numbers[0] + len(numbers))):
            return f"{prefix}{{{numbers[0]}..{numbers[-1]}}}"
        return prefix + "{" + ",".join(map(str, numbers)) + "}"
    return "{" + ",".join(names) + "}"


def _wildcard(paths: list[list[str]]) -> str:
    parts = []
    for position in zip(*paths, strict=True):
        values = list(dict.fromkeys(position))
        if len(values) == 1:
            parts.append(values[0])
        elif all(v.isdigit() for v in values) or len(values) > 6:
            parts.append("*")
        else:
            parts.append(_alternatives(values))
    return ".".join(parts)
