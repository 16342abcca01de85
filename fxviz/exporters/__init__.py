"""Writing a Graph to files: the format comes from the suffix; every file is written atomically.

All outputs are produced in memory first and written only when every one succeeded, so a
failing render never leaves a half-written file or clobbers the previous good one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from fxviz.diff import GraphDiff
from fxviz.errors import OutputError
from fxviz.exporters.dot import DotOptions
from fxviz.exporters.render import IMAGE_FORMATS, TIMEOUT_S, Renderer, render
from fxviz.graph import Graph

# Read once: os.umask can only be read by setting it.
_UMASK = os.umask(0o022)
os.umask(_UMASK)

FORMATS = {
    ".svg": "svg",
    ".png": "png",
    ".pdf": "pdf",
    ".dot": "dot",
    ".gv": "dot",
    ".json": "json",
    ".mmd": "mermaid",
    ".md": "markdown",
    ".html": "html",
    ".htm": "html",
}
# Text formats drawn from the picture's graph itself rather than from its DOT.
MERMAID_FORMATS = frozenset({"mermaid", "markdown"})
GRAPH_FORMATS = MERMAID_FORMATS | {"html"}


def output_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(set(FORMATS)))
        shown = f"suffix {path.suffix!r}" if path.suffix else "no suffix"
        raise OutputError(f"output {str(path)!r} has {shown}; use one of {known}")
    return fmt


def check_outputs(paths: Sequence[Path]) -> None:
    """Fail before any work if an output cannot be written: bad suffix, missing folder, …"""
    for path in paths:
        output_format(path)
        folder = path.parent if str(path.parent) else Path(".")
        if not folder.is_dir():
            raise OutputError(f"output {str(path)!r}: folder {str(folder)!r} does not exist")
        if not os.access(folder, os.W_OK):
            raise OutputError(f"output {str(path)!r}: folder {str(folder)!r} is not writable")
        if path.is_dir():
            raise OutputError(f"output {str(path)!r} is a folder; give a file name")


def export(source: str, fmt: str, renderer: Renderer = "auto", timeout: float = TIMEOUT_S) -> bytes:
    """DOT `source` as `fmt`: the source itself for dot, a rendered picture for svg, png, pdf."""
    if fmt == "dot":
        return source.encode()
    if fmt in IMAGE_FORMATS:
        return render(source, fmt, renderer, timeout)
    known = ", ".join(sorted(set(FORMATS.values()) - {"json"} - GRAPH_FORMATS))
    raise OutputError(f"unknown picture format {fmt!r}; use one of {known}")


def save_diff(
    a: Graph,
    b: Graph,
    result: GraphDiff,
    paths: Sequence[Path],
    dot_options: DotOptions | None = None,
    renderer: Renderer = "auto",
) -> None:
    """Write a diff: .json is the diff itself, pictures and .dot show both graphs merged,
    .html is that picture to explore, with the report beside it."""
    from fxviz.exporters.diffdot import diff_to_dot
    from fxviz.exporters.html import diff_page

    save_files(
        paths,
        result.to_json,
        lambda: diff_to_dot(a, b, result, dot_options),
        renderer,
        {"html": lambda: diff_page(a, b, result, dot_options)},
    )


def save_files(
    paths: Sequence[Path],
    json_text: Callable[[], str],
    dot_source: Callable[[], str],
    renderer: Renderer,
    texts: Mapping[str, Callable[[], str]] | None = None,
) -> None:
    """Write each path from `json_text`, the pictures of `dot_source`, or `texts` (by format:
    the Mermaid, Markdown or HTML text): all or nothing."""
    check_outputs(paths)
    texts = texts or {}
    formats = {path: output_format(path) for path in paths}
    for path, fmt in formats.items():
        if fmt in GRAPH_FORMATS and fmt not in texts:
            raise OutputError(
                f"output {str(path)!r}: Mermaid draws one model; a diff writes "
                ".json, .html, .svg, .png, .pdf or .dot"
            )
    source = dot_source() if set(formats.values()) - {"json"} - GRAPH_FORMATS else ""
    contents = {}
    for path, fmt in formats.items():
        if fmt == "json":
            contents[path] = json_text().encode()
        elif fmt in texts:
            contents[path] = texts[fmt]().encode()
        else:
            contents[path] = export(source, fmt, renderer)
    for path, data in contents.items():
        write_atomic(path, data)


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename over it."""
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give what open() would
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
