"""Each private torch or torchvision API fxviz relies on still behaves as fxviz reads it.

When a torch release changes one of them, the failing test names it; the fix goes in
`fxviz/loaders/torch_internals.py` alone."""

from __future__ import annotations

import inspect
from pathlib import Path

import torch
import torchvision.models
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from fxviz.loaders import torch_internals as internals


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, *, scale: torch.Tensor) -> torch.Tensor:
        return self.fc(self.fc(x)) * scale


def exported() -> torch.export.ExportedProgram:
    return torch.export.export(Net(), (torch.zeros(1, 4),), {"scale": torch.ones(1)})


def test_nn_module_stack_records_path_class_and_one_key_per_call() -> None:
    linears = [
        n
        for n in exported().graph.nodes
        if internals.aten_packet(n.target) is torch.ops.aten.linear
    ]
    stacks = [internals.module_stack(n) for n in linears]
    assert [[e.path for e in stack] for stack in stacks] == [["", "fc"], ["", "fc"]]
    assert stacks[0][-1].key != stacks[1][-1].key  # two calls, two keys
    cls = stacks[0][-1].cls
    assert cls is nn.Linear or str(cls).endswith("torch.nn.modules.linear.Linear")


def test_stack_traces_parse_into_frames_of_the_users_code() -> None:
    (linear, *_) = [
        n
        for n in exported().graph.nodes
        if internals.aten_packet(n.target) is torch.ops.aten.linear
    ]
    frames = internals.stack_frames(linear)
    mine = [f for f in frames if f.file == __file__]
    assert mine and mine[-1].function == "forward"
    assert mine[-1].code == "return self.fc(self.fc(x)) * scale"
    assert mine[-1].line == inspect.getsourcelines(Net.forward)[1] + 1


def test_keyword_inputs_are_named_in_the_input_spec() -> None:
    assert internals.keyword_order(exported().call_spec.in_spec) == ["scale"]


def test_aten_overloads_have_a_packet_and_other_targets_none() -> None:
    assert internals.aten_packet(torch.ops.aten.add.Tensor) is torch.ops.aten.add
    assert internals.aten_packet(torch.relu) is None


def test_qualified_names_of_functions_fx_calls() -> None:
    assert internals.qualified_name(torch.nn.functional.relu) == "torch.nn.functional.relu"


def test_fx_immutable_containers_are_recognised() -> None:
    graph = torch.fx.symbolic_trace(lambda x: x.permute([0, 1])).graph
    (permute,) = [n for n in graph.nodes if n.op == "call_method"]
    assert internals.is_immutable_container(permute.args[1])
    assert not internals.is_immutable_container([0, 1])


def test_onednn_can_be_read_and_toggled() -> None:
    before = internals.mkldnn_enabled()
    try:
        internals.set_mkldnn_enabled(not before)
        assert internals.mkldnn_enabled() is (not before)
    finally:
        internals.set_mkldnn_enabled(before)
    assert internals.mkldnn_enabled() is before


def test_the_export_schema_major_version_is_a_number() -> None:
    assert isinstance(internals.export_schema_major(), int) and internals.export_schema_major() >= 1


def test_torchvision_fetches_weights_through_the_function_patched() -> None:
    from torchvision.models import _api

    original = _api.load_state_dict_from_url
    with internals.torchvision_weights_only():
        patched = _api.load_state_dict_from_url
        assert patched.keywords == {"weights_only": True}  # type: ignore[attr-defined]
        assert patched.func is original  # type: ignore[attr-defined]
    assert _api.load_state_dict_from_url is original
    # The builders call it through the module, so the patch is what they use.
    source = Path(inspect.getsourcefile(torchvision.models._api) or "").read_text()
    assert "load_state_dict_from_url(self.url" in source


def test_pytree_paths_read_as_fxviz_writes_them() -> None:
    leaves, _ = internals.tree_flatten_with_path(({"image": 1}, [2, (3,)]))
    assert [internals.keystr(path) for path, _ in leaves] == ["[0]['image']", "[1][0]", "[1][1][0]"]


def test_argument_names_come_from_op_schemas_and_torch_signatures() -> None:
    assert internals.schema_argument_names(torch.ops.aten.select.int) == ["self", "dim", "index"]
    assert internals.schema_argument_names(torch.flatten) is None
    names = [p.name for p in internals.torch_op_parameters(torch.flatten)]
    assert names[:3] == ["input", "start_dim", "end_dim"]
    assert internals.torch_op_parameters(print) == []


