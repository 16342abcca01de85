"""Shape propagation and FLOP counting, called directly on fx graphs (no tracer policy)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import fx, nn
from torch.utils.flop_counter import FlopCounterMode

from fxviz.errors import ShapeError
from fxviz.graph import Value
from fxviz.tracing.keys import FLOPS, VALUE
from fxviz.tracing.shapes import (
    ShapePropagation,
    counted_attention,
    input_leaves,
    summarize,
)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x)).mean((2, 3))
        return self.fc(h) @ torch.ones(4, 2)


def propagate(model: nn.Module, *args: torch.Tensor, device: str = "meta") -> fx.GraphModule:
    gm = fx.symbolic_trace(model)
    ShapePropagation(gm, device).propagate(args, {})
    return gm


def test_every_node_records_what_it_made_and_its_flops() -> None:
    with torch.device("meta"):
        model = Net()
    gm = propagate(model, torch.zeros(2, 3, 10, 10, device="meta"))
    values = {n.name: n.meta[VALUE] for n in gm.graph.nodes}
    assert values["conv"] == (Value("tensor", "", (2, 8, 8, 8), "float32", "meta"),)
    assert values["mean"][0].shape == (2, 8) and values["fc"][0].shape == (2, 4)
    flops = {n.name: n.meta[FLOPS] for n in gm.graph.nodes}
    assert flops["fc"] == 2 * 2 * 8 * 4  # 2·batch·in·out
    assert flops["conv"] == 2 * (2 * 8 * 8 * 8) * (3 * 3 * 3)  # 2·outputs·(in·k·k)
    assert flops["matmul"] == 2 * 2 * 4 * 2 and flops["relu"] == 0


def test_node_flops_add_up_to_flop_counter_modes_total() -> None:
    model, x = Net(), torch.zeros(2, 3, 10, 10)
    gm = propagate(model, x, device="cpu")
    with FlopCounterMode(display=False) as counter:
        model(x)
    assert sum(n.meta[FLOPS] for n in gm.graph.nodes) == counter.get_total_flops() > 0


LAYERS = [
    (nn.Linear(8, 3), (8,)),
    (nn.Linear(8, 3, bias=False), (2, 5, 8)),
    (nn.Linear(8, 3), (0, 8)),
    (nn.Conv2d(4, 6, 3, groups=2, dilation=2, padding=1), (2, 4, 9, 9)),
    (nn.Conv2d(4, 6, 3), (4, 9, 9)),  # unbatched
    (nn.Conv1d(4, 6, 3, stride=2), (2, 4, 9)),
    (nn.Conv3d(4, 6, 3, padding=1, padding_mode="circular"), (1, 4, 5, 5, 5)),
    (nn.ConvTranspose2d(4, 6, 3, stride=2), (1, 4, 5, 5)),  # no formula: the mode counts it
]


@pytest.mark.parametrize("device", ["cpu", "meta"])
@pytest.mark.parametrize(("layer", "shape"), LAYERS, ids=lambda v: type(v).__name__)
def test_layer_flops_from_shapes_equal_flop_counter_modes(
    layer: nn.Module, shape: tuple[int, ...], device: str
) -> None:
    # Linear and convolutions are counted from their shapes, with no dispatch mode.
    layer, x = layer.to(device), torch.zeros(shape, device=device)
    gm = propagate(nn.Sequential(layer), x, device=device)
    with FlopCounterMode(display=False) as counter:
        layer(x)
    assert sum(n.meta[FLOPS] for n in gm.graph.nodes) == counter.get_total_flops()


class Attend(nn.Module):
    def __init__(self, mha: nn.MultiheadAttention, by_keyword: bool) -> None:
        super().__init__()
        self.mha, self.by_keyword = mha, by_keyword

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if self.by_keyword:
            return self.mha(query=q, key=k, value=v, need_weights=True)[0]
        return self.mha(q, k, v, need_weights=False)[0]


ATTENTION = [
    ({"batch_first": True}, (2, 5, 16), (2, 7, 16), (2, 7, 16)),
    ({}, (5, 2, 16), (5, 2, 16), (5, 2, 16)),
    ({"kdim": 8, "vdim": 12}, (5, 2, 16), (7, 2, 8), (7, 2, 12)),
    ({"add_bias_kv": True, "add_zero_attn": True}, (5, 2, 16), (6, 2, 16), (6, 2, 16)),
    ({}, (5, 16), (6, 16), (6, 16)),  # unbatched
]  # fmt: skip


@pytest.mark.parametrize("device", ["cpu", "meta"])
@pytest.mark.parametrize("by_keyword", [False, True])
@pytest.mark.parametrize(("options", "q", "k", "v"), ATTENTION)
def test_attention_flops_from_shapes_equal_flop_counter_modes(
    options: dict[str, Any],
    q: tuple[int, ...],
    k: tuple[int, ...],
    v: tuple[int, ...],
    by_keyword: bool,
    device: str,
) -> None:
    model = Attend(nn.MultiheadAttention(16, 4, **options), by_keyword).to(device).eval()
    inputs = [torch.zeros(shape, device=device) for shape in (q, k, v)]
    gm = propagate(model, *inputs, device=device)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counted_attention(device, model), counter:
        expected = model(*inputs)  # the unfused path, which the mode can count
    (node,) = [n for n in gm.graph.nodes if n.op == "call_module"]
    assert node.meta[FLOPS] == counter.get_total_flops() > 0
    assert [v.shape for v in node.meta[VALUE]][0] == tuple(expected.shape)


@pytest.mark.parametrize(
    "name", ["efficientnet_b0", "convnext_tiny", "vit_b_16", "swin_t", "mobilenet_v3_small"]
)
def test_models_node_flops_add_up_to_flop_counter_modes_total(name: str) -> None:
    # Only nodes that can do counted work run under the counting mode: the ones left out
    # (activations, norms, pooling, views, elementwise ops) must count nothing.
    import torchvision

    with torch.device("meta"):
        model = torchvision.models.get_model(name, weights=None).eval()
    x = torch.zeros(1, 3, 224, 224, device="meta")
    gm = propagate(model, x)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    assert sum(n.meta[FLOPS] for n in gm.graph.nodes) == counter.get_total_flops() > 0


class Unique(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nonzero(x)  # no meta kernel: its output size depends on the values


def test_an_op_without_a_meta_kernel_runs_on_cpu_and_says_so() -> None:
    gm = fx.symbolic_trace(Unique())
    propagation = ShapePropagation(gm, "meta")
    propagation.propagate((torch.zeros(3, 4, device="meta"),), {})
    (nonzero,) = [n for n in gm.graph.nodes if n.name == "nonzero"]
    assert nonzero.meta[VALUE][0].shape == (0, 2)  # zeros in: no non-zero element
    assert nonzero.meta[VALUE][0].device == "meta"
    assert len(propagation.notes) == 1 and "nonzero: no meta kernel" in propagation.notes[0]


def test_a_failing_node_is_named_with_its_input_shapes() -> None:
    gm = fx.symbolic_trace(nn.Sequential(nn.Linear(4, 2)))
    with pytest.raises(ShapeError) as caught:
        ShapePropagation(gm, "cpu").propagate((torch.zeros(1, 5),), {})
    assert caught.value.reason.startswith("node '_0', 0 (Linear), failed with input shapes 1×5")
    # The message reads the layer: what it expects, what it got, which number to change.
    assert str(caught.value) == (
        "0 (Linear) expects 4 input features but gets 5; set in_features=5 in 0, or check the input"
    )
    assert "check the --input" not in caught.value.reason


def test_inputs_are_flattened_the_way_the_program_was_exported() -> None:
    from torch.utils._pytree import tree_flatten

    batch = {"image": torch.zeros(1), "tokens": torch.ones(1)}
    _, spec = tree_flatten(((batch,), {"mask": torch.ones(2)}))
    leaves = input_leaves(spec, (batch,), {"mask": torch.ones(2)})
    assert [t.shape for t in leaves] == [(1,), (1,), (2,)]
    with pytest.raises(ShapeError, match="do not have the structure the program was exported"):
        input_leaves(spec, ([torch.zeros(1)],), {})


def test_summaries_name_where_each_value_sits() -> None:
    value = (torch.zeros(2), {"a": torch.zeros(1, dtype=torch.long), "b": None}, torch.Size([3]))
    assert [(v.kind, v.path, v.shape, v.dtype, v.text) for v in summarize(value)] == [
        ("tensor", "[0]", (2,), "float32", None),
        ("tensor", "[1]['a']", (1,), "int64", None),
        ("none", "[1]['b']", None, None, None),
        ("other", "[2]", None, None, "size(3)"),
    ]
    assert summarize("x" * 100)[0].text == "x" * 80


CALLS = [
    (torch.nn.functional.linear, [(2, 5, 8), (3, 8)]),
    (torch.nn.functional.linear, [(4, 8), (3, 8), (3,)]),
    (torch.addmm, [(3,), (4, 8), (8, 3)]),
    (torch.conv2d, [(2, 4, 9, 9), (6, 2, 3, 3)], {"groups": 2, "padding": 1}),
    (torch.conv1d, [(2, 4, 9), (6, 4, 3)], {"stride": 2}),
    (torch.conv3d, [(1, 4, 5, 5, 5), (6, 4, 3, 3, 3)]),
    (torch.nn.functional.scaled_dot_product_attention, [(2, 4, 5, 8), (2, 4, 7, 8), (2, 4, 7, 6)]),
    (torch.nn.functional.scaled_dot_product_attention, [(3, 5, 8), (3, 7, 8), (3, 7, 8)]),
    (
        torch.nn.functional.scaled_dot_product_attention,
        [(1, 8, 5, 16), (1, 2, 5, 16), (1, 2, 5, 16)],
        {"enable_gqa": True, "is_causal": True},
    ),
]  # fmt: skip


@pytest.mark.parametrize("device", ["cpu", "meta"])
@pytest.mark.parametrize("call", CALLS, ids=lambda c: f"{c[0].__name__}{len(c[1][0])}d")
def test_call_flops_from_shapes_equal_flop_counter_modes(
    call: tuple[Any, ...], device: str
) -> None:
    # What a recorded run sees: the functions Linear, Conv and attention call.
    from fxviz.tracing.shapes import call_flop_formula

    function, shapes, *rest = call
    kwargs = rest[0] if rest else {}
    args = [torch.zeros(shape, device=device) for shape in shapes]
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counted_attention(device, nn.Module()), counter:
        out = function(*args, **kwargs)
    formula = call_flop_formula(function)
    assert formula is not None
    assert formula(args, kwargs, out) == counter.get_total_flops() > 0
