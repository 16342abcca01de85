"""Drawing one gallery entry, in memory, and the gallery's index: README.md and index.html."""

from __future__ import annotations

import html
import os
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from fxviz.drawing import file_bytes
from fxviz.errors import FxvizError
from fxviz.exporters import FORMATS
from fxviz.exporters.dot import compile_summary
from fxviz.exporters.render import IMAGE_FORMATS
from fxviz.gallery.manifest import Entry
from fxviz.graph import Graph
from fxviz.humanize import format_count, format_params

# What became of an entry. Every outcome but "drawn" has an `error` saying why, in one line:
# failed (an error fxviz reported, or one it did not expect), crash (its process died), hang (no
# answer before its timeout), memory (an allocation past max_memory, or the OOM killer),
# interrupted (the run was stopped before it was drawn).
OUTCOMES = ("drawn", "failed", "crash", "hang", "memory", "interrupted")


@dataclass(frozen=True, slots=True)
class Drawn:
    """What one entry produced: file name -> bytes, and the row of the index; `detail` is the
    traceback of an error fxviz did not expect, for --debug."""

    entry: Entry
    files: dict[str, bytes] = field(default_factory=dict)
    params: int = 0
    flops: int = 0
    tracer: str = ""
    error: str = ""
    seconds: float = 0.0
    outcome: str = "drawn"
    detail: str = ""
    # For an entry drawn with `compile = true`: `torch.compile: 2 graphs, 1 graph break`.
    compiled: str = ""

    @property
    def status(self) -> str:
        """The outcome as the index and the report write it."""
        return "not drawn" if self.outcome == "interrupted" else self.outcome


def draw_entry(entry: Entry) -> Drawn:
    """Trace and render one entry in memory; a user-facing failure becomes `error`."""
    from fxviz import api

    start = time.perf_counter()
    try:
        if api.is_saved_graph(entry.spec):
            graph = Graph.load(Path(entry.folder) / entry.spec)
        elif entry.compile:
            graph = api.compiled(
                _resolve(entry.spec, Path(entry.folder)),
                entry.inputs,
                model_kwargs=dict(entry.kwargs),
                device=entry.device,
                config=entry.config,
                layers=entry.layers,
                tracer=entry.tracer,
                expand=entry.options.expand,
            )
            graph = replace(graph, source=entry.spec)  # as written: the same on every machine
        else:
            loaded = api.load(
                _resolve(entry.spec, Path(entry.folder)),
                inputs=entry.inputs,
                model_kwargs=dict(entry.kwargs),
                device=entry.device,
                config=entry.config,
                layers=entry.layers,
            )
            loaded.source = entry.spec  # as written: the same on every machine
            graph = api.trace(loaded, tracer=entry.tracer, expand=entry.options.expand)
        files = {
            f"{entry.name}.{suffix}": file_bytes(graph, FORMATS[f".{suffix}"], entry.options)
            for suffix in entry.formats
        }
    except FxvizError as exc:
        seconds = time.perf_counter() - start
        if out_of_memory(exc):
            return Drawn(entry, error=memory_cause(exc), seconds=seconds, outcome="memory")
        return Drawn(entry, error=str(exc), seconds=seconds, outcome="failed")
    totals = graph.totals
    seconds = time.perf_counter() - start
    said = compile_summary(graph.compilation) if graph.compilation is not None else ""
    return Drawn(
        entry, files, totals.params.total, totals.flops, graph.tracer, "", seconds, compiled=said
    )


def _resolve(spec: str, folder: Path) -> str:
    """File specs are relative to the manifest, so a gallery works from any directory."""
    from fxviz.specs import parse_model_spec

    parsed = parse_model_spec(spec)
    if parsed.kind in ("userfile", "exported") and not Path(parsed.target).is_absolute():
        if parsed.revision is not None:  # HEAD~1:net.py:Net: the path after the revision
            rest = spec.strip()[len(parsed.revision) + 1 :]
            return f"{parsed.revision}:{folder / rest}"
        return str(folder / spec)
    return spec


