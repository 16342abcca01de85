"""Galleries: draw every model in a manifest, write an index, or check that nothing is stale.

A manifest (`models.toml`) holds one `[[model]]` table per diagram; `[defaults]` applies to
all. Each entry renders to `<name>.<format>` for each format, and the folder gets a README.md
(a table GitHub renders) and an index.html. Everything written is deterministic: with the
embedded renderer the bytes are the same on any machine, so CI can regenerate and compare.
"""

from __future__ import annotations

import html
import multiprocessing
import tomllib
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from fxviz.drawing import OPTION_NAMES, DrawOptions, draw_options, file_bytes
from fxviz.errors import FxvizError, SpecError, did_you_mean
from fxviz.exporters import FORMATS
from fxviz.exporters.render import IMAGE_FORMATS
from fxviz.graph import Graph
from fxviz.humanize import format_count
from fxviz.loaders import DEVICES
from fxviz.specs import check_tracer

ENTRY_KEYS = {
    "name": str,
    "spec": str,
    "title": str,
    "inputs": list,
    "kwargs": dict,
    "config": list,
    "device": str,
    "tracer": str,
    "rankdir": str,
    "renderer": str,
    "formats": list,
    "depth": int,
    "fold": bool,
    "show": str,
    "all_ops": bool,
    "expand": list,
    "views": bool,
}
DEFAULT_KEYS = set(ENTRY_KEYS) - {"name", "spec", "title"}


@dataclass(frozen=True, slots=True)
class Entry:
    """One diagram of a gallery; `folder` is the manifest's, for specs naming files."""

    name: str
    spec: str
    folder: str = "."
    title: str = ""
    inputs: tuple[str, ...] = ()
    kwargs: tuple[tuple[str, object], ...] = ()
    config: tuple[str, ...] = ()
    device: str | None = None
    tracer: str = "auto"
    formats: tuple[str, ...] = ("svg", "json")
    # The embedded renderer by default: the same bytes on every machine.
    options: DrawOptions = DrawOptions(renderer="embedded")


@dataclass(frozen=True, slots=True)
class Drawn:
    """What one entry produced: file name -> bytes, and the row of the index."""

    entry: Entry
    files: dict[str, bytes] = field(default_factory=dict)
    params: int = 0
    flops: int = 0
    tracer: str = ""
    error: str = ""


def read_manifest(path: Path) -> list[Entry]:
    """Parse a manifest; every mistake names the entry and the key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(f"cannot read manifest {str(path)!r}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML ({exc})") from exc
    unknown = set(data) - {"defaults", "model"}
    if unknown:
        raise SpecError(
            f"{path}: unknown table {sorted(unknown)[0]!r}; use [defaults] and [[model]]"
        )
    defaults = data.get("defaults", {})
    _check_keys(path, "[defaults]", defaults, DEFAULT_KEYS)
    models = data.get("model", [])
    if not isinstance(models, list) or not models:
        raise SpecError(f"{path}: no [[model]] entries; add one with name = ... and spec = ...")
    entries: list[Entry] = []
    for index, raw in enumerate(models, start=1):
        where = f"[[model]] #{index}" + (
            f" ({raw['name']})" if isinstance(raw.get("name"), str) else ""
        )
        _check_keys(path, where, raw, set(ENTRY_KEYS))
        for required in ("name", "spec"):
            if required not in raw:
                raise SpecError(f"{path}: {where}: missing key {required!r}")
        merged = {**defaults, **raw}
        name = merged["name"]
        if not name or any(c in name for c in "/\\") or name.startswith("."):
            raise SpecError(f"{path}: {where}: name {name!r} must be a plain file name")
        if name in {e.name for e in entries}:
            raise SpecError(f"{path}: {where}: name {name!r} is used twice")
        formats = tuple(str(f).lower() for f in merged.get("formats", ("svg", "json")))
        bad = [f for f in formats if f not in FORMATS.values()]
        if bad:
            raise SpecError(f"{path}: {where}: key 'formats': unknown format {bad[0]!r}")
        try:
            tracer = check_tracer(merged.get("tracer", "auto"), "key 'tracer'")
            device = merged.get("device")
            if device is not None and device.split(":")[0] not in DEVICES:  # cuda:1 too
                raise SpecError(f"key 'device' {device!r}: choose one of {', '.join(DEVICES)}")
            drawing = {"renderer": "embedded"} | {k: merged[k] for k in OPTION_NAMES if k in merged}
            options = draw_options(_key_spelling, **drawing)
        except SpecError as exc:
            raise SpecError(f"{path}: {where}: {exc}") from None
        entries.append(
            Entry(
                name=name,
                spec=merged["spec"],
                folder=str(path.parent),
                title=merged.get("title", ""),
                inputs=tuple(map(str, merged.get("inputs", ()))),
                kwargs=tuple(sorted(merged.get("kwargs", {}).items())),
                config=tuple(map(str, merged.get("config", ()))),
                device=device,
                tracer=tracer,
                formats=formats,
                options=options,
            )
        )
    return entries


def _key_spelling(name: str) -> str:
    return f"key {name!r}"


def _check_keys(path: Path, where: str, table: object, allowed: set[str]) -> None:
    if not isinstance(table, dict):
        raise SpecError(f"{path}: {where} must be a table")
    for key, value in table.items():
        if key not in allowed:
            hint = did_you_mean(key, allowed, shown=repr)
            raise SpecError(
                f"{path}: {where}: unknown key {key!r}; {hint + ' ' if hint else ''}"
                f"known: {', '.join(sorted(allowed))}"
            )
        expected = ENTRY_KEYS[key]
        if not isinstance(value, expected):
            got = type(value).__name__
            raise SpecError(
                f"{path}: {where}: key {key!r} must be a {expected.__name__}, not {got}"
            )


def draw_entry(entry: Entry) -> Drawn:
    """Trace and render one entry in memory; a user-facing failure becomes `error`."""
    from fxviz import api

    try:
        if api.is_saved_graph(entry.spec):
            graph = Graph.load(Path(entry.folder) / entry.spec)
        else:
            loaded = api.load(
                _resolve(entry.spec, Path(entry.folder)),
                inputs=entry.inputs,
                model_kwargs=dict(entry.kwargs),
                device=entry.device,
                config=entry.config,
            )
            loaded.source = entry.spec  # as written: the same on every machine
            graph = api.trace(loaded, tracer=entry.tracer, expand=entry.options.expand)
        files = {
            f"{entry.name}.{fmt}": file_bytes(graph, fmt, entry.options) for fmt in entry.formats
        }
    except FxvizError as exc:
        return Drawn(entry, error=str(exc))
    return Drawn(entry, files, graph.totals.params.total, graph.totals.flops, graph.tracer)


def _resolve(spec: str, folder: Path) -> str:
    """File specs are relative to the manifest, so a gallery works from any directory."""
    from fxviz.specs import parse_model_spec

    parsed = parse_model_spec(spec)
    if parsed.kind in ("userfile", "exported") and not Path(parsed.target).is_absolute():
        return str(folder / spec)
    return spec


def draw_all(
    entries: Sequence[Entry], jobs: int = 1, on_done: Callable[[Drawn], None] | None = None
) -> list[Drawn]:
    """Draw every entry (in `jobs` processes); results keep the manifest's order."""
    results: dict[str, Drawn] = {}
    if jobs <= 1:
        for entry in entries:
            results[entry.name] = drawn = draw_entry(entry)
            if on_done:
                on_done(drawn)
    else:
        # spawn, not fork: forking a process whose torch thread pools are running deadlocks.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures = {pool.submit(draw_entry, entry): entry for entry in entries}
            for future in as_completed(futures):
                drawn = future.result()
                results[drawn.entry.name] = drawn
                if on_done:
                    on_done(drawn)
    return [results[e.name] for e in entries]


