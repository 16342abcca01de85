"""Galleries over a CI matrix: `--shard i/n` draws a stable part of the entries and records
what it drew; `--merge DIR...` puts the parts back together as one run would have drawn them.

An entry's shard is chosen by rendezvous hashing of its name: with n fixed, adding or removing
an entry never moves another one, so a shard's cache and its history stay meaningful. The
balance is by count, in expectation; each shard's record (records.py) keeps how long every
entry took.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

from fxviz.errors import SpecError
from fxviz.gallery.draw import Drawn
from fxviz.gallery.manifest import Entry
from fxviz.gallery.records import SHARD_SUFFIX, from_row, read_record


def parse_shard(text: str) -> tuple[int, int]:
    """`2/3` -> (2, 3): the second of three shards."""
    found = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not found or not 1 <= int(found[1]) <= int(found[2]):
        raise SpecError(
            f"--shard {text!r}: write it as I/N with 1 <= I <= N, e.g. --shard 2/3 for the second "
            "of three"
        )
    return int(found[1]), int(found[2])


def shard_of(name: str, count: int) -> int:
    """The shard (1-based) an entry named `name` belongs to, of `count`."""
    return max(range(1, count + 1), key=lambda i: hashlib.sha256(f"{i}/{name}".encode()).digest())


def in_shard(entries: Sequence[Entry], index: int, count: int) -> list[Entry]:
    return [e for e in entries if shard_of(e.name, count) == index]


def merge_shards(entries: Sequence[Entry], folders: Sequence[Path]) -> list[Drawn]:
    """Every entry of the manifest as its shard drew it, read back from the shards' folders."""
    by_name = {e.name: e for e in entries}
    found: dict[str, Drawn] = {}
    counts: set[int] = set()
    for folder in folders:
        records = sorted(folder.glob(f"*{SHARD_SUFFIX}"))
        if not records:
            raise SpecError(
                f"--merge {str(folder)!r}: no shard record (*{SHARD_SUFFIX}) in it; give the "
                "folders that `fxviz gallery --shard I/N --out FOLDER` wrote"
            )
        for path in records:
            data = read_record(path)
            counts.add(data["shard"][1])
            for row in data["entries"]:
                entry = by_name.get(row["name"])
                if entry is None:
                    raise SpecError(
                        f"{path}: entry {row['name']!r} is not in the manifest; the shards were "
                        "drawn from another version of it, draw them again"
                    )
                if row["name"] in found:
                    raise SpecError(f"{path}: entry {row['name']!r} was drawn by two shards")
                files = {name: (folder / name).read_bytes() for name in row["files"]}
                found[row["name"]] = from_row(entry, row, files)
    if len(counts) > 1:
        raise SpecError(f"--merge: the shards split the manifest differently ({sorted(counts)})")
    missing = [name for name in by_name if name not in found]
    if missing:
        n = counts.pop() if counts else 0
        shards = sorted({shard_of(name, n) for name in missing}) if n else []
        raise SpecError(
            f"--merge: no shard drew {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}"
            + (f"; shard {', '.join(f'{i}/{n}' for i in shards)} is missing" if shards else "")
        )
    return [found[e.name] for e in entries]