def memory_cause(exc: BaseException) -> str:
    """The failed allocation in an exception's chain, and the line of the model that made it:
    "MemoryError at net.py:64 `self.cache = bytearray(1 << 34)`"."""
    found: BaseException | None = exc
    for _ in range(20):  # a chain, however long, ends; a cycle must too
        if found is None or out_of_memory(found, chained=False):
            break
        found = found.__cause__ or found.__context__
    if found is None or not out_of_memory(found, chained=False):
        return str(exc).splitlines()[0][:200]
    said = type(found).__name__
    text = str(found).strip().splitlines()
    if text and not isinstance(found, MemoryError):
        said += f" ({text[0][:120]})"
    frames = traceback.extract_tb(found.__traceback__)
    inside = (f"{os.sep}torch{os.sep}", f"{os.sep}fxviz{os.sep}", f"{os.sep}transformers{os.sep}")
    theirs = [f for f in frames if not any(part in f.filename for part in inside)]
    if theirs:
        frame = theirs[-1]
        said += f" at {Path(frame.filename).name}:{frame.lineno}"
        said += f" `{frame.line.strip()}`" if frame.line else ""
    return said


def out_of_memory(exc: BaseException | None, chained: bool = True) -> bool:
    """Whether an exception, or one it was raised from, is an allocation that failed."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, MemoryError):
            return True
        text = str(exc)
        if "can't allocate memory" in text or "not enough memory" in text:
            return True
        if type(exc).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError, on any device
            return True
        if not chained:
            return False
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def index_files(drawn: Sequence[Drawn]) -> dict[str, bytes]:
    """README.md (a table GitHub renders) and index.html, from the drawn entries."""
    rows = ["| name | model | params | FLOPs | tracer |", "|---|---|---|---|---|"]
    cards, missing = [], []
    for d in drawn:  # each entry's picture; its .html page, where drawn, to explore it
        picture = next((f for f in d.files if f.rsplit(".", 1)[1] in IMAGE_FORMATS), "")
        explorer = next((f for f in d.files if f.rsplit(".", 1)[1] in ("html", "htm")), "")
        link = f"[{d.entry.name}]({picture})" if picture else d.entry.name
        if explorer:
            link += f" · [explore]({explorer})"
        if d.error:
            rows.append(f"| {d.entry.name} | `{d.entry.spec}` | — | — | {d.status} |")
            missing.append(
                f"<li><b>{html.escape(d.entry.name)}</b> ({html.escape(d.entry.spec)}): "
                f"{html.escape(d.status)}: {html.escape(d.error)}</li>"
            )
            continue
        title = d.entry.title or d.entry.spec
        counts = f"{format_params(d.params)} | {format_count(d.flops)}"
        tracer = f"{d.tracer} · {d.compiled}" if d.compiled else d.tracer
        rows.append(f"| {link} | {_md(title)} | {counts} | {tracer} |")
        explore = f' · <a href="{html.escape(explorer)}">explore</a>' if explorer else ""
        if picture:
            cards.append(
                f'<figure><a href="{html.escape(explorer or picture)}">'
                f'<img src="{html.escape(picture)}" '
                f'alt="{html.escape(d.entry.name)}" loading="lazy"></a><figcaption>'
                f"<b>{html.escape(d.entry.name)}</b> · {html.escape(title)} · "
                f"{format_params(d.params)} params · {format_count(d.flops)} FLOPs"
                f"{' · ' + html.escape(d.compiled) if d.compiled else ''}{explore}"
                "</figcaption></figure>"
            )
        elif explorer:
            cards.append(
                f'<figure><figcaption><a href="{html.escape(explorer)}">'
                f"<b>{html.escape(d.entry.name)}</b></a> · {html.escape(title)} · "
                f"{format_params(d.params)} params · {format_count(d.flops)} FLOPs{explore}"
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
        + (f"\n<h2>Not drawn</h2>\n<ul>\n{chr(10).join(missing)}\n</ul>" if missing else "")
        + "\n</body></html>\n"
    )
    return {"README.md": readme.encode(), "index.html": page.encode()}


def _md(text: str) -> str:
    return text.replace("|", "\\|")
