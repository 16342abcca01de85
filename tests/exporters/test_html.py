"""The HTML page, without a browser: self-contained, escaped, the whole picture as data (the
boxes, frames and edges the one drawing path draws), what its panel shows, its size, and the
notebook's display. What the page does in a browser is tested in tests/test_browser.py."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from handmade import TINY_LLAMA, chain_graph, hostile_graph, hostile_names_graph
from typer.testing import CliRunner

import fxviz
from fxviz.cli import app
from fxviz.drawing import DrawOptions, notebook_html, picture, to_dot, to_html
from fxviz.exporters import html as page_html
from fxviz.graph import Graph

REPO = Path(__file__).parent.parent.parent
runner = CliRunner()


class _Elements(HTMLParser):
    """Every element and attribute the page holds, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._script = dict(attrs) if tag == "script" else None

    def handle_endtag(self, tag: str) -> None:
        self._script = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self.scripts.append((self._script, data))


def _elements(text: str) -> _Elements:
    parser = _Elements()
    parser.feed(text)
    return parser


def _data(text: str) -> dict:  # type: ignore[type-arg]
    found = re.search(r'<script type="application/json" id="fxviz-data">(.*?)</script>', text, re.S)
    assert found
    return json.loads(found.group(1))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def resnet18() -> Graph:
    return fxviz.trace("resnet18")


def test_the_page_fetches_nothing_and_runs_only_its_own_script(resnet18: Graph) -> None:
    text = to_html(resnet18)
    parsed = _elements(text)
    for tag, attrs in parsed.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            if name in ("src", "href", "xlink:href", "action", "poster"):
                raise AssertionError(f"<{tag} {name}={value!r}> would load something")
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", text))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}
    policy = next(a["content"] for t, a in parsed.tags if a.get("http-equiv"))
    assert policy is not None and "default-src 'none'" in policy
    scripts = [text for attrs, text in parsed.scripts if "type" not in attrs]
    assert len(scripts) == 2  # the layout (also the worker's source) and the explorer
    for script in scripts:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy
    assert "worker-src blob:" in policy and "unsafe" not in policy.replace("style-src 'unsafe", "")
    assert "<svg" not in text and "<template" not in text  # no picture drawn in advance


def test_the_page_holds_the_picture_every_other_entry_point_draws(resnet18: Graph) -> None:
    from fxviz.exporters.dot import Labels, node_lines

    data = _data(to_html(resnet18))
    whole = picture(resnet18, DrawOptions(fit=False))
    assert [n["id"] for n in data["nodes"]] == [n.id for n in whole.nodes]
    labels = Labels.of(whole, DrawOptions().dot.show)
    conv = next(n for n in whole.nodes if n.target == "layer3.1.conv2")
    drawn = next(n for n in data["nodes"] if n["id"] == conv.id)
    assert drawn["lines"] == node_lines(whole, conv, labels)
    assert drawn["style"] == {
        "fill": "#dbe8f6",
        "line": "#555555",
        "pen": 1.0,
        "dash": False,
        "bold": False,
        "round": True,
    }
    # Frames: every module with boxes inside, parents before children.
    paths = [c["path"] for c in data["clusters"]]
    assert paths[:4] == ["layer1", "layer2", "layer3", "layer4"]
    for k, cluster in enumerate(data["clusters"]):
        assert cluster["p"] < k
        if cluster["p"] >= 0:
            assert cluster["path"].startswith(data["clusters"][cluster["p"]]["path"] + ".")
    assert data["clusters"][drawn["c"]]["path"] == "layer3.1"
    edges = {(whole.nodes[t].id, whole.nodes[h].id) for t, h in data["edges"]}
    assert edges == {(s, n.id) for n in whole.nodes for s in n.inputs}


