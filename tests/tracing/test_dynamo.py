"""torch.compile's graphs and breaks on the drawn graph, checked against torch._dynamo.explain
on the same models (examples/graph_breaks.py)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
import torch

import fxviz
from fxviz.graph import Graph
from fxviz.loaders.userfile import import_user_file
from fxviz.tracing.dynamo import _recompile, break_words, op_name

EXAMPLES = Path(__file__).parents[2] / "examples" / "graph_breaks.py"


def _examples() -> ModuleType:
    # As fxviz imports a user's file: nothing written beside it (no __pycache__ in examples/).
    return import_user_file(EXAMPLES)


def _line_of(text: str) -> int:
    lines = EXAMPLES.read_text().splitlines()
    return next(k for k, line in enumerate(lines, 1) if text in line)


# Each example's break: its statement (its line is found in the file) and the reason.
BREAKS = {
    "ItemScale": ("scale = x.abs().mean().item()", "x.item(): a Python number from a tensor"),
    "Printing": ('print("features:"', "print(): output from inside the model"),
    "DataDependentIf": ("if x.abs().sum() > 0:", "data-dependent branch"),
    "NumpyMedian": (
        "median = np.nanmedian(",
        "a NumPy call torch.compile cannot trace (np.nanmedian)",
    ),
}


@pytest.fixture(scope="module")
def drawn() -> dict[str, Graph]:
    return {
        name: fxviz.compiled(f"{EXAMPLES}:{name}")
        for name in [*BREAKS, "Clean", "CallCounter", "RepeatedBlocks"]
    }


@pytest.mark.parametrize("name", list(BREAKS))
def test_breaks_match_dynamo_explain_and_fall_at_their_lines(
    name: str, drawn: dict[str, Graph], capsys: pytest.CaptureFixture[str]
) -> None:
    graph = drawn[name]
    model = getattr(_examples(), name)().eval()
    explained = torch._dynamo.explain(model)(torch.randn(1, 3, 32, 32))
    c = graph.compilation
    assert c is not None
    assert len(c.graphs) == explained.graph_count
    assert [g.ops for g in c.graphs] == [
        sum(n.op.startswith("call_") for n in gm.graph.nodes) for gm in explained.graphs
    ]
    assert [b.source.line for b in c.breaks if b.source] == [
        r.user_stack[-1].lineno for r in explained.break_reasons
    ]
    statement, reason = BREAKS[name]
    (found,) = c.breaks
    assert found.source is not None and found.source.file == "graph_breaks.py"
    assert found.source.line == _line_of(statement)
    assert found.reason == reason and found.after == 1
    # Drawn: the stem ran in graph 1, the head in graph 2, and the break falls at a node.
    ids = {n.id: n for n in graph.nodes}
    assert ids["stem_conv"].compiled == (1,) and ids["head_fc"].compiled == (2,)
    assert found.node is not None and ids[found.node].breaks == (0,)
    assert ids[found.node].compiled in ((0,), (2,))


def test_an_item_runs_in_python_at_its_line(drawn: dict[str, Graph]) -> None:
    graph = drawn["ItemScale"]
    item = next(n for n in graph.nodes if n.target == "item")
    assert item.compiled == (0,) and item.breaks == (0,)
    mean = next(n for n in graph.nodes if n.target == "mean")
    assert mean.compiled == (1,)  # on the same line, but captured before the break
    assert any("torch.compile ran on cpu" in note for note in graph.notes)


def test_a_block_whose_compiled_frame_is_reused_takes_its_graphs(
    drawn: dict[str, Graph],
) -> None:
    graph = drawn["RepeatedBlocks"]
    c = graph.compilation
    assert c is not None
    explained = torch._dynamo.explain(_examples().RepeatedBlocks().eval())(
        torch.randn(1, 3, 32, 32)
    )
    assert len(c.graphs) == explained.graph_count and len(c.breaks) == len(explained.break_reasons)
    items = [n for n in graph.nodes if n.target == "item"]
    assert len(items) == 6
    assert items[0].compiled == (0,)  # the first block's `.item()` ran in Python
    # The later blocks ran the graphs compiled for the second: the same numbers each time.
    later = {n.compiled for n in items[1:]}
    assert len(later) == 1 and 0 not in next(iter(later))
    convs = [n for n in graph.nodes if n.target.startswith("blocks.") and n.kind == "module"]
    assert len({n.compiled for n in convs[1:]}) == 1
    # Each break is drawn at its own node.
    assert len({b.node for b in c.breaks}) == len(c.breaks)


def test_a_clean_model_is_one_graph_with_every_op_in_it(drawn: dict[str, Graph]) -> None:
    graph = drawn["Clean"]
    assert graph.compilation is not None
    assert len(graph.compilation.graphs) == 1 and not graph.compilation.breaks
    ops = [n for n in graph.nodes if n.kind in ("module", "function", "method")]
    assert ops and all(n.compiled == (1,) for n in ops)
    assert graph.compilation.flops == graph.totals.flops
    assert not any("cpu" in note for note in graph.notes)  # captured on meta


def test_a_python_counter_recompiles_with_its_guard_and_line(drawn: dict[str, Graph]) -> None:
    c = drawn["CallCounter"].compilation
    assert c is not None and not c.breaks
    (recompile,) = c.recompiles
    assert "self.calls" in recompile.guard
    assert recompile.source is not None and recompile.source.line == _line_of("self.calls += 1")
    assert "make it a tensor" in recompile.reason


def test_resnet18_compiles_into_one_graph_on_meta() -> None:
    graph = fxviz.compiled("resnet18")
    c = graph.compilation
    assert c is not None and len(c.graphs) == 1 and not c.breaks and not c.recompiles
    assert graph.device == "meta"
    modules = [n for n in graph.nodes if n.kind == "module"]
    assert len(modules) > 50 and all(n.compiled == (1,) for n in modules)
    assert c.flops == graph.totals.flops


def test_gpt2_compiles_into_one_graph() -> None:
    graph = fxviz.compiled("hf:gpt2", layers=2)
    assert graph.compilation is not None
    assert len(graph.compilation.graphs) == 1 and not graph.compilation.breaks


def test_a_model_given_on_meta_that_needs_values_says_what_to_do() -> None:
    with torch.device("meta"):
        model = _examples().ItemScale()
    with pytest.raises(
        fxviz.CompileError, match="on meta tensors .*give the model and its inputs on cpu"
    ):
        fxviz.compiled(model, torch.randn(1, 3, 32, 32, device="meta"))


def test_a_module_object_on_cpu_compiles() -> None:
    graph = fxviz.compiled(_examples().ItemScale(), torch.randn(1, 3, 32, 32))
    assert graph.compilation is not None and len(graph.compilation.breaks) == 1


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        (
            "Unsupported Tensor.item() call with capture_scalar_outputs=False",
            "x.item(): a Python number from a tensor",
        ),
        (
            "Failed to trace builtin operator\n  Explanation: Dynamo does not know how to trace "
            "builtin operator `print`",
            "print(): output from inside the model",
        ),
        ("generic_jump TensorVariable()", "data-dependent branch"),
        ("Data-dependent branching\n  Explanation: …", "data-dependent branch"),
        (
            "Dynamic shape operator\n  Explanation: Operator `aten.nonzero.default`'s output "
            "shape depends on input Tensor data.",
            "an op whose output shape depends on the data (nonzero)",
        ),
        (
            "Data dependent operator\n  Explanation: Operator "
            "`aten._local_scalar_dense.default` has a non-Tensor output",
            "a Python number from a tensor",
        ),
        (
            "attempted to trace numpy function unsupported by PyTorch\n  Explanation: Can't "
            "find numpy numpy function <function interp at 0x7f> in torch._numpy.",
            "a NumPy call torch.compile cannot trace (np.interp)",
        ),
        ("Something torch never said before", "Something torch never said before"),
    ],
)
def test_break_reasons_in_a_readers_words(reason: str, words: str) -> None:
    assert break_words(reason)[0] == words
    assert break_words(reason)[1].startswith(reason.splitlines()[0][:40])


def test_a_guard_failure_is_read_into_guard_reason_and_line() -> None:
    text = (
        "0/0: self.calls == 1                                             # self.calls += 1  "
        "# mp/x/net.py:10 in forward (HINT: torch.compile considers integer attributes of the "
        'nn.Module to be static.)\nUser stack trace:\n  File "/tmp/x/net.py", line 10, in '
        "forward\n    self.calls += 1"
    )
    found = _recompile(text)
    assert found.guard == "self.calls == 1"
    assert found.source is not None and (found.source.file, found.source.line) == ("net.py", 10)
    assert found.source.code == "self.calls += 1"


@pytest.mark.parametrize(
    ("target", "name"),
    [
        ("operator.iadd", "add"),
        ("torch.add", "add"),
        ("add_", "add"),
        ("aten.add.Tensor", "add"),
        ("torch.flatten", "flatten"),
        ("torch.nn.functional.relu", "relu"),
        ("mean", "mean"),
    ],
)
def test_op_names_match_across_tracers(target: str, name: str) -> None:
    assert op_name(target) == name


def test_a_detection_model_reports_its_breaks_by_reason() -> None:
    from fxviz import compile_report

    graph = fxviz.compiled("fasterrcnn_mobilenet_v3_large_320_fpn")
    c = graph.compilation
    assert c is not None and len(c.breaks) >= 5 and len(c.graphs) > len(c.breaks)
    reasons = dict(compile_report.by_reason(c.breaks))
    assert any(r.startswith("an op whose output shape depends on the data") for r in reasons)
    assert "x.item(): a Python number from a tensor" in reasons
    assert all(b.source is not None and b.source.file.startswith("torchvision/") for b in c.breaks)
    # Each break is drawn at a node of the module it broke in (none left at the output).
    ids = {n.id: n for n in graph.nodes}
    assert all(b.node is not None and ids[b.node].kind != "output" for b in c.breaks)
    table = compile_report.to_table(graph)
    assert "graph breaks by reason:" in table and "torchvision/ops/boxes.py:" in table
