"""Drawing a gallery's entries (in parallel processes) and its index: README.md and index.html."""

from __future__ import annotations

import html
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from fxviz.drawing import file_bytes
from fxviz.errors import FxvizError
from fxviz.exporters import FORMATS
from fxviz.exporters.render import IMAGE_FORMATS
from fxviz.gallery.manifest import Entry
from fxviz.graph import Graph
from fxviz.humanize import format_count, format_params


@dataclass(frozen=True, slots=True)
class Drawn:
    """What one entry produced: file name -> bytes, and the row of the index."""

    entry: Entry
    files: dict[str, bytes] = field(default_factory=dict)
    params: int = 0
    flops: int = 0
    tracer: str = ""
    error: str = ""
    seconds: float = 0.0


def draw_entry(entry: Entry) -> Drawn:
    """Trace and render one entry in memory; a user-facing failure becomes `error`."""
    from fxviz import api

    start = time.perf_counter()
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
                layers=entry.layers,
            )
            loaded.source = entry.spec  # as written: the same on every machine
            graph = api.trace(loaded, tracer=entry.tracer, expand=entry.options.expand)
        files = {
            f"{entry.name}.{suffix}": file_bytes(graph, FORMATS[f".{suffix}"], entry.options)
            for suffix in entry.formats
        }
    except FxvizError as exc:
        return Drawn(entry, error=str(exc), seconds=time.perf_counter() - start)
    totals = graph.totals
    seconds = time.perf_counter() - start
    return Drawn(entry, files, totals.params.total, totals.flops, graph.tracer, "", seconds)


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
    for d in drawn:  # each entry's picture; its .html page, where drawn, to explore it
        picture = next((f for f in d.files if f.rsplit(".", 1)[1] in IMAGE_FORMATS), "")
        explorer = next((f for f in d.files if f.rsplit(".", 1)[1] in ("html", "htm")), "")
        link = f"[{d.entry.name}]({picture})" if picture else d.entry.name
        if explorer:
            link += f" · [explore]({explorer})"
        if d.error:
            rows.append(f"| {d.entry.name} | `{d.entry.spec}` | — | — | failed |")
            continue
        title = d.entry.title or d.entry.spec
        counts = f"{format_params(d.params)} | {format_count(d.flops)}"
        rows.append(f"| {link} | {_md(title)} | {counts} | {d.tracer} |")
        explore = f' · <a href="{html.escape(explorer)}">explore</a>' if explorer else ""
        if picture:
            cards.append(
                f'<figure><a href="{html.escape(explorer or picture)}">'
                f'<img src="{html.escape(picture)}" '
                f'alt="{html.escape(d.entry.name)}" loading="lazy"></a><figcaption>'
                f"<b>{html.escape(d.entry.name)}</b> · {html.escape(title)} · "
                f"{format_params(d.params)} params · {format_count(d.flops)} FLOPs{explore}"
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
        + "\n</body></html>\n"
    )
    return {"README.md": readme.encode(), "index.html": page.encode()}


def _md(text: str) -> str:
    return text.replace("|", "\\|")
