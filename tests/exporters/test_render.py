"""Choosing a renderer, and the errors when none can draw the format asked for."""

from __future__ import annotations

import shutil

import pytest

from fxviz.errors import RenderError
from fxviz.exporters.render import choose_renderer, render

DOT = "digraph { a -> b }"


@pytest.fixture
def no_dot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)


@pytest.fixture
def has_dot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/dot")


def test_auto_prefers_system_dot(has_dot: None) -> None:
    assert choose_renderer("auto", "svg") == "system"
    assert choose_renderer("auto", "png") == "system"


def test_auto_falls_back_to_embedded_for_svg(no_dot: None) -> None:
    assert choose_renderer("auto", "svg") == "embedded"


def test_embedded_renders_svg_without_dot(no_dot: None) -> None:
    svg = render(DOT, "svg", "auto")
    assert svg.startswith(b"<?xml") and b"</svg>" in svg


@pytest.mark.parametrize(
    ("renderer", "fmt", "message"),
    [
        ("auto", "png", "PNG output needs Graphviz's `dot` on PATH"),
        ("auto", "pdf", "PDF output needs Graphviz's `dot`"),
        ("system", "svg", "--renderer system needs Graphviz's `dot`"),
        ("embedded", "png", "the embedded renderer draws SVG only"),
        ("auto", "jpg", "cannot render 'jpg'"),
    ],
)
def test_unavailable_renderer_says_what_to_install(
    no_dot: None, renderer: str, fmt: str, message: str
) -> None:
    with pytest.raises(RenderError, match=message.replace("(", r"\(")):
        choose_renderer(renderer, fmt)  # type: ignore[arg-type]


def test_embedded_renderer_error_is_a_render_error() -> None:
    with pytest.raises(RenderError, match="embedded Graphviz failed"):
        render("digraph { a -> ", "svg", "embedded")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not on PATH")
def test_system_renderer_error_is_a_render_error() -> None:
    with pytest.raises(RenderError, match="`dot -Tsvg` failed"):
        render("digraph { a -> ", "svg", "system")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not on PATH")
@pytest.mark.parametrize(("fmt", "magic"), [("png", b"\x89PNG"), ("pdf", b"%PDF")])
def test_system_renders_png_and_pdf(fmt: str, magic: bytes) -> None:
    assert render(DOT, fmt, "system").startswith(magic)


def test_embedded_output_is_reproducible() -> None:
    assert render(DOT, "svg", "embedded") == render(DOT, "svg", "embedded")
