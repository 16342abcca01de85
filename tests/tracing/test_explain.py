"""Why each shape is what it is: the formulas, checked against torch on real models, the
`fxviz explain` walk-through, `--show why`, and shape errors that name the layer and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import fxviz
from fxviz.cli import app
from fxviz.tracing.explain import BUG

REPO = Path(__file__).parent.parent.parent
LENET = f"{REPO}/examples/lenet.py:LeNet"
runner = CliRunner()

# One of each kind of layer with a formula, on the default suite's clock; `pytest -m zoo`
# checks every torchvision model.
MODELS = [
    "resnet18",
    "vgg11_bn",
    "inception_v3",
    "mobilenet_v3_small",
    "convnext_tiny",
    "vit_b_16",
    "swin_t",
    "r3d_18",
    "fcn_resnet50",
    "fasterrcnn_mobilenet_v3_large_320_fpn",  # recorded: its functions keep their arguments
]


def why_of(graph: fxviz.Graph, node_id: str) -> tuple[str, ...]:
    return next(n.why for n in graph.nodes if n.id == node_id)


def explained(graph: fxviz.Graph) -> list[str]:
    return [n.id for n in graph.nodes if n.why]


@pytest.mark.parametrize("name", MODELS)
def test_every_formula_agrees_with_torch(name: str) -> None:
    graph = fxviz.trace(name)
    assert not [(n.id, n.why) for n in graph.nodes if n.why and n.why[0].startswith(BUG)]
    assert len(explained(graph)) > 5


@pytest.mark.parametrize(
    ("spec", "config"),
    [("hf:bert", ["num_hidden_layers=2"]), ("hf:gpt2", ["n_layer=2"]), ("hf:t5", ["num_layers=1"])],
)
def test_formulas_agree_on_hugging_face_models(spec: str, config: list[str]) -> None:
    graph = fxviz.trace(spec, config=config)
    assert not [(n.id, n.why) for n in graph.nodes if n.why and n.why[0].startswith(BUG)]
    assert any(line.startswith("params = ") for n in graph.nodes for line in n.why)


def test_a_formula_that_disagrees_is_reported_as_a_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    from fxviz.tracing import explain

    real = explain._linear
    monkeypatch.setattr(explain, "_linear", lambda m, shape: (real(m, shape)[0], (1, 999)))
    graph = fxviz.trace(nn.Sequential(nn.Linear(4, 3)), torch.zeros(1, 4))
    assert why_of(graph, "_0") == (
        f"{BUG}: its arithmetic gives 1×999 but torch computed 1×3; please report it",
    )


def test_lstm_names_its_gates_and_batchnorm_separates_parameters_from_buffers() -> None:
    tagger = fxviz.trace(f"{REPO}/examples/lstm_tagger.py:LSTMTagger")
    lines = why_of(tagger, "lstm")
    assert (
        "weight_ih_l0: 4 gates (input, forget, cell, output) · 64 hidden × 32 input = 256 × 32"
        in lines
    )
    assert "output = N × L × D·H_out = 1 × 12 × 1·64" in lines
    resnet = fxviz.trace("resnet18")
    assert why_of(resnet, "bn1") == (
        "normalizes each of the 64 channels over the batch and every position",
        "parameters weight, bias: 2·64 = 128 trainable",
        "buffers (saved, not trained) running_mean, running_var, num_batches_tracked: "
        "2·64 + 1 = 129",
    )
    frozen = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    frozen[1].requires_grad_(False)
    graph = fxviz.trace(frozen, torch.zeros(1, 3, 8, 8))
    assert "parameters weight, bias: 2·4 = 8 frozen (requires_grad off)" in why_of(graph, "_1")


def test_reshapes_pools_and_strides() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pool = nn.MaxPool2d(3, stride=2, ceil_mode=True)
            self.conv = nn.Conv2d(4, 8, (3, 1), stride=(2, 1), padding=(1, 0))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(self.pool(x))
            return y.view(y.shape[0], -1).reshape(2, 4, -1)

    graph = fxviz.trace(Net(), torch.zeros(2, 4, 10, 9))
    assert why_of(graph, "pool")[0] == "H_out = ⌈(10 + 2·0 − (3 − 1) − 1) / 2⌉ + 1 = 5"
    assert why_of(graph, "pool")[1] == "W_out = ⌈(9 + 2·0 − (3 − 1) − 1) / 2⌉ + 1 = 4"
    assert why_of(graph, "conv")[:2] == (
        "H_out = ⌊(5 + 2·1 − 1·(3 − 1) − 1) / 2⌋ + 1 = 3",
        "W_out = ⌊(4 + 2·0 − 1·(1 − 1) − 1) / 1⌋ + 1 = 4",
    )
    assert why_of(graph, "conv")[2:] == ("C_out = 8 (out_channels)", "params = 8·4·3·1 + 8 = 104")
    assert why_of(graph, "view") == ("-1 = 2·8·3·4 / 2 = 96", "8·3·4 = 96")
    assert why_of(graph, "reshape") == ("-1 = 2·96 / 8 = 24", "96 = 4·24")


def test_explain_walks_through_lenet(golden) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(app, ["explain", LENET])
    assert result.exit_code == 0, result.output
    golden("explain/lenet.txt", result.stdout)


def test_show_why_draws_the_arithmetic_and_json_keeps_it(tmp_path: Path) -> None:
    out = tmp_path / "l.dot"
    assert (
        runner.invoke(
            app, [LENET, "--show", "why", "-o", str(out), "-o", str(tmp_path / "l.json")]
        ).exit_code
        == 0
    )
    dot = out.read_text()
    assert "H_out = W_out = ⌊(32 + 2·0 − 1·(5 − 1) − 1) / 1⌋ + 1 = 28" in dot
    assert "params = 400·120 + 120 = 48,120" in dot
    saved = fxviz.Graph.load(tmp_path / "l.json")  # validated against the schema
    assert why_of(saved, "flatten") == ("merges dims 1–3: 16·5·5 = 400",)
    again = runner.invoke(app, ["explain", str(tmp_path / "l.json")])
    assert again.stdout == runner.invoke(app, ["explain", LENET]).stdout


WRONG_FC1 = f"""
import torch
from torch import nn
import sys
sys.path.insert(0, {str(REPO / "examples")!r})
from lenet import LeNet


