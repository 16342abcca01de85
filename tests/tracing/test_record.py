"""The recording tracer: what neither fx nor torch.export can follow, drawn from one run."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.modules import module as module_hooks

import fxviz
from fxviz.errors import TraceError
from fxviz.tracing import trace_module
from fxviz.tracing.record import RECORD_NOTE


class ValueBranch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.neg = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.mean() > 0:
            return torch.relu(self.fc(x))
        return self.neg(-x)


@pytest.mark.parametrize(("sign", "taken", "skipped"), [(1.0, "fc", "neg"), (-1.0, "neg", "fc")])
def test_value_branch_draws_the_branch_that_ran(sign: float, taken: str, skipped: str) -> None:
    g = trace_module(ValueBranch(), (torch.full((2, 4), sign),))
    assert g.tracer == "record"
    targets = [n.target for n in g.nodes]
    assert taken in targets and skipped not in targets
    assert RECORD_NOTE in g.notes
    why = g.notes[0]
    assert (
        why.startswith("torch.fx could not trace it (")
        and "a run on fake tensors could not trace it (" in why  # the branch reads a value
        and "torch.export could not trace it (" in why
    )
    assert why.count("`if x.mean() > 0:`") == 3 and why.endswith("drawn with a recorded run")
    assert "recorded on real values: the model reads them (data-dependent ops)" in g.notes
    assert "another input could take another path" in g.to_dot()


def test_recorded_nodes_carry_shapes_params_flops_and_lines() -> None:
    g = trace_module(ValueBranch(), (torch.ones(3, 4),), tracer="record")
    fc = g.node("fc")
    assert (fc.kind, fc.module_class, fc.outputs[0].shape, fc.params.trainable) == (
        "module",
        "Linear",
        (3, 4),
        20,
    )
    assert fc.flops == 2 * 3 * 4 * 4 and fc.inputs == ("x",)
    assert fc.source is not None and fc.source.code == "return torch.relu(self.fc(x))"
    relu = g.node("relu")
    assert (relu.kind, relu.target, relu.inputs) == ("function", "torch.relu", ("fc",))
    assert g.outputs[0].inputs == ("relu",)
    assert g.totals.params.trainable == 40  # both branches' parameters exist, one branch ran


def test_meta_model_is_recorded_on_a_cpu_copy() -> None:
    with torch.device("meta"):
        model = ValueBranch()
    g = trace_module(model, (torch.ones(2, 4, device="meta"),), tracer="record")
    assert g.device == "cpu"
    assert "recorded on cpu: the model needs real values (data-dependent ops)" in g.notes
    assert all(p.is_meta for p in model.parameters())  # the user's model is untouched


def test_a_cpu_copy_the_machine_cannot_hold_is_refused_before_allocating(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fuyu's default config would copy 39 GiB of weights to the CPU: the kernel's OOM killer
    ended the process after minutes. Now the copy is refused first, in one line."""
    from fxviz.tracing import record

    with torch.device("meta"):
        model = ValueBranch()
    # 40 float parameters (160 B) and two temporaries of the largest (2 × 64 B) do not fit
    monkeypatch.setattr(record, "available_memory", lambda: 200)
    copies = []
    monkeypatch.setattr(record, "materialize_on_cpu", lambda *a: copies.append(a))
    with pytest.raises(
        TraceError,
        match=r"a CPU copy of its weights needs 288 B, more than "
        r"this machine has free \(200 B\); draw a smaller config",
    ):
        trace_module(model, (torch.ones(2, 4, device="meta"),), tracer="record")
    assert not copies
    monkeypatch.undo()
    assert trace_module(model, (torch.ones(2, 4, device="meta"),)).device == "cpu"


def test_available_memory_is_what_the_system_reports() -> None:
    from fxviz.tracing.record import available_memory

    free = available_memory()
    assert free is None or 0 < free


def test_hooks_are_removed_even_when_the_model_fails() -> None:
    class Broken(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x).view(7)

    before = (len(module_hooks._global_forward_pre_hooks), len(module_hooks._global_forward_hooks))
    with pytest.raises(
        TraceError, match=r"running Broken to record it failed: .* at test_record.py:\d+"
    ):
        trace_module(Broken(), (torch.ones(2, 4),), tracer="record")
    after = (len(module_hooks._global_forward_pre_hooks), len(module_hooks._global_forward_hooks))
    assert after == before
    assert torch.overrides._get_current_function_mode_stack() == []


