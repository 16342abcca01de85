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


class Tall(torch.nn.Module):
    """60 stages of Linear and Tanh layers, every width different and neighbouring stages
    of different lengths (nothing folds, not even as blocks alike but for their sizes):
    about 700 boxes in a chain, over 20,000 px tall at every level, 60 at --depth 2."""

    def __init__(self) -> None:
        super().__init__()
        widths = iter(range(2, 1000))

        def stage(s: int) -> torch.nn.Sequential:
            layers: list[torch.nn.Module] = []
            for _ in range(5 + s % 2):
                width = next(widths)
                layers += [torch.nn.Linear(width, width + 1), torch.nn.Tanh()]
            return torch.nn.Sequential(*layers)

        self.stages = torch.nn.Sequential(*(stage(s) for s in range(60)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(torch.nn.functional.pad(x, (0, stage[0].in_features - x.shape[-1])))
        return x


class Alike(torch.nn.Module):
    """The same length, but its stages alike but for their widths: folding them fits."""

    def __init__(self) -> None:
        super().__init__()

        def stage(s: int) -> torch.nn.Sequential:  # widths 2 + 10s, …, 12 + 10s
            return torch.nn.Sequential(
                *(torch.nn.Linear(2 + 10 * s + i, 3 + 10 * s + i) for i in range(10))
            )

        self.stages = torch.nn.Sequential(*(stage(s) for s in range(30)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(x)


@pytest.fixture(scope="module")
def tall() -> Graph:
    return fxviz.trace(Tall(), torch.zeros(1, 2))


def test_a_picture_too_big_for_a_screen_is_drawn_at_the_depth_that_fits(tall: Graph) -> None:
    from fxviz.drawing import SCREEN_PX, fitted
    from fxviz.exporters.render import layout_px

    every_level = DrawOptions(fit=False)
    size = layout_px(to_dot(tall, every_level))
    assert size is not None and max(size) > SCREEN_PX[1]
    drawn, note = fitted(tall, DrawOptions())
    assert note == "drawn at --depth 2 to fit a screen; --depth all for every level"
    assert drawn == apply_views(tall, depth=2)
    dot = to_dot(tall)
    assert "drawn at --depth 2 to fit a screen" in dot  # said in the picture's heading
    fitted_size = layout_px(dot)
    assert fitted_size is not None
    assert min(fitted_size) <= SCREEN_PX[0] and max(fitted_size) <= SCREEN_PX[1]


def test_folding_alike_blocks_comes_before_the_depth() -> None:
    from fxviz.drawing import fitted

    drawn, note = fitted(fxviz.trace(Alike(), torch.zeros(1, 2)), DrawOptions())
    assert note == (
        "blocks alike but for their sizes folded to fit a screen; --depth all for every level"
    )
    (run,) = [m for m in drawn.modules if m.varies]
    assert (run.path, run.repeat) == ("stages.0–29", 30)
    assert run.varies == "in_features 2 → 292 (+10 each), out_features 3 → 293 (+10 each)"


def test_depth_all_draws_every_level_however_big(tall: Graph) -> None:
    options = draw_options(depth="all")
    assert options == DrawOptions(depth=None, fit=False)
    assert "to fit a screen" not in to_dot(tall, options)
    assert to_dot(tall, options) == to_dot(tall, DrawOptions(fit=False))


def test_a_given_depth_is_drawn_as_given(tall: Graph) -> None:
    assert "to fit" not in to_dot(tall, DrawOptions(depth=3))


def test_the_cli_says_how_it_fitted_the_picture(tmp_path: Path) -> None:
    net = tmp_path / "tall.py"
    net.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "import torch\nfrom test_drawing import Tall\n\n"
        "def example_inputs():\n    return (torch.zeros(1, 2),)\n"
    )
    out = tmp_path / "tall.svg"
    result = runner.invoke(app, [f"{net}:Tall", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "note: drawn at --depth 2 to fit a screen; --depth all for every level" in result.output
    every = runner.invoke(app, [f"{net}:Tall", "-o", str(tmp_path / "all.svg"), "--depth", "all"])
    assert every.exit_code == 0, every.output
    assert "to fit a screen" not in every.output
    bad = runner.invoke(app, [f"{net}:Tall", "-o", str(tmp_path / "x.svg"), "--depth", "deep"])
    assert bad.exit_code == 2 and "or all for every level" in bad.output