def test_flop_count_reuses_flop_counter_modes_dispatch() -> None:
    # FlopCount drives torch's private _FlopCounterMode with its own counter object.
    model, x = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU()), torch.zeros(3, 4)
    with FlopCounterMode(display=False) as reference:
        model(x)
    with internals.FlopCount() as counted:
        model(x)
    with counted:  # entered again for each node by shape propagation: the total runs on
        torch.matmul(x, torch.zeros(4, 2))
    assert counted.total == reference.get_total_flops() + 2 * 3 * 4 * 2 == 192 + 48


def test_as_exported_tells_the_model_what_torch_export_tells_it() -> None:
    assert not torch.compiler.is_compiling() and not torch.compiler.is_exporting()
    with internals.as_exported():
        assert torch.compiler.is_compiling() and torch.compiler.is_exporting()
    assert not torch.compiler.is_compiling() and not torch.compiler.is_exporting()


def test_weights_on_meta_swaps_every_tensor_for_the_block_and_restores_it() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
    model.tied = torch.nn.Linear(4, 4)
    model.tied.weight = model[0].weight
    model.tied.bias.requires_grad_(False)
    before = dict([*model.named_parameters(), *model.named_buffers()])
    with internals.weights_on_meta(model):
        swapped = dict(model.named_parameters(remove_duplicate=False))
        assert all(t.is_meta for t in [*swapped.values(), *model.buffers()])
        assert swapped["tied.weight"] is swapped["0.weight"]  # tied weights stay tied
        assert not swapped["tied.bias"].requires_grad
        assert model(torch.zeros(2, 4, device="meta")).shape == (2, 4)
    after = dict([*model.named_parameters(), *model.named_buffers()])
    assert after.keys() == before.keys()
    assert all(after[name] is before[name] for name in before)  # the very tensors, on cpu


def test_flop_count_counts_a_mixture_of_experts_grouped_matrix_product() -> None:
    # 32 token rows, each through one of 4 experts' 64 -> 256 matrices: 2·32·64·256.
    rows = torch.zeros(32, 64, device="meta", dtype=torch.bfloat16)
    experts = torch.zeros(4, 64, 256, device="meta", dtype=torch.bfloat16)
    offsets = torch.tensor([8, 16, 24, 32], dtype=torch.int32, device="meta")
    with internals.FlopCount() as counted:
        torch._grouped_mm(rows, experts, offs=offsets)
    assert counted.total == 2 * 32 * 64 * 256


def test_dynamo_records_a_break_on_the_graph_it_ended_and_guard_failures() -> None:
    class Breaks(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.calls += 1
            x = x + 1
            scale = x.sum().item()
            return x * scale

    records: list[internals.BreakRecord | None] = []

    def backend(gm: torch.fx.GraphModule, example_inputs: object) -> object:
        records.append(internals.graph_break_of(gm))
        return gm.forward

    with internals.dynamo_quiet():
        internals.dynamo_reset()
        compiled = torch.compile(Breaks(), backend=backend)
        compiled(torch.ones(2))
        first = len(records)
        assert not internals.guard_failures()
        compiled(torch.ones(2))
        failures = internals.guard_failures()
        internals.dynamo_reset()
    assert first == 2 and records[1] is None  # the last graph ends with its frame
    record = records[0]
    assert record is not None and "item()" in record.reason
    assert record.frames[-1].code == "scale = x.sum().item()"
    assert record.frames[-1].file == __file__
    assert failures and "self.calls" in failures[0]
    assert internals.guard_failures() == []  # reset forgets them


def test_the_allocators_peak_comes_from_the_profilers_memory_events() -> None:
    def step() -> torch.Tensor:
        scratch = torch.zeros(1024, 1024)  # 4 MiB, freed before the 1 MiB result is made
        del scratch
        return torch.zeros(256, 1024)

    assert not internals.profiling()
    result, peak = internals.allocated_peak(step)
    assert result.shape == (256, 1024) and peak == 4 * 1024**2
    with torch.profiler.profile():
        assert internals.profiling()
    ops = internals.scratch_ops()
    assert ops[torch.ops.aten.convolution.default].batch == ((0, 0),)
    assert not ops[torch.ops.aten.convolution.default].resident