def test_a_node_carries_everything_the_details_panel_shows(resnet18: Graph) -> None:
    nodes = _data(to_html(resnet18))["nodes"]
    (conv,) = [d for d in nodes if d["target"] == "layer3.1.conv2"]
    assert conv["class"] == "Conv2d"
    assert conv["hparams"] == "256, 256, kernel_size=3, padding=1, bias=False"
    assert conv["outputs"] == [{"path": "", "shape": "1×256×14×14", "dtype": "float32"}]
    assert conv["inputs"] == [{"from": "layer3.1.relu", "shape": "1×256×14×14"}]
    assert conv["params"] == [589_824, 0]
    assert conv["flops"] == "231M" and conv["memory"] == "196 KiB"
    assert conv["source"].endswith("resnet.py:96") and conv["code"] == "out = self.conv2(out)"
    assert conv["scope"] == "layer3.1"
    assert conv["why"][0].startswith("H_out = W_out")


def test_a_cluster_carries_its_module_summary(resnet18: Graph) -> None:
    clusters = {c["path"]: c for c in _data(to_html(resnet18))["clusters"]}
    layer2 = clusters["layer2"]
    assert layer2["title"] == layer2["head"] == "layer2: Sequential"
    assert layer2["in"] == ["1×64×56×56"] and layer2["out"] == ["1×128×28×28"]
    assert layer2["params"] == [525_568, 0]
    assert [c[0] for c in layer2["children"]] == ["layer2.0", "layer2.1"]
    # What its box says while it is closed.
    assert layer2["lines"] == [
        "layer2: Sequential",
        f"{layer2['nodes']} boxes · 526k params · {layer2['flops']} FLOPs",
        "1×64×56×56 → 1×128×28×28",
    ]


def test_a_depth_limit_is_the_deepest_module_offered() -> None:
    graph = fxviz.trace("resnet18")
    data = _data(to_html(graph, DrawOptions(depth=2)))
    assert max(c["path"].count(".") for c in data["clusters"]) == 0  # layer1 … layer4 only
    assert "layer1.0" in {n["target"] for n in data["nodes"]}  # a box, not a frame


def test_a_graph_without_modules_has_no_frames() -> None:
    data = _data(to_html(chain_graph()))
    assert data["clusters"] == [] and len(data["nodes"]) == len(chain_graph().nodes)


def test_a_frozen_module_and_a_memory_estimate_reach_its_frame() -> None:
    import torch
    from torch import nn

    model = nn.Sequential(nn.Sequential(nn.Linear(4, 4), nn.ReLU()), nn.Linear(4, 2))
    model[0].requires_grad_(False)
    graph = fxviz.trace(model, torch.randn(2, 4))
    (frame,) = _data(to_html(graph))["clusters"]
    assert frame["frozen"] and frame["head"] == "0: Sequential · frozen"


def test_a_big_page_stays_small() -> None:
    """86 decoder layers drawn op by op: one copy of each box's data, no drawing."""
    graph = fxviz.trace(
        "hf:llama",
        config=TINY_LLAMA,
    )
    text = to_html(graph, DrawOptions(all_ops=True, fold=False))
    data = _data(text)
    assert len(data["nodes"]) > 700
    assert len(text.encode()) / len(data["nodes"]) < 1000  # bytes per box, script included


@pytest.mark.parametrize(
    "graph", [hostile_graph(), hostile_names_graph()], ids=["hostile", "names"]
)
def test_hostile_names_stay_text(graph: Graph) -> None:
    text = to_html(graph)
    parsed = _elements(text)
    assert {t for t, _ in parsed.tags} <= {
        *("html", "head", "meta", "title", "style", "body", "header", "h1", "input", "button"),
        *("span", "label", "select", "main", "div", "aside", "p", "script", "canvas"),
    }
    assert sum(1 for t, _ in parsed.tags if t == "script") == 3
    assert not [(t, n) for t, a in parsed.tags for n in a if n.startswith("on")]
    # The names come back intact from the page's JSON, which a parser reads as one string.
    data = _data(text)
    targets = {n["target"] for n in data["nodes"]}
    assert {n.target for n in graph.nodes} <= targets
    assert data["title"] == graph.name


