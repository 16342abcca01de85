"""DOT export from hand-built graphs: goldens (stable across torch versions) and structure."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest

from fxviz.errors import SpecError
from fxviz.exporters.dot import ANNOTATIONS, DotOptions, parse_show, to_dot
from fxviz.exporters.render import render
from fxviz.graph import Graph, Node, ParamCount, SourceLocation, Value


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
    dot = to_dot(branch, DotOptions(clusters=False))
    assert "cluster_block" not in dot and "cluster_legend" in dot


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


def test_frozen_nodes_come_with_a_legend(branch: Graph, chain: Graph) -> None:
    dot = to_dot(branch)
    assert "subgraph cluster_legend" in dot and 'label="frozen\\nrequires_grad=False"' in dot
    assert "legend_partly" not in dot
    # Every kind of box drawn has its entry; nothing frozen, no frozen entry.
    plain = to_dot(chain)
    assert "legend_input" in plain and "legend_module" in plain and "legend_output" in plain
    assert "legend_frozen" not in plain and "legend_constant" not in plain


def test_partly_frozen_and_frozen_clusters(branch: Graph) -> None:
    half = replace(branch.nodes[2], params=ParamCount(10, 5))
    frozen_block = tuple(
        replace(m, params=ParamCount(0, m.params.total)) if m.path.startswith("block") else m
        for m in branch.modules
    )
    graph = replace(branch, nodes=(*branch.nodes[:2], half, *branch.nodes[3:]))
    graph = replace(graph, modules=frozen_block)
    dot = to_dot(graph)
    assert "legend_partly" in dot
    line = next(x.strip() for x in dot.splitlines() if x.strip().startswith(f"{half.id} ["))
    assert 'style="rounded,filled,dashed"' in line and "#e4e4e4" not in line
    assert 'label="block.0: Block · frozen"' in dot


def test_show_adds_and_removes_annotations(chain: Graph) -> None:
    fc1 = next(x for x in to_dot(chain).splitlines() if x.strip().startswith("fc1 ["))
    assert "params" not in fc1 and "FLOPs" not in fc1
    dot = to_dot(chain, DotOptions(show=parse_show("params,flops,memory,source")))
    assert 'fc1 [label="fc1 · Linear\\nin_features=4, out_features=8\\n1×8\\n' in dot
    assert "40 params · 64 FLOPs · out 32 B\\nchain.py:10" in dot
    bare = to_dot(chain, DotOptions(show=parse_show("none")))
    assert 'fc1 [label="fc1 · Linear"' in bare
    assert parse_show("-args,flops") == {"shapes", "flops"}
    assert parse_show("all") == set(ANNOTATIONS)
    assert parse_show("none,params") == {"params"}


def test_show_rejects_unknown_names() -> None:
    with pytest.raises(SpecError, match="unknown annotation 'parms'"):
        parse_show("params,parms")


@pytest.mark.parametrize(
    ("code", "headline"),
    [
        ("h = self.q(x).view(1, 2, 3).transpose(1, 2)", "self.q(x).view(1, 2, 3).transpose(1, 2)"),
        ("q, k = apply_rotary_pos_emb(q, k, cos, sin)", "apply_rotary_pos_emb(q, k, cos, sin)"),
        ("return torch.cat((a, b), dim=1)", "torch.cat((a, b), dim=1)"),
        ("mask = create_causal_mask(", "create_causal_mask(…)"),
        ("b, c = x.shape[:2]", "b, c = x.shape[:2]"),
        ("[", "net.py:7"),  # the first line of a list comprehension says nothing
    ],
)
def test_a_line_group_reads_as_its_line(code: str, headline: str) -> None:
    line = Node(
        "view",
        "line",
        "net.py:7",
        arguments="2 ops: view, transpose",
        outputs=(Value("tensor", shape=(1, 3, 2), dtype="float32"),),
        source=SourceLocation("net.py", 7, "forward", code),
    )
    graph = Graph("g", "", "fx", "meta", (line,))
    assert f'label="{headline}\\n2 ops: view, transpose' in to_dot(graph)


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
    legend = [f"legend_{kind}" for kind in ("input", "module", "function", "output", "frozen")]
    assert sorted(titles) == sorted([*(n.id for n in branch.nodes), *legend])  # type: ignore[type-var]


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
    heading = ["<g>", "0", "params", "·", "traced", "with", "fx", "on", "meta"]
    key = ["key", "function", "or", "op", "output"]
    assert sorted(_svg_text(svg).split()) == sorted([*heading, *key, "<b>", "output"])


def test_output_paths_read_as_names() -> None:
    out = Node(
        "output",
        "output",
        "output",
        outputs=(
            Value("tensor", "['last_hidden_state']", (1, 16), "float32"),
            Value("tensor", "[0]['boxes']", (0, 4), "float32"),
            Value("tensor", "[1][0]", (2,), "int64"),
        ),
    )
    dot = to_dot(Graph("g", "", "fx", "meta", (out,)))
    assert 'label="output\\nlast_hidden_state 1×16, [0].boxes 0×4, [1][0] 2 int64"' in dot
