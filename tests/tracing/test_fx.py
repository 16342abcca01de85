"""fx tracing + shape propagation on small models built in code."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from fxviz.errors import ShapeError, TraceError
from fxviz.tracing import trace_module


class Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc(x)) + x


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 8)
        self.blocks = nn.Sequential(Block(8), Block(8))
        self.scale = nn.Parameter(torch.ones(8))
        self.lstm = nn.LSTM(8, 6, batch_first=True)

    def forward(
        self, ids: torch.Tensor, mask: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        h = self.blocks(self.embed(ids)) * self.scale
        out, (hn, cn) = self.lstm(h)
        return {"out": out, "last": hn, "size": out.size(1)}  # type: ignore[dict-item]


def ids(device: str) -> torch.Tensor:
    return torch.zeros(2, 5, dtype=torch.long, device=device)


@pytest.fixture(params=["meta", "cpu"])
def net_graph(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    with torch.device(request.param):
        model = Net().eval()
    return trace_module(model, (ids(request.param),), name="Net")


def test_nodes_shapes_and_kinds(net_graph) -> None:  # type: ignore[no-untyped-def]
    g = net_graph
    assert [n.id for n in g.inputs] == ["ids", "mask"]
    assert g.node("ids").outputs[0].dtype == "int64"
    embed = g.node("embed")
    assert (embed.kind, embed.module_class, embed.outputs[0].shape) == (
        "module",
        "Embedding",
        (2, 5, 8),
    )
    lstm = g.node("lstm")
    assert [(v.path, v.shape) for v in lstm.outputs] == [
        ("[0]", (2, 5, 6)),
        ("[1][0]", (1, 2, 6)),
        ("[1][1]", (1, 2, 6)),
    ]
    out = g.outputs[0]
    assert [(v.path, v.kind) for v in out.outputs] == [
        ("['out']", "tensor"),
        ("['last']", "tensor"),
        ("['size']", "int"),
    ]
    assert out.outputs[2].text == "5"
    assert g.tracer == "fx" and g.device in ("meta", "cpu")


def test_scopes_put_functions_inside_their_block(net_graph) -> None:  # type: ignore[no-untyped-def]
    g = net_graph
    assert g.node("blocks_0_fc").scope == "blocks.0"
    assert g.node("blocks_0_fc").target == "blocks.0.fc"
    add = g.node("add_1")
    assert (add.target, add.scope, add.inputs) == ("operator.add", "blocks.1", ("relu_1", "add"))
    assert g.node("embed").scope == ""


def test_params_buffers_and_constants(net_graph) -> None:  # type: ignore[no-untyped-def]
    g = net_graph
    assert g.node("blocks_0_fc").params.trainable == 8 * 8 + 8
    scale = g.node("scale")
    assert scale.kind == "constant" and scale.params.trainable == 8
    assert g.totals.params.trainable == sum(p.numel() for p in Net().parameters())
    paths = {m.path: m for m in g.modules}
    assert paths["blocks.0"].class_name == "Block" and paths["blocks.0"].params.total == 72
    assert paths["lstm"].hparams == "8, 6, batch_first=True"


def test_source_lines_point_into_forward(net_graph) -> None:  # type: ignore[no-untyped-def]
    fc = net_graph.node("blocks_0_fc").source
    assert fc.file == "tests/tracing/test_fx.py" and fc.function == "forward"
    assert fc.code == "return F.relu(self.fc(x)) + x"
    assert net_graph.node("ids").source is None


def test_function_arguments_drop_defaults() -> None:
    class M(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.log_softmax(torch.flatten(x, 1), dim=-1).transpose(0, 1)

    g = trace_module(M(), (torch.zeros(2, 3, 4, device="meta"),))
    assert g.node("flatten").arguments == "start_dim=1"
    assert g.node("log_softmax").arguments == "dim=-1"
    assert (g.node("transpose").kind, g.node("transpose").arguments) == ("method", "dim0=0, dim1=1")


def test_flops_match_flop_counter_mode() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 30 * 30, 10)
    ).eval()
    x = torch.randn(1, 3, 32, 32)
    with FlopCounterMode(display=False) as counter:
        model(x)
    g = trace_module(model, (x,))
    assert g.totals.flops == counter.get_total_flops() > 0
    assert g.node("_0").flops == 2 * 8 * 30 * 30 * 27


def test_frozen_parameters_are_counted_apart() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    model[0].requires_grad_(False)
    g = trace_module(model, (torch.zeros(1, 4),))
    assert g.node("_0").params.frozen == 20 and g.node("_0").params.trainable == 0
    assert (g.totals.params.trainable, g.totals.params.frozen) == (10, 20)


@torch.library.custom_op("fxviz_test::cpu_only", mutates_args=())
def cpu_only(x: torch.Tensor) -> torch.Tensor:
    return x.repeat(1, 2)


class UsesCpuOnly(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cpu_only(x) + 1


def test_op_without_meta_kernel_falls_back_to_cpu_and_says_so() -> None:
    g = trace_module(UsesCpuOnly(), (torch.empty(2, 3, device="meta"),))
    node = next(n for n in g.nodes if "cpu_only" in n.target)
    assert node.outputs[0].shape == (2, 6) and node.outputs[0].device == "meta"
    assert g.node("add").outputs[0].shape == (2, 6)
    assert len(g.notes) == 1 and "its shapes were computed on cpu" in g.notes[0]
    assert g.device == "meta"


def test_wrong_input_shape_names_node_and_shapes() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(10, 2))
    with pytest.raises(ShapeError) as caught:
        trace_module(model, (torch.empty(1, 3, 32, 32, device="meta"),))
    assert str(caught.value) == (
        "2 (Linear) expects 10 but gets 7200 = 8·30·30; set in_features=7200 in 2"
    )
    assert caught.value.reason.startswith("node '_2', 2 (Linear), failed with input shapes 1×7200")


def test_wrong_channel_count_on_cpu() -> None:
    with pytest.raises(ShapeError) as caught:
        trace_module(nn.Sequential(nn.Conv2d(3, 8, 3)), (torch.randn(1, 1, 8, 8),))
    assert str(caught.value) == (
        "0 (Conv2d) expects 3 channels but gets 1 (1×1×8×8): the input is the likely culprit "
        "(--input 1,3,8,8)"
    )


def test_float_ids_into_embedding() -> None:
    with pytest.raises(ShapeError, match=r"node 'embed'.*Embedding"):
        trace_module(Net(), (torch.zeros(2, 5),))


def test_too_many_or_unknown_inputs() -> None:
    with pytest.raises(ShapeError, match="3 inputs given, but forward takes 2"):
        trace_module(Net(), (ids("cpu"), ids("cpu"), ids("cpu")))
    with pytest.raises(ShapeError, match="no argument named 'idz'"):
        trace_module(Net(), (), {"idz": ids("cpu")})
    with pytest.raises(ShapeError, match="argument 'ids' has no input"):
        trace_module(Net(), ())


class Branchy(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.mean() > 0:
            return x
        return -x


def test_data_dependent_control_flow_is_a_trace_error_with_the_line() -> None:
    with pytest.raises(
        TraceError, match=r"cannot trace Branchy: .*at test_fx.py:\d+ `if x.mean\(\) > 0:`"
    ):
        trace_module(Branchy(), (torch.zeros(2),), tracer="fx")


def test_keyword_inputs_bind_by_name() -> None:
    g = trace_module(Net(), (), {"ids": ids("meta")})
    assert g.node("embed").outputs[0].shape == (2, 5, 8)


class Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 4, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, x, x, need_weights=False)[0]


def test_attention_flops_are_counted_the_same_on_cpu_and_meta() -> None:
    x = torch.randn(2, 10, 16)
    on_cpu = trace_module(Attention().eval(), (x,))
    with torch.device("meta"):
        on_meta = trace_module(Attention().eval(), (x.to("meta"),))
    qkv_and_out = 2 * (2 * 10 * 16 * 48 + 2 * 10 * 16 * 16)
    scores_and_values = 2 * 2 * (2 * 4 * 10 * 10 * 4)
    assert on_cpu.totals.flops == on_meta.totals.flops == qkv_and_out + scores_and_values
    assert torch.backends.mha.get_fastpath_enabled()  # restored afterwards


class Gate(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.mean() > 0:
            return self.fc(x)
        return x


class Gated(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(4, 4)
        self.gate = Gate()
        self.out = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.gate(self.inp(x))))


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_a_submodule_fx_cannot_follow_becomes_one_box(device: str) -> None:
    with torch.device(device):
        model = Gated()
    g = trace_module(model, (torch.ones(2, 4, device=device),))
    assert g.tracer == "fx"
    gate = g.node("gate")
    assert (gate.kind, gate.module_class, gate.outputs[0].shape, gate.params.trainable) == (
        "module",
        "Gate",
        (2, 4),
        20,
    )
    assert [n.id for n in g.nodes if n.kind == "module"] == ["inp", "gate", "out"]
    assert g.notes[0].startswith(
        "torch.fx could not trace inside gate (Python control flow depends on a tensor"
    )
    assert g.notes[0].endswith("`if x.mean() > 0:`); drawn as one box")


@torch.fx.wrap
def _appends(sizes: list[int], extra: int) -> list[int]:
    sizes.append(extra)  # mutates its argument, as torchvision's swin3d window helper does
    return sizes


class MutatesArgs(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(_appends([x.shape[0]], -1))


def test_wrapped_functions_may_mutate_constant_list_arguments() -> None:
    g = trace_module(MutatesArgs(), (torch.zeros(2, 3, 4, device="meta"),))
    assert g.tracer == "fx" and g.outputs[0].outputs[0].shape == (2, 12)


def test_rnn_flops_are_counted_the_same_on_cpu_and_meta() -> None:
    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(32, 64, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lstm(x)[0]

    on_cpu = trace_module(Tagger().eval(), (torch.randn(1, 12, 32),))
    with torch.device("meta"):
        on_meta = trace_module(Tagger().eval(), (torch.empty(1, 12, 32),))
    gates = 4 * 64
    per_step = 2 * (32 * gates + 64 * gates)
    assert on_cpu.totals.flops == on_meta.totals.flops == 12 * per_step
    assert torch.backends.mkldnn.enabled  # restored afterwards


def _double_then_shift(x: torch.Tensor) -> torch.Tensor:
    y = x * 2
    return y + 1


class Helpers(nn.Module):
    """Ops in a module-level helper, and ops in a helper method of the module itself."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _double_then_shift(self.fc(x))
        return self._squash(x)

    def _squash(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x) * 3


