"""torch.export tracing lifted back to module level: the same kind of graph as fx's."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from fxviz.errors import TraceError
from fxviz.graph import Graph
from fxviz.loaders.torch_internals import StackEntry
from fxviz.tracing import trace_module
from fxviz.tracing.export import is_leaf_entry, source_of
from fxviz.tracing.fx import is_leaf


class ShapeBranch(nn.Module):
    """fx cannot branch on a traced size; export specialises it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.act = nn.ReLU()
        self.out = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.act(self.fc(x))
        if h.shape[0] > 1:
            h = h * 2
        return {"logits": self.out(self.act(h)), "hidden": h}


@pytest.fixture(params=["meta", "cpu"])
def branch_graph(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    with torch.device(request.param):
        model = ShapeBranch().eval()
    return trace_module(model, (torch.zeros(3, 4, device=request.param),), tracer="export")


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_auto_falls_back_to_a_run_on_fake_tensors_and_says_why(device: str) -> None:
    # Past fx, auto records a run on fake tensors before it exports: the same module-level
    # graph (the contract tests), for a fraction of the time.
    with torch.device(device):
        model = ShapeBranch().eval()
    g = trace_module(model, (torch.zeros(3, 4, device=device),))
    assert g.tracer == "record" and g.device == device
    assert g.notes[0].startswith("torch.fx could not trace it (")
    assert "test_export.py" in g.notes[0] and "drawn with a recorded run" in g.notes[0]
    assert all(v.device == device for n in g.nodes for v in n.outputs if v.is_tensor)
    exported = trace_module(model, (torch.zeros(3, 4, device=device),), tracer="export")
    assert [(n.kind, n.id) for n in g.nodes if n.kind != "function"] == [
        (n.kind, n.id) for n in exported.nodes if n.kind != "function"
    ]
    assert g.totals == exported.totals


def test_leaf_modules_are_lifted_with_their_params(branch_graph) -> None:  # type: ignore[no-untyped-def]
    g = branch_graph
    kinds = [(n.kind, n.target) for n in g.nodes]
    assert kinds == [
        ("input", "x"),
        ("module", "fc"),
        ("module", "act"),
        ("function", "aten.mul"),
        ("module", "act"),
        ("module", "out"),
        ("output", "output"),
    ]
    assert [n.id for n in g.nodes if n.target == "act"] == ["act", "act_1"]
    fc = g.node("fc")
    assert (fc.module_class, fc.params.trainable, fc.outputs[0].shape) == ("Linear", 20, (3, 4))
    assert fc.flops == 2 * 3 * 4 * 4
    assert g.node("out").inputs == ("act_1",)
    assert g.totals.params.trainable == 30


def test_output_names_and_source_lines(branch_graph) -> None:  # type: ignore[no-untyped-def]
    g = branch_graph
    assert [(v.path, v.shape) for v in g.outputs[0].outputs] == [
        ("['logits']", (3, 2)),
        ("['hidden']", (3, 4)),
    ]
    mul = g.node("mul")
    assert mul.source is not None and mul.source.code == "h = h * 2"
    assert g.node("fc").source.code == "h = self.act(self.fc(x))"  # type: ignore[union-attr]


def test_multi_output_leaf_module_keeps_all_values() -> None:
    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(8, 6, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out, (h, c) = self.lstm(x)
            return out + h.transpose(0, 1)

    g = trace_module(Tagger(), (torch.zeros(2, 5, 8),), tracer="export")
    lstm = g.node("lstm")
    assert lstm.kind == "module" and lstm.module_class == "LSTM"
    assert [v.shape for v in lstm.outputs][:2] == [(2, 5, 6), (1, 2, 6)]


def _modules(g: Graph) -> list[tuple[str, object, object]]:
    return [(n.target, n.outputs[0].shape, n.params) for n in g.nodes if n.kind == "module"]


def test_export_and_fx_agree_on_resnet18() -> None:
    with torch.device("meta"):
        model = torchvision.models.resnet18().eval()
    x = torch.empty(1, 3, 224, 224, device="meta")
    by_fx = trace_module(model, (x,), tracer="fx")
    by_export = trace_module(model, (x,), tracer="export")
    assert _modules(by_export) == _modules(by_fx)
    assert by_export.totals == by_fx.totals
    assert len(by_export.nodes) == len(by_fx.nodes) == 71


class ValueBranch(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.mean() > 0:
            return x
        return -x


def test_export_only_failure_names_the_line() -> None:
    with pytest.raises(
        TraceError,
        match=r"torch.export cannot trace ValueBranch: .*test_export.py:\d+ `if x.mean\(\) > 0:`",
    ):
        trace_module(ValueBranch(), (torch.ones(2),), tracer="export")


@pytest.mark.parametrize(
    ("module", "leaf"),
    [
        (nn.Linear(1, 1), True),
        (nn.LSTM(1, 1), True),
        (nn.Sequential(nn.Linear(1, 1)), False),
        (ShapeBranch(), False),
    ],
    ids=["Linear", "LSTM", "Sequential", "ShapeBranch"],
)
def test_one_leaf_rule_asked_of_fx(module: nn.Module, leaf: bool) -> None:
    assert is_leaf(module, "m") is leaf is torch.fx.Tracer().is_leaf_module(module, "m")
    assert is_leaf(module, "m", expand=(type(module).__name__,)) is False
    # A saved program records class names only: the same answer from the name.
    cls = type(module)
    assert is_leaf_entry(StackEntry("m", "m", f"{cls.__module__}.{cls.__qualname__}"), {}) is leaf


def test_source_skips_torch_frames() -> None:
    node = torch.fx.Graph().placeholder("x")
    node.meta["stack_trace"] = (
        'File "/home/me/net.py", line 12, in forward\n    y = self.fc(x)\n'
        f'File "{torch.__file__.rsplit("/", 1)[0]}/nn/modules/linear.py", line 134, in forward\n'
        "    return F.linear(input, self.weight, self.bias)\n"
    )
    location = source_of(node)
    assert location is not None
    assert (location.file, location.line, location.code) == ("net.py", 12, "y = self.fc(x)")
    assert source_of(torch.fx.Graph().placeholder("y")) is None


def test_expand_lstm_shows_its_gates_with_shapes() -> None:
    import fxviz

    graph = fxviz.trace(
        f"{Path(__file__).parent.parent.parent}/examples/lstm_tagger.py:LSTMTagger", expand=["LSTM"]
    )
    inside = [n for n in graph.nodes if n.scope == "lstm"]
    targets = [n.target for n in inside]
    assert targets.count("aten.sigmoid") == 3 * 12 and targets.count("aten.tanh") == 2 * 12
    assert "aten.addmm" in targets
    assert all(n.outputs[0].shape == (1, 1, 64) for n in inside if n.target == "aten.sigmoid")
    assert not any(n.kind == "module" and n.target == "lstm" for n in graph.nodes)
    assert graph.node("embedding").kind == "module"  # other built-ins stay one box
    assert graph.notes[0] == "drawn inside LSTM (torch.export, decomposed)"


def test_expand_a_class_the_model_does_not_have() -> None:
    from fxviz.errors import SpecError

    with pytest.raises(
        SpecError, match="--expand GRU: ShapeBranch has none; its classes: Linear, ReLU"
    ):
        trace_module(ShapeBranch(), (torch.zeros(3, 4),), expand=("GRU",))
