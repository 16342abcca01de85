"""One drawing path: every entry point draws the same picture of the same model, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import fxviz
from fxviz.cli import app
from fxviz.drawing import DrawOptions, draw_options, to_dot
from fxviz.errors import SpecError
from fxviz.gallery import draw_entry, read_manifest
from fxviz.graph import Graph
from fxviz.views import apply_views

REPO = Path(__file__).parent.parent
runner = CliRunner()

MODELS = [
    (f"{REPO}/examples/tiny.py:TinyNet", []),
    (f"{REPO}/examples/lenet.py:LeNet", []),
    (f"{REPO}/examples/lstm_tagger.py:LSTMTagger", []),
    (f"{REPO}/examples/refactor_before.py:Net", []),
    (f"{REPO}/examples/refactor_after.py:Net", []),
    (f"{REPO}/examples/multimodal.py:MultiModal", []),
    ("resnet18", []),
    ("vit_b_16", []),
    ("hf:bert", ["num_hidden_layers=2"]),
]


@pytest.mark.parametrize(("spec", "config"), MODELS, ids=[m[0].rpartition("/")[2] for m in MODELS])
def test_every_entry_point_draws_the_same_bytes(
    spec: str, config: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    flags = [arg for item in config for arg in ("--config", item)]
    drawn = runner.invoke(app, [spec, *flags, "-o", "a.dot", "-o", "g.json", "-q"])
    assert drawn.exit_code == 0, drawn.output

    fxviz.trace(spec, config=config).save("b.dot")

    rendered = runner.invoke(app, ["render", "g.json", "-o", "c.dot", "-q"])
    assert rendered.exit_code == 0, rendered.output

    (tmp_path / "m.toml").write_text(
        f'[[model]]\nname = "d"\nspec = "{spec}"\nformats = ["dot"]\nconfig = {config!r}\n'
    )
    (entry,) = read_manifest(tmp_path / "m.toml")
    gallery = draw_entry(entry)
    assert not gallery.error, gallery.error

    a = (tmp_path / "a.dot").read_bytes()
    assert (tmp_path / "b.dot").read_bytes() == a
    assert (tmp_path / "c.dot").read_bytes() == a
    assert gallery.files["d.dot"] == a
    assert fxviz.Graph.load("g.json").to_dot().encode() == a
    assert fxviz.draw(Graph.load("g.json")).to_dot().encode() == a


def test_the_default_picture_is_the_viewed_graph() -> None:
    graph = fxviz.trace("hf:bert", config=["num_hidden_layers=3"])
    assert graph.to_dot() == to_dot(apply_views(graph), DrawOptions(views=False))
    assert graph.to_dot() != graph.to_dot(views=False)
    assert graph.to_dot(all_ops=True) == to_dot(
        apply_views(graph, every_op=True), DrawOptions(views=False)
    )
    raw_boxes = graph.to_dot(views=False).count("[label=")
    assert raw_boxes > 2 * graph.to_dot().count("[label=")


def test_draw_writes_pictures_and_the_full_graph(tmp_path: Path) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
    graph = fxviz.draw(model, tmp_path / "m.svg", tmp_path / "m.json", inputs=torch.zeros(1, 4))
    assert Graph.load(tmp_path / "m.json") == graph
    assert b"</svg>" in (tmp_path / "m.svg").read_bytes()
    again = fxviz.draw(tmp_path / "m.json", tmp_path / "again.dot", rankdir="LR", depth=1)
    assert again == graph and "rankdir=LR" in (tmp_path / "again.dot").read_text()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dept": 2}, "unknown drawing option dept=; did you mean depth=?"),
        ({"depth": 0}, "depth= 0: give a whole number of path components, 1 or more"),
        ({"depth": "2"}, "depth= '2'"),
        ({"fold": "yes"}, "fold= 'yes': give true or false"),
        ({"show": "parms"}, "show= 'parms': unknown annotation 'parms'; did you mean params?"),
        ({"rankdir": "BT"}, "rankdir= 'BT': choose TB or LR"),
        ({"renderer": "sytem"}, "renderer= 'sytem': did you mean system?"),
        ({"expand": [1]}, "expand= [1]: give module class names"),
    ],
)
def test_bad_drawing_options_say_what_to_use(options: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError, match=message.replace("?", r"\?").replace("[", r"\[")):
        draw_options(**options)


def test_options_as_users_write_them() -> None:
    options = draw_options(show="params,flops", rankdir="lr", expand="LSTM", depth=2)
    assert options == DrawOptions(
        depth=2,
        show=frozenset({"shapes", "args", "params", "flops"}),
        rankdir="LR",
        expand=("LSTM",),
    )
    assert draw_options(show=options.show) == draw_options(show="params,flops")