@pytest.mark.parametrize("tracer", ["fx", "export", "record"])
def test_sources_are_the_line_in_the_modules_own_code(tracer: str) -> None:
    """A helper function's ops point at the line that called it; a helper method is the
    module's own code, so its ops keep their own line. All three tracers agree."""
    g = trace_module(Helpers(), (torch.ones(1, 4),), tracer=tracer)
    codes = {
        n.target.rpartition(".")[2]: n.source.code
        for n in g.nodes
        if n.kind == "function" and n.source is not None
    }
    # torch.export's stack traces keep `forward` frames only, so there the method's line is
    # the line in forward that called it.
    squash = "return self._squash(x)" if tracer == "export" else "return torch.tanh(x) * 3"
    assert codes["mul"] == codes["tanh"] == squash
    assert codes["add"] == "x = _double_then_shift(self.fc(x))"


def test_input_checks_are_not_drawn() -> None:
    """torchvision's ViT asserts its input size; the check is not data flow."""

    class Checked(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            n, w = x.shape
            torch._assert(w == 4, f"expected width 4, got {w}")
            return self.fc(x) * n

    g = trace_module(Checked(), (torch.ones(2, 4),), tracer="fx")
    targets = [n.target for n in g.nodes]
    assert "torch._assert" not in targets and "operator.eq" not in targets
    assert "operator.mul" in targets and g.outputs[0].outputs[0].shape == (2, 4)


def test_onednn_is_turned_off_only_for_models_with_an_rnn() -> None:
    """oneDNN's fused LSTM has no FLOP formula; its convolutions are 4× faster on CPU."""
    from fxviz.tracing.shapes import counted_attention

    with counted_attention("cpu", nn.Sequential(nn.Conv2d(3, 8, 3))):
        assert torch._C._get_mkldnn_enabled()
    with counted_attention("cpu", nn.Sequential(nn.Linear(2, 2), nn.GRU(2, 2))):
        assert not torch._C._get_mkldnn_enabled()
    assert torch._C._get_mkldnn_enabled()
