"""`fxviz gallery --check`: which files are stale, and what changed in each architecture."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fxviz.diff import diff, format_report
from fxviz.errors import FxvizError
from fxviz.exporters.render import IMAGE_FORMATS
from fxviz.gallery.draw import Drawn
from fxviz.graph import Graph


def stale_files(out: Path, files: dict[str, bytes]) -> list[str]:
    """Names whose bytes on disk differ from `files` (or are missing)."""
    stale = []
    for name, data in files.items():
        path = out / name
        if not path.is_file() or path.read_bytes() != data:
            stale.append(name + ("" if path.is_file() else " (missing)"))
    return stale


@dataclass(frozen=True, slots=True)
class Drift:
    """One entry whose files no longer match: which files, and what changed, in words."""

    name: str
    spec: str
    files: tuple[str, ...]
    explanation: tuple[str, ...]


def drifts(out: Path, drawn: Sequence[Drawn], index: dict[str, bytes]) -> list[Drift]:
    """Every drawn entry (and the index) whose files differ from those in `out`."""
    found = []
    for d in drawn:
        stale = stale_files(out, d.files)
        if stale and not d.error:
            found.append(
                Drift(d.entry.name, d.entry.spec, tuple(stale), what_changed(d, out, stale))
            )
    stale_index = stale_files(out, index)
    if stale_index:
        why = "the list of entries, a title or a count changed"
        found.append(Drift("index", "", tuple(stale_index), (why,)))
    return found


def what_changed(d: Drawn, out: Path, stale: Sequence[str]) -> tuple[str, ...]:
    """What changed in an entry's architecture: the committed graph JSON against the new one,
    through the engine of `fxviz diff`, grouped the same way."""
    name = f"{d.entry.name}.json"
    if name not in d.files:
        return ('no graph to compare: add "json" to the entry\'s formats to see what changed',)
    committed = out / name
    if not committed.is_file():
        return ("new entry: nothing committed yet",)
    if name not in stale:
        return ("picture only (same graph): the renderer, Graphviz or a drawing option changed",)
    try:
        old = Graph.from_json(committed.read_bytes())
    except FxvizError as exc:
        return (f"the committed graph cannot be read ({exc}); draw it again",)
    result = diff(old, Graph.from_json(d.files[name]))
    if result.identical:
        return (
            "same modules and shapes; other details of the graph changed "
            "(arguments, FLOPs, notes, explanations or the tracer)",
        )
    lines = [line.strip() for line in format_report(result).splitlines() if line.startswith("  ")]
    if all(g.kind in ("input", "shape") for g in result.groups):
        lines[0] = "shapes only: " + lines[0]
    if result.params_a != result.params_b:
        lines.append(f"params {result.params_a:,} -> {result.params_b:,}")
    return tuple(lines)


MARKER = "<!-- fxviz-gallery-report -->"


def markdown(drift: Sequence[Drift], drawn: Sequence[Drawn], out: Path) -> str:
    """The check as a pull-request comment or a job summary; the hidden marker lets a workflow
    find its earlier comment and update it in place."""
    failed = [d for d in drawn if d.error]
    changed = [x for x in drift if x.name != "index"]
    if not changed and not failed:
        head = f"### fxviz gallery: all {len(drawn)} diagrams match the code"
    else:
        head = f"### fxviz gallery: {len(changed)} of {len(drawn)} diagrams changed"
        head += f", {len(failed)} not drawn" if failed else ""
    parts = [MARKER, head, ""]
    for x in changed:
        pictures = [f for f in x.files if f.rsplit(".", 1)[-1].split(" ")[0] in IMAGE_FORMATS]
        links = " · ".join(_links(out, f.split(" ")[0]) for f in pictures)
        parts.append(f"**{x.name}** (`{x.spec}`)" + (f": {links}" if links else ""))
        parts += ["```", *x.explanation, "```", ""]
    for d in failed:
        parts.append(f"**{d.entry.name}** (`{d.entry.spec}`) {d.status}: {d.error}")
        parts.append("")
    if changed:
        parts.append(f"Regenerate with `fxviz gallery` and commit `{out}`.")
    return "\n".join(parts).rstrip() + "\n"


def _links(out: Path, picture: str) -> str:
    """Links to the committed picture and to this run's regenerated one: on GitHub Actions the
    base branch's file and the run's artifacts, else paths."""
    env = os.environ
    repo, server = env.get("GITHUB_REPOSITORY"), env.get("GITHUB_SERVER_URL", "https://github.com")
    path = (out / picture).as_posix().removeprefix("./")
    if not repo:
        return f"[{picture} (committed)]({path})"
    base = env.get("GITHUB_BASE_REF") or env.get("GITHUB_REF_NAME") or "HEAD"
    old = f"{server}/{repo}/blob/{base}/{path}"
    new = f"{server}/{repo}/actions/runs/{env.get('GITHUB_RUN_ID', '')}"
    return f"{picture}: [old]({old}) · [new (artifact)]({new})"
