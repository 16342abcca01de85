"""DOT export from hand-built graphs: goldens (stable across torch versions) and structure."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET

import pytest

from fxviz.exporters.dot import DotOptions, to_dot
from fxviz.exporters.render import render
from fxviz.graph import Graph, Node


@pytest.mark.parametrize("rankdir", ["TB", "LR"])
def test_dot_goldens(handmade: Graph, rankdir: str, golden) -> None:  # type: ignore[no-untyped-def]
    dot = to_dot(handmade, DotOptions(rankdir=rankdir))  # type: ignore[arg-type]
    golden(f"exporters/{handmade.name.split()[0].lower()}-{rankdir}.dot", dot)


def test_every_node_and_edge_is_drawn(branch: Graph) -> None:
    dot = to_dot(branch)
    for node in branch.nodes:
        assert f"{node.id} [label=" in dot
    assert "\tstem -> add" in dot and "\tblock_0_conv -> add" in dot


def test_module_nodes_say_path_class_and_shape(chain: Graph) -> None:
    dot = to_dot(chain)
    assert "fc1 · Linear" in dot
    assert "in_features=4, out_features=8" in dot
    assert "1×8" in dot


def test_clusters_nest_by_module_path_with_classes(branch: Graph) -> None:
    dot = to_dot(branch)
    outer = dot.index("subgraph cluster_block {")
    inner = dot.index('subgraph "cluster_block.0" {')
    assert outer < inner < dot.index("block_0_conv [label=")
    assert "block: Sequential" in dot and "block.0: Block" in dot


def test_no_clusters_option(branch: Graph) -> None:
    assert "subgraph" not in to_dot(branch, DotOptions(clusters=False))


def test_inputs_outputs_marked_and_non_float32_dtype_shown(hostile: Graph, branch: Graph) -> None:
    assert "input · x" in to_dot(branch)
    dot = to_dot(hostile)
    assert "2 int64" in dot
    assert 'output [label="output\\n2"' in dot


def test_frozen_modules_look_different(branch: Graph) -> None:
    dot = to_dot(branch)
    lines = [line.strip() for line in dot.splitlines()]
    stem = next(line for line in lines if line.startswith("stem ["))
    conv = next(line for line in lines if line.startswith("block_0_conv ["))
    assert "dashed" in stem and "dashed" not in conv
    assert "(112 frozen)" in dot


def test_multi_output_values_show_their_paths(branch: Graph) -> None:
    dot = to_dot(branch)
    assert "[0] 1×2×8×8, [1] 1×2×8×8" in dot
    assert 'getitem [label="[0]\\n1×2×8×8"' in dot  # getitem reads as an index


def _svg_text(svg: bytes) -> str:
    root = ET.fromstring(svg)
    return " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))


RENDERERS = [
    "embedded",
    pytest.param(
        "system",
        marks=pytest.mark.skipif(
            shutil.which("dot") is None, reason="Graphviz `dot` is not on PATH"
        ),
    ),
]


@pytest.mark.parametrize("renderer", RENDERERS)
def test_hostile_labels_render_to_valid_svg(hostile: Graph, renderer: str) -> None:
    svg = render(to_dot(hostile), "svg", renderer)  # type: ignore[arg-type]
    text = _svg_text(svg)
    assert 'a<b>{c}|d"e&f\\g é×中' in text
    assert "My<Mod>" in text


@pytest.mark.parametrize("renderer", RENDERERS)
def test_renderers_draw_every_node(branch: Graph, renderer: str) -> None:
    svg = render(to_dot(branch), "svg", renderer)  # type: ignore[arg-type]
    root = ET.fromstring(svg)
    titles = [
        g.findtext("{http://www.w3.org/2000/svg}title")
        for g in root.iter("{http://www.w3.org/2000/svg}g")
        if g.get("class") == "node"
    ]
    assert sorted(titles) == sorted(n.id for n in branch.nodes)  # type: ignore[type-var]


def test_a_label_that_looks_like_html_stays_text() -> None:
    graph = Graph(
        name="<g>",
        source="",
        tracer="fx",
        device="meta",
        nodes=(Node("<b>", "function", "<b>"), Node("output", "output", "output", inputs=("<b>",))),
    )
    dot = to_dot(graph)
    assert '"<b>" [label="<b>"' in dot
    svg = render(dot, "svg", "embedded")
    assert _svg_text(svg).split() == ["<g>", "0", "params", "·", "traced", "with", "fx", "on"] + [
        "meta",
        "<b>",
        "output",
    ]