def example_inputs():
    return (torch.zeros(1, 1, 32, 32),)


class Wrong(LeNet):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(16 * 6 * 6, 120)
"""


@pytest.mark.parametrize("device", ["meta", "cpu"])
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [LENET, "--input", "1,1,28,28"],
            "error: fc1 (Linear) expects 400 = 16·5·5 but gets 256 = 16·4·4: the input is 28×28; "
            "5×5 maps need a 32×32 input (--input 1,1,32,32), or set in_features=256 in fc1\n",
        ),
        (
            ["wrong.py:Wrong"],
            "error: fc1 (Linear) expects 576 = 16·6·6 but gets 400 = 16·5·5: the input is 32×32; "
            "6×6 maps need a 36×36 input (--input 1,1,36,36), or set in_features=400 in fc1\n",
        ),
        (
            ["resnet18", "--input", "1,1,64,64"],
            "error: conv1 (Conv2d) expects 3 channels but gets 1 (1×1×64×64): the input is the "
            "likely culprit (--input 1,3,64,64)\n",
        ),
    ],
)
def test_a_rejected_input_names_the_layer_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str, device: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "wrong.py").write_text(WRONG_FC1)
    result = runner.invoke(app, [*args, "--device", device, "-o", "x.svg"])
    assert result.exit_code == 2
    assert result.stderr == message
    assert not (tmp_path / "x.svg").exists()


def test_the_input_size_is_found_through_layers_without_formulas() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.ReLU(), nn.BatchNorm2d(8), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(8 * 15 * 15, 10),
    )  # fmt: skip
    with pytest.raises(fxviz.FxvizError) as caught:
        fxviz.trace(model, torch.zeros(1, 3, 28, 28))
    assert str(caught.value) == (
        "5 (Linear) expects 1800 = 8·15·15 but gets 1352 = 8·13·13: the input is 28×28; 15×15 "
        "maps need a 32×32 input (--input 1,3,32,32), or set in_features=1352 in 5"
    )