def test_script_json_cannot_end_its_script() -> None:
    text = page_html.script_json({"name": "</script><!--<script>&\u2028"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"name": "</script><!--<script>&\u2028"}


def test_the_notebook_display_is_the_page_in_a_sandboxed_iframe() -> None:
    graph = hostile_names_graph()
    shown = graph._repr_html_()
    assert shown == notebook_html(graph)
    assert shown.startswith("<iframe srcdoc=") and 'sandbox="allow-scripts"' in shown
    parsed = _elements(shown)
    assert [t for t, _ in parsed.tags] == ["iframe"]  # all of the page is in one attribute
    assert parsed.tags[0][1]["srcdoc"] == to_html(graph)
    svg = graph._repr_svg_()
    assert svg.lstrip().startswith("<?xml") and "<img" not in svg
    bundle = graph._repr_mimebundle_()
    assert bundle == {"text/html": shown, "image/svg+xml": svg}


def test_a_diff_shows_itself_and_reads_back_as_its_report() -> None:
    before = fxviz.trace(f"{REPO}/examples/refactor_before.py")
    after = fxviz.trace(f"{REPO}/examples/refactor_after.py")
    result = fxviz.diff(before, after)
    bundle = result._repr_mimebundle_()
    assert set(bundle) == {"text/html", "image/svg+xml"}
    page = _elements(bundle["text/html"]).tags[0][1]["srcdoc"]
    assert page is not None
    data = _data(page)
    assert data["kind"] == "diff" and data["report"][0].startswith(f"{result.a} -> {result.b}")
    statuses = {n.get("status") for n in data["nodes"]}
    assert {"added", "changed"} <= statuses
    assert result.graphs == (before, after)
    reread = fxviz.GraphDiff(
        **{f: getattr(result, f) for f in ("a", "b", "changes", "groups")},
        params_a=1,
        params_b=2,
        flops_a=0,
        flops_b=0,
    )
    assert set(reread._repr_mimebundle_()) == {"text/plain"}


def test_the_cli_writes_a_model_page_and_a_diff_page(tmp_path: Path) -> None:
    page = tmp_path / "lenet.html"
    done = runner.invoke(app, [f"{REPO}/examples/lenet.py:LeNet", "-o", str(page), "-q"])
    assert done.exit_code == 0, done.output
    assert _data(page.read_text())["title"] == "LeNet"
    diff_page = tmp_path / "diff.html"
    done = runner.invoke(
        app,
        [
            "diff",
            f"{REPO}/examples/refactor_before.py",
            f"{REPO}/examples/refactor_after.py",
            "-o",
            str(diff_page),
            "-q",
        ],
    )
    assert done.exit_code == 1, done.output
    assert _data(diff_page.read_text())["kind"] == "diff"


def test_a_big_picture_asks_graphviz_for_a_quicker_layout() -> None:
    from handmade import tensor

    from fxviz.exporters.dot import BIG
    from fxviz.graph import Node

    nodes = [Node("x", "input", "x", outputs=(tensor(2),))]
    for i in range(BIG + 1):
        nodes.append(Node(f"f{i}", "function", "torch.relu", inputs=(nodes[-1].id,)))
    big = Graph("big", "", "fx", "meta", tuple(nodes))
    assert re.search(r'nslimit="?0.2"? nslimit1="?0.2', to_dot(big, DrawOptions(views=False)))
    assert "nslimit" not in to_dot(chain_graph())


def test_writing_a_page_lays_nothing_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page holds every level and lays itself out: writing one asks Graphviz for nothing
    (fitting a picture to a screen measures layouts; a 7,000-box page took minutes so)."""
    import fxviz.drawing

    def no_layout(*args: object, **kwargs: object) -> bool:
        raise AssertionError("a layout was measured for a page")

    monkeypatch.setattr(fxviz.drawing, "_fits", no_layout)
    page = tmp_path / "llama.html"
    config = [arg for item in TINY_LLAMA for arg in ("--config", item)]
    done = runner.invoke(app, ["hf:llama", *config, "--all-ops", "--no-fold", "-o", str(page)])
    assert done.exit_code == 0, done.output
    assert "to fit a screen" not in done.output
    assert len(_data(page.read_text())["nodes"]) > 700
