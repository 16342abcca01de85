"""Reading a gallery manifest (`models.toml`): one `[[model]]` table per diagram, `[defaults]`
for all. Every mistake, and every format the chosen renderer cannot draw, is reported before
anything is traced, naming the entry and the key."""

from __future__ import annotations

import shutil
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from fxviz.drawing import OPTION_NAMES, DrawOptions, draw_options
from fxviz.errors import RenderError, SpecError, did_you_mean
from fxviz.exporters import FORMATS
from fxviz.exporters.render import IMAGE_FORMATS, choose_renderer
from fxviz.humanize import parse_bytes
from fxviz.loaders import DEVICES
from fxviz.specs import check_tracer

ENTRY_KEYS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "spec": str,
    "title": str,
    "inputs": list,
    "kwargs": dict,
    "config": list,
    "layers": int,
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
    "timeout": (float, int),
    "max_memory": (str, int),
    "compile": bool,
}
# How each key's type is said in an error: "must be a number".
_TYPE_WORDS: dict[type | tuple[type, ...], str] = {
    (float, int): "a number",
    (str, int): 'a size ("8GiB") or a number of bytes',
    str: "a string",
    int: "an integer",
    list: "a list",
    dict: "a table",
    bool: "true or false",
}
DEFAULT_KEYS = set(ENTRY_KEYS) - {"name", "spec", "title"}
# Below this, no process that imports torch can draw anything.
MIN_MEMORY = 1 << 30


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
    layers: int | None = None
    device: str | None = None
    tracer: str = "auto"
    formats: tuple[str, ...] = ("svg", "json")
    # The embedded renderer by default: the same bytes on every machine.
    options: DrawOptions = DrawOptions(renderer="embedded")
    # Seconds to draw it and bytes its process may hold; None: the run's (--timeout, --max-memory).
    timeout: float | None = None
    max_memory: int | None = None
    # Drawn with torch.compile's graphs and graph breaks (`fxviz compile`).
    compile: bool = False


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
        bad = [f for f in formats if f".{f}" not in FORMATS]  # a file suffix: svg, mmd, …
        if bad:
            known = ", ".join(sorted(suffix[1:] for suffix in FORMATS))
            raise SpecError(
                f"{path}: {where}: key 'formats': unknown format {bad[0]!r}; use {known}"
            )
        try:
            tracer = check_tracer(merged.get("tracer", "auto"), "key 'tracer'")
            device = merged.get("device")
            if device is not None and device.split(":")[0] not in DEVICES:  # cuda:1 too
                raise SpecError(f"key 'device' {device!r}: choose one of {', '.join(DEVICES)}")
            drawing = {"renderer": "embedded"} | {k: merged[k] for k in OPTION_NAMES if k in merged}
            options = draw_options(_key_spelling, **drawing)
            _check_renderer(formats, options, "renderer" in merged)
            timeout = check_timeout(merged.get("timeout"), "key 'timeout'")
            max_memory = check_memory(merged.get("max_memory"), "key 'max_memory'")
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
                layers=merged.get("layers"),
                device=device,
                tracer=tracer,
                formats=formats,
                options=options,
                timeout=timeout,
                max_memory=max_memory,
                compile=merged.get("compile", False),
            )
        )
    return entries


def _check_renderer(formats: tuple[str, ...], options: DrawOptions, chosen: bool) -> None:
    """Refuse, before anything is traced, a picture format the entry's renderer cannot draw."""
    for fmt in formats:
        if fmt not in IMAGE_FORMATS:
            continue
        try:
            choose_renderer(options.renderer, fmt)
        except RenderError:
            whose = "its renderer" if chosen else "the manifest's default renderer"
            if options.renderer == "embedded":
                fix = 'set renderer = "system"' + (
                    " (Graphviz's dot is on PATH)"
                    if shutil.which("dot")
                    else " and install Graphviz"
                )
                raise SpecError(
                    f"key 'formats' asks for {fmt}, which {whose} ('embedded') cannot draw: "
                    f'{fix}, or keep formats to "svg" and "json"'
                ) from None
            raise SpecError(
                f"key 'formats' asks for {fmt}, which needs Graphviz's dot, and it is not on PATH:"
                ' install Graphviz (apt install graphviz), or set renderer = "embedded" and keep'
                ' formats to "svg" and "json"'
            ) from None


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
        kinds = expected if isinstance(expected, tuple) else (expected,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            got = type(value).__name__
            raise SpecError(
                f"{path}: {where}: key {key!r} must be {_TYPE_WORDS[expected]}, not {got}"
            )


def check_timeout(value: float | str | None, where: str) -> float | None:
    """Seconds an entry may take: a positive number; None for the run's own."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0 or seconds == float("inf"):
        raise SpecError(f"{where} {value!r}: give the seconds an entry may take, e.g. 600")
    return seconds


def check_memory(value: int | str | None, where: str) -> int | None:
    """Bytes an entry's process may hold: 8GiB, 512MiB, 2g or a number of bytes."""
    if value is None:
        return None
    size = value if isinstance(value, int) else parse_bytes(value)
    if size is None or size < MIN_MEMORY:
        low = " (the process drawing an entry holds ~0.9 GiB of torch before it starts)"
        raise SpecError(
            f"{where} {value!r}: give a size of 1GiB or more, such as 8GiB{low if size else ''}"
        )
    reason = check_memory_limits()
    if reason:
        raise SpecError(f"{where}: {reason}; leave it out here")
    return size


def check_memory_limits() -> str:
    """Why a memory bound cannot be kept on this system, or '' when it can: Linux holds every
    private writable mapping to RLIMIT_DATA; macOS accepts the limit but its malloc ignores it."""
    if not sys.platform.startswith("linux"):
        return "a memory bound is kept on Linux only (its data-segment limit, RLIMIT_DATA)"
    return ""
