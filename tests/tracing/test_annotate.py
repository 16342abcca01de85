"""The passes from a traced fx graph to typed Nodes, called directly: arguments, shape
arithmetic, in-place ops, parameter ownership, canonical names, the module tree."""

from __future__ import annotations

import cases
import torch
import torch.nn.functional as F
from torch import fx, nn

import fxviz
from fxviz.graph import Node, ParamCount
from fxviz.tracing.annotate import (
    Canonical,
    _owned_once,
    constant_arguments,
    fx_nodes,
    hparams,
    module_tree,
    shape_arithmetic,
)
from fxviz.tracing.fx import mutated_input, symbolic_trace
from fxviz.tracing.shapes import ShapePropagation


def traced(model: nn.Module, *args: torch.Tensor) -> fx.GraphModule:
    gm = fx.GraphModule(model, symbolic_trace(model).graph)
    ShapePropagation(gm, "cpu").propagate(args, {})
    return gm


class Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[:2]
        return F.log_softmax(x.view(n, c * x.size(2)), dim=-1).to(device="cpu")


def test_shape_arithmetic_becomes_numbers_in_its_readers() -> None:
    gm = traced(Flatten(), torch.zeros(2, 3, 4))
    sizes = shape_arithmetic(gm.graph)
    assert {n.name for n in sizes} == {
        "getattr_1",
        "getitem",
        "getitem_1",
        "getitem_2",
        "size",
        "mul",
    }
    nodes = {n.id: n for n in fx_nodes(gm.graph, gm)}
    assert list(nodes) == ["x", "view", "log_softmax", "to", "output"]
    assert nodes["view"].inputs == ("x",) and nodes["view"].arguments == "size=[2, 12]"


def test_constant_arguments_leave_out_defaults_and_placement() -> None:
    gm = traced(Flatten(), torch.zeros(2, 3, 4))
    by_name = {n.name: n for n in gm.graph.nodes}
    # F.log_softmax's recorded `_stacklevel=3, dtype=None` are its defaults; device is placement.
    assert constant_arguments(by_name["log_softmax"]) == "dim=-1"
    assert constant_arguments(by_name["to"]) == ""


class InPlaceForms(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.act = nn.ReLU(inplace=True)
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = self.fc(x)
        F.relu(x, inplace=True)
        self.act(x)
        x += y
        x.mul_(2)
        return self.fc(x)


def test_every_in_place_form_is_read_after() -> None:
    model = InPlaceForms()
    gm = fx.GraphModule(model, symbolic_trace(model).graph)  # to run it below
    modules = dict(gm.named_modules())
    mutations = [n for n in gm.graph.nodes if mutated_input(n, modules) is not None]
    # fx records `x += y` as `add` and rebinds x to it, as Python does: no mutation to follow.
    assert [n.name for n in mutations] == ["relu", "act", "mul_"]
    assert [n.args[0].name for n in mutations] == ["fc", "relu", "add"]  # each the one before
    (last_fc,) = [n for n in gm.graph.nodes if n.name == "fc_1"]
    assert last_fc.args[0].name == "mul_"
    x, y = torch.randn(1, 4), torch.randn(1, 4)
    assert torch.equal(gm(x.clone(), y), model(x.clone(), y))  # rewiring changes no result


def test_canonical_names_and_the_module_tree_count_shared_things_once() -> None:
    tied, two = cases.Tied(), cases.TwoPaths()
    assert Canonical(tied).tensor("lm_head.weight") == "embed.weight"
    assert (
        Canonical(two).module("head") == "proj"
        and Canonical(two).tensor("head.bias") == "proj.bias"
    )
    tree = {m.path: m.params.total for m in module_tree(tied)}
    assert tree == {"": 60, "embed": 40, "body": 20, "lm_head": 0}
    assert [m.path for m in module_tree(two)] == ["", "proj"]


def test_a_modules_first_call_carries_its_parameters() -> None:
    tree = {m.path: m for m in module_tree(cases.TwoPaths())}
    calls = (Node("proj", "module", "proj"), Node("proj_1", "module", "proj"))
    assert [n.params for n in _owned_once(calls, tree)] == [ParamCount(20), ParamCount()]


def test_hyper_parameters_leave_out_constructor_defaults() -> None:
    conv = nn.Conv2d(64, 64, kernel_size=3, stride=1, padding=1, bias=False)
    assert hparams(conv) == "64, 64, kernel_size=3, padding=1, bias=False"
    assert hparams(nn.LayerNorm(8)) == "(8,)"


def test_constant_arguments_are_named_where_the_op_names_them() -> None:
    class Ops(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = torch.flatten(x, 1)
            return torch.cat([y, y], 1)[:, 0].unsqueeze(0).permute(1, 0)

    gm = traced(Ops(), torch.zeros(2, 3, 4))
    nodes = {n.target: n.arguments for n in fx_nodes(gm.graph, gm)}
    assert nodes["torch.flatten"] == "start_dim=1"  # a builtin: its first overload's names
    assert nodes["torch.cat"] == "dim=1"
    assert nodes["getitem"] == ":, 0"  # positional-only: an index stays an index
    # A method's arguments by its ATen op's schema, several sizes as the list export shows.
    assert nodes["unsqueeze"] == "dim=0" and nodes["permute"] == "dims=[1, 0]"
    exported = fxviz.trace(Ops(), torch.zeros(2, 3, 4), tracer="export")
    arguments = {n.target: n.arguments for n in exported.nodes}
    assert arguments["aten.flatten"] == "start_dim=1"
    assert arguments["aten.select"] == "dim=1, index=0"


def test_floats_read_as_numbers_and_mask_fills_by_name() -> None:
    class Masked(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            filled = x.masked_fill(x > 0, torch.finfo(torch.float32).min)
            return torch.where(x > 0, filled, 0.7071067811865476) * 0.5

    gm = traced(Masked(), torch.zeros(2, 3))
    nodes = {n.target: n.arguments for n in fx_nodes(gm.graph, gm)}
    assert nodes["masked_fill"] == "value=min(float32)"
    assert nodes["torch.where"] == "other=0.707107"
    assert nodes["operator.mul"] == "0.5"
