"""`fxviz summary`: the module table, whose totals are exactly the model's."""

from __future__ import annotations

import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode
from typer.testing import CliRunner

import fxviz
from fxviz.cli import app
from fxviz.summary import summary_rows

runner = CliRunner()


def test_resnet18_totals_match_torch_exactly() -> None:
    graph = fxviz.trace("resnet18", device="cpu")
    total = summary_rows(graph)[0]
    model = torchvision.models.resnet18().eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randn(1, 3, 224, 224))
    assert total.path == "" and total.params.total == sum(p.numel() for p in model.parameters())
    assert total.flops == counter.get_total_flops() == 3_628_146_688
    assert total.output == "1×1000"


def test_rows_follow_the_tree_down_to_depth() -> None:
    rows = summary_rows(fxviz.trace("resnet18"), depth=2)
    paths = [r.path for r in rows]
    assert paths[:6] == ["", "conv1", "bn1", "relu", "maxpool", "layer1"]
    assert "layer1.0" in paths and "layer1.0.conv1" not in paths
    layer1 = next(r for r in rows if r.path == "layer1")
    assert (layer1.class_name, layer1.output, layer1.params.total) == (
        "Sequential",
        "1×64×56×56",
        147_968,
    )
    assert layer1.flops == sum(r.flops for r in rows if r.path in ("layer1.0", "layer1.1"))


def test_frozen_parameters_show_as_not_trainable() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    model[0].requires_grad_(False)
    rows = {r.path: r for r in summary_rows(fxviz.trace(model, torch.zeros(1, 4)))}
    assert (rows["0"].params.trainable, rows["0"].params.frozen) == (0, 20)
    assert rows[""].params.trainable == 10


def test_cli_table() -> None:
    result = runner.invoke(app, ["summary", "resnet18", "--depth", "1"])
    assert result.exit_code == 0, result.output
    assert "resnet18 · traced with fx on meta" in result.stdout
    assert "11,689,512" in result.stdout and "3,628,146,688" in result.stdout
    assert "layer4" in result.stdout and "layer4.0" not in result.stdout


def test_cli_errors() -> None:
    result = runner.invoke(app, ["summary", "resnet81"])
    assert result.exit_code == 2 and "did you mean resnet18" in result.stderr