def test_all_three_failing_lists_every_reason() -> None:
    class AlwaysBroken(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.sum() > 0:
                raise ValueError("no positive inputs")
            return x

    with pytest.raises(TraceError) as info:
        trace_module(AlwaysBroken(), (torch.ones(2),))
    message = str(info.value)
    assert message.startswith("no tracer can draw AlwaysBroken: torch.fx: ")
    assert "; torch.export: " in message and "; recording a run: no positive inputs" in message


@pytest.mark.parametrize(
    "name", ["fasterrcnn_mobilenet_v3_large_320_fpn", "ssdlite320_mobilenet_v3_large"]
)
def test_detection_models_fail_fx_and_export_and_are_recorded(name: str) -> None:
    g = fxviz.trace(name)
    assert g.tracer == "record" and g.device == "cpu"
    assert "torch.fx could not trace it (Python control flow depends on a tensor" in g.notes[0]
    assert (
        "torch.export could not trace it (Could not guard on data-dependent expression"
        in g.notes[0]
    )
    outputs = {v.path: v for v in g.outputs[0].outputs}
    assert outputs["[0]['boxes']"].shape is not None and outputs["[0]['boxes']"].shape[1:] == (4,)
    assert any(n.kind == "module" and n.module_class == "Conv2d" for n in g.nodes)
    assert g.inputs[0].target == "images" and g.inputs[0].outputs[0].path == "[0]"
    assert g.inputs[0].outputs[0].shape == (3, 320, 320)


class WritesIntoZeros(nn.Module):
    """torchvision's MultiScaleRoIAlign pattern: results written into a tensor made empty."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(2, 4)
        out[0] = self.fc(x[0])
        out[1] = self.fc(x[1])
        return self.head(out)


def test_a_value_written_into_a_fresh_tensor_keeps_its_edges() -> None:
    g = fxviz.trace(WritesIntoZeros(), torch.zeros(2, 4), tracer="record")
    writes = [n for n in g.nodes if n.target == "operator.setitem"]
    assert [w.inputs for w in writes] == [("fc",), (writes[0].id, "fc_1")]
    assert writes[1].outputs[0].shape == (2, 4)
    assert g.node("head").inputs == (writes[1].id,)


def test_a_recorded_detection_model_keeps_every_module_connected() -> None:
    """Values flow between modules through dicts, lists and OrderedDicts, and through the
    RoI pooler's writes into a zero tensor: every module call reads something and is read."""
    g = fxviz.trace("fasterrcnn_mobilenet_v3_large_320_fpn")
    read = {source for n in g.nodes for source in n.inputs}
    calls = [n for n in g.nodes if n.kind == "module"]
    assert calls and all(n.inputs and n.id in read and n.outputs for n in calls)
    assert g.node("roi_heads_box_head_fc6").inputs == ("flatten_2",)


def test_a_recorded_run_draws_each_call_as_fx_does() -> None:
    """Indexing, methods, functions and operators: the same kinds, targets, named constant
    arguments and explanations from a recorded run as from fx (`y * 2` reaches a recorder as
    `Tensor.mul`, and is drawn as the operator)."""

    class Ops(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.flatten(x, 1)[:, :6].view(2, 3, 2)
            return y.transpose(1, 2).softmax(dim=-1) * 2

    def calls(tracer: str) -> list[tuple[str, str, str, tuple[str, ...]]]:
        g = trace_module(Ops(), (torch.zeros(2, 3, 4),), tracer=tracer)
        return [
            (n.kind, n.target, n.arguments, n.why)
            for n in g.nodes
            if n.kind in ("function", "method")
        ]

    recorded = calls("record")
    assert recorded == calls("fx")
    assert [(kind, target, arguments) for kind, target, arguments, _ in recorded] == [
        ("function", "torch.flatten", "start_dim=1"),
        ("function", "getitem", ":, :6"),
        ("method", "view", "size=[2, 3, 2]"),
        ("method", "transpose", "dim0=1, dim1=2"),
        ("method", "softmax", "dim=-1"),
        ("function", "operator.mul", "2"),
    ]
    assert recorded[0][3]  # flatten's arithmetic, explained


class Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(8, 24)
        self.norm = nn.LayerNorm(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(self.norm(x)).view(2, 5, 3, 2, 4).unbind(2)
        if not torch.compiler.is_compiling():  # the path tracers do not take
            q = q * (x.mean() > 0)
        y = nn.functional.scaled_dot_product_attention(q, k, v)
        return torch.addmm(x.new_zeros(8), y.reshape(10, 8), self.qkv.weight[:8].T)


def test_a_run_reading_no_value_takes_exports_path_and_leaves_the_model_alone() -> None:
    from torch.utils.flop_counter import FlopCounterMode

    from fxviz.loaders.torch_internals import as_exported
    from fxviz.tracing.shapes import counted_attention

    model, x = Attention(), torch.ones(2, 5, 8)
    weights = [*model.parameters()]
    g = trace_module(model, (x,), tracer="record")
    # Told what torch.export tells a model, the run takes the tracers' path: no value read.
    assert "recorded on real values" not in " ".join(g.notes)
    assert [n.target for n in g.nodes if n.kind == "function"].count("operator.mul") == 0
    # Values are the model's device, not meta's; its weights are the same cpu tensors.
    assert {v.device for n in g.nodes for v in n.outputs if v.kind == "tensor"} == {"cpu"}
    assert [*model.parameters()] == weights and all(not p.is_meta for p in weights)
    # FLOPs from shapes (linear, attention, addmm) equal the counting mode's on a real run.
    with as_exported(), torch.no_grad(), counted_attention("cpu", model):
        with FlopCounterMode(display=False) as counter:
            model(x)
    assert g.totals.flops == counter.get_total_flops() > 0


def test_a_model_keeping_a_cpu_tensor_beside_its_weights_is_run_on_fake_tensors() -> None:
    class Anchored(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.anchors = torch.ones(4)  # neither parameter nor buffer: stays on cpu

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x) + self.anchors

    g = trace_module(Anchored(), (torch.ones(2, 4),), tracer="record")
    assert g.node("fc").outputs[0].shape == (2, 4) and g.outputs[0].outputs[0].device == "cpu"


class Pick(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = int(x.argmax(-1).max())  # a value read: the path depends on the input's values
        return self.fc(x)[:, : k + 1]


def test_a_value_read_ends_a_run_on_the_device_and_every_device_tries_the_same_tracers() -> None:
    # On cpu the model first runs on its own tensors, ended at the first value it reads;
    # then, as on meta: meta tensors, fake tensors, export, and a run on real values.
    graphs = {
        device: trace_module(Pick().to(device), (torch.ones(2, 4, device=device),))
        for device in ("cpu", "meta")
    }
    assert graphs["cpu"].tracer == graphs["meta"].tracer == "record"
    assert graphs["cpu"].notes[0] == graphs["meta"].notes[0]
    assert "a run on fake tensors could not trace it (" in graphs["cpu"].notes[0]


@pytest.mark.parametrize(
    ("code", "reads"),
    [
        ("x.sum() > 0", False),
        ("bool(x.sum() > 0)", True),
        ("x.max().item()", True),
        ("x[x > 0]", True),
        ("x[:, 0]", False),
        ("torch.where(x > 0)", True),
        ("torch.where(x > 0, x, 0)", False),
        ("x.nonzero()", True),
        ("x.repeat_interleave(2)", False),
        ("x.repeat_interleave(torch.tensor([1, 2]), dim=0)", True),
    ],
)
def test_value_reads_are_told_from_shape_only_calls(code: str, reads: bool) -> None:
    from fxviz.errors import TraceError as Read
    from fxviz.tracing.record import _Recorder

    recorder = _Recorder(nn.Module(), (), "cpu", reads=False)
    try:
        with recorder:
            eval(code, {"torch": torch, "x": torch.ones(2, 3)})
    except Read:
        assert reads and recorder.read
    else:
        assert not reads and recorder.read is None