def index_files(drawn: Sequence[Drawn]) -> dict[str, bytes]:
    """README.md (a table GitHub renders) and index.html, from the drawn entries."""
    rows = ["| name | model | params | FLOPs | tracer |", "|---|---|---|---|---|"]
    cards = []
    for d in drawn:
        picture = next((f for f in d.files if f.rsplit(".", 1)[1] in IMAGE_FORMATS), "")
        link = f"[{d.entry.name}]({picture})" if picture else d.entry.name
        if d.error:
            rows.append(f"| {d.entry.name} | `{d.entry.spec}` | — | — | failed |")
            continue
        title = d.entry.title or d.entry.spec
        counts = f"{format_count(d.params)} | {format_count(d.flops)}"
        rows.append(f"| {link} | {_md(title)} | {counts} | {d.tracer} |")
        if picture:
            cards.append(
                f'<figure><a href="{html.escape(picture)}"><img src="{html.escape(picture)}" '
                f'alt="{html.escape(d.entry.name)}" loading="lazy"></a><figcaption>'
                f"<b>{html.escape(d.entry.name)}</b> · {html.escape(title)} · "
                f"{format_count(d.params)} params · {format_count(d.flops)} FLOPs"
                "</figcaption></figure>"
            )
    readme = "# Gallery\n\nDrawn by `fxviz gallery`; regenerate with the same command.\n\n"
    readme += "\n".join(rows) + "\n"
    page = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>fxviz gallery</title>'
        "<style>body{font-family:sans-serif;margin:2em}figure{display:inline-block;margin:1em;"
        "vertical-align:top;text-align:center}img{max-height:480px;max-width:360px;"
        "border:1px solid #ddd}</style></head><body>\n<h1>fxviz gallery</h1>\n"
        + "\n".join(cards)
        + "\n</body></html>\n"
    )
    return {"README.md": readme.encode(), "index.html": page.encode()}


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def all_files(drawn: Sequence[Drawn]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for d in drawn:
        files.update(d.files)
    return files | index_files(drawn)


def stale_files(out: Path, files: dict[str, bytes]) -> list[str]:
    """Names whose bytes on disk differ from `files` (or are missing)."""
    stale = []
    for name, data in files.items():
        path = out / name
        if not path.is_file() or path.read_bytes() != data:
            stale.append(name + ("" if path.is_file() else " (missing)"))
    return stale
