"""Symbolic shapes: each dim an expression of named input dims, checked against real traces.

The central check: for every node of a model drawn with `--symbolic`, its expressions
evaluated at three other input sizes give the shapes a plain trace at those sizes propagates.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sympy
import torch
from torch.utils._sympy.functions import FloorDiv
from typer.testing import CliRunner

import fxviz
from fxviz.cli import app
from fxviz.graph import SCHEMA_VERSION, Graph
from fxviz.loaders import LoadedModel
from fxviz.tracing.symbolic import evaluate, name_dims, readable

REPO = Path(__file__).parents[2]
H, W, L = sympy.symbols("s0 s1 s2", integer=True, positive=True)
NAMES = {H: "H", W: "W", L: "L"}


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        (FloorDiv(H - 1, 2) + 1, "⌈H/2⌉"),  # a 7×7 conv, stride 2, padding 3
        (FloorDiv(FloorDiv(H - 1, 2), 2) + 1, "⌈H/4⌉"),  # then a 3×3 max pool, stride 2
        (FloorDiv(H - 16, 16) + 1, "⌊H/16⌋"),  # a 16×16 patch embedding
        (FloorDiv(H, 2), "⌊H/2⌋"),
        (FloorDiv(H + 1, 3), "⌊(H + 1)/3⌋"),
        (FloorDiv(H, 4) + 5, "⌊H/4⌋ + 5"),
        (12 * L, "L·12"),
        (FloorDiv(4 * L, 2), "L·2"),
        (L + 1, "L + 1"),
        (H * W, "H·W"),
        ((FloorDiv(H - 1, 2) + 1) * (FloorDiv(W - 1, 2) + 1), "⌈H/2⌉·⌈W/2⌉"),
        (sympy.Integer(768), "768"),
        (sympy.Max(L, 4), "max(L, 4)"),
    ],
)
def test_expressions_read_as_people_write_them(expr: sympy.Expr, text: str) -> None:
    assert readable(expr, NAMES) == text
    for h, w, n in ((1, 1, 1), (7, 9, 5), (224, 160, 512), (97, 131, 3)):
        sizes = {H: h, W: w, L: n}
        number = expr.xreplace({s: sympy.Integer(v) for s, v in sizes.items()})
        assert evaluate(text, {"H": h, "W": w, "L": n}) == int(number)


def test_evaluate_refuses_what_is_not_an_expression() -> None:
    with pytest.raises(ValueError, match="not an fxviz shape expression"):
        evaluate("__import__('os')", {})
    with pytest.raises(ValueError, match="not a whole number"):
        evaluate("H/2", {"H": 3})


def test_dims_are_named_by_what_the_inputs_are() -> None:
    image = torch.empty(1, 3, 224, 224)
    tokens = torch.empty(2, 16, dtype=torch.int64)
    named = name_dims([("x", image)])
    assert [(d.name, d.axis, d.size) for d in named] == [("B", 0, 1), ("H", 2, 224), ("W", 3, 224)]
    text = name_dims([("input_ids", tokens), ("decoder_input_ids", tokens[:, :4])])
    assert [(d.name, d.input, d.axis) for d in text] == [
        ("B", "input_ids", 0),
        ("L", "input_ids", 1),
        ("B", "decoder_input_ids", 0),
        ("S", "decoder_input_ids", 1),
    ]
    audio = name_dims([("input_features", torch.empty(1, 80, 3000))])
    assert [(d.name, d.axis) for d in audio] == [("B", 0), ("T", 2)]
    renamed = name_dims([("x", image)], ["N=x.0", "C=x.1"])
    assert {(d.name, d.axis) for d in renamed} == {("N", 0), ("C", 1), ("H", 2), ("W", 3)}


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("N", "write NAME=INPUT.AXIS"),
        ("N=y.0", "no tensor input 'y' (it has x)"),
        ("N=x.7", "x has 4 dims (1×3×224×224); give an axis below 4"),
    ],
)
def test_bad_dims_say_what_to_write(given: str, said: str) -> None:
    with pytest.raises(fxviz.SpecError, match=said.replace("(", r"\(").replace(")", r"\)")):
        name_dims([("x", torch.empty(1, 3, 224, 224))], [given])


# (spec, config, inputs at three other sizes, the sizes by symbol)
MODELS = {
    "resnet18": ("resnet18", [], [(2, 3, 64, 96), (3, 3, 97, 131), (1, 3, 33, 17)]),
    "convnext_tiny": ("convnext_tiny", [], [(2, 3, 64, 96), (1, 3, 97, 131), (3, 3, 224, 32)]),
    "vit_b_16": ("vit_b_16", [], [(2, 3, 224, 224), (3, 3, 224, 224), (5, 3, 224, 224)]),
}
# Models whose inputs are tokens, audio frames or both: (spec, config, sizes to check).
SEQUENCES = {
    "bert": ("hf:bert", ["num_hidden_layers=2"], [{"B": 2, "L": 7}, {"B": 3, "L": 64}]),
    "gpt2": ("hf:gpt2", ["num_hidden_layers=2"], [{"B": 2, "L": 7}, {"B": 1, "L": 100}]),
    "t5": ("hf:t5", ["num_layers=2"], [{"B": 2, "L": 7, "S": 3}, {"B": 3, "L": 40, "S": 9}]),
    "whisper": (
        "hf:whisper",
        ["encoder_layers=2", "decoder_layers=2"],
        [{"B": 2, "T": 3000, "S": 5}, {"B": 3, "T": 3000, "S": 30}],
    ),
    "llama": ("hf:llama", ["num_hidden_layers=2"], [{"B": 2, "L": 7}, {"B": 3, "L": 33}]),
}


def _resized(loaded: LoadedModel, sizes: dict[str, int]) -> LoadedModel:
    """`loaded` with each named input dim at `sizes` (new tensors of the same kinds)."""
    from fxviz.tracing.record import _named_inputs

    named = _named_inputs(loaded.module, loaded.args, loaded.kwargs)
    axes = {(d.input, d.axis): sizes[d.name] for d in name_dims(named)}

    def resized(name: str, value: object) -> object:
        if not isinstance(value, torch.Tensor):
            return value
        shape = [axes.get((name, a), n) for a, n in enumerate(value.shape)]
        if value.is_floating_point():
            return torch.zeros(shape, dtype=value.dtype, device=value.device)
        return torch.ones(shape, dtype=value.dtype, device=value.device)

    assert not loaded.args
    kwargs = {k: resized(k, v) for k, v in loaded.kwargs.items()}
    return replace(loaded, kwargs=kwargs)


def _checked(symbolic: Graph, plain: Graph, sizes: dict[str, int]) -> int:
    """How many tensor values of `plain` the expressions of `symbolic` were checked on."""
    mine = {n.id: n for n in symbolic.nodes}
    checked = 0
    for node in plain.nodes:
        other = mine.get(node.id)
        if other is None:
            continue
        by_path = {v.path: v for v in other.outputs if v.is_tensor and v.expr is not None}
        for value in node.outputs:
            if value.is_tensor and value.path in by_path:
                expr = by_path[value.path].expr
                assert expr is not None
                got = tuple(evaluate(t, sizes) for t in expr)
                assert got == value.shape, f"{node.id}{value.path}: {expr} at {sizes}"
                checked += 1
    return checked


def _tensors(graph: Graph) -> int:
    return sum(v.is_tensor for n in graph.nodes for v in n.outputs)


def _coverage(graph: Graph) -> float:
    tensors = [v for n in graph.nodes for v in n.outputs if v.is_tensor]
    return sum(v.expr is not None for v in tensors) / len(tensors)


@pytest.mark.parametrize("case", sorted(MODELS))
def test_image_models_expressions_give_the_shapes_at_other_sizes(case: str) -> None:
    spec, config, others = MODELS[case]
    graph = fxviz.trace(spec, config=config, symbolic=True)
    assert _coverage(graph) > 0.99
    for shape in others:
        plain = fxviz.trace(spec, ",".join(map(str, shape)), config=config)
        sizes = {"B": shape[0], "H": shape[2], "W": shape[3]}
        assert _checked(graph, plain, sizes) >= 0.99 * _tensors(plain)


@pytest.mark.parametrize("case", sorted(SEQUENCES))
def test_sequence_models_expressions_give_the_shapes_at_other_sizes(case: str) -> None:
    spec, config, others = SEQUENCES[case]
    loaded = fxviz.load(spec, config=config)
    graph = fxviz.trace(loaded, symbolic=True)
    assert _coverage(graph) > 0.99
    base = {d.name: d.size for d in graph.symbolic.dims} if graph.symbolic else {}
    for sizes in [*others, {n: v + 3 for n, v in base.items()} if case != "whisper" else base]:
        plain = fxviz.trace(_resized(loaded, sizes))
        assert _checked(graph, plain, sizes) >= 0.99 * _tensors(plain)


def test_constraints_are_findings_on_the_node_that_needs_them() -> None:
    vit = fxviz.trace("vit_b_16", symbolic=True)
    assert vit.symbolic is not None
    assert [(c.text, c.node) for c in vit.symbolic.constraints] == [("H, W = 224", "conv_proj")]
    # A dim the model fixes does not vary: drawn as its number from the input on.
    assert vit.node("x").outputs[0].expr == ("B", "3", "224", "224")
    bert = fxviz.trace("hf:bert", config=["num_hidden_layers=2"], symbolic=True)
    assert bert.symbolic is not None
    assert [c.text for c in bert.symbolic.constraints] == ["L ≤ 512"]
    assert bert.node(bert.symbolic.constraints[0].node).kind == "constant"  # position ids
    resnet = fxviz.trace("resnet18", symbolic=True)
    assert resnet.symbolic is not None and resnet.symbolic.constraints == ()
    convnext = fxviz.trace("convnext_tiny", symbolic=True)
    assert convnext.symbolic is not None
    assert [c.text for c in convnext.symbolic.constraints] == [
        "H ≥ 32 (⌊H/32⌋ ≥ 1)",
        "W ≥ 32 (⌊W/32⌋ ≥ 1)",
    ]


def test_an_op_that_fixes_a_dim_draws_numbers_and_says_where() -> None:
    graph = fxviz.trace(f"{REPO}/examples/lstm_tagger.py:LSTMTagger", symbolic=True)
    assert graph.symbolic is not None and graph.symbolic.constraints == ()
    assert graph.node("sentence").outputs[0].expr == ("B", "L")
    assert graph.node("embedding").outputs[0].expr == ("B", "L", "32")
    assert graph.node("hidden2tag").outputs[0].expr is None  # after the LSTM: numbers
    assert any("B (at lstm), L (at lstm)" in note for note in graph.notes)


class _ReadsValues(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kept = x[x > 0]
        return kept * 2


def test_a_size_read_from_values_keeps_numbers() -> None:
    graph = fxviz.trace(_ReadsValues(), torch.randn(2, 8), symbolic=True)
    assert graph.node("gt").outputs[0].expr == ("B", "8")
    assert [graph.node(n).outputs[0].expr for n in ("getitem", "mul")] == [None, None]
    assert any("a size at getitem depends on the tensor's values" in n for n in graph.notes)


def test_json_keeps_numbers_and_gains_expressions(tmp_path: Path) -> None:
    graph = fxviz.trace("resnet18", symbolic=True)
    data = json.loads(graph.to_json())
    assert data["schema_version"] == SCHEMA_VERSION
    conv = next(n for n in data["nodes"] if n["id"] == "conv1")
    assert conv["outputs"][0]["shape"] == [1, 64, 112, 112]
    assert conv["outputs"][0]["expr"] == ["B", "64", "⌈H/2⌉", "⌈W/2⌉"]
    assert data["symbolic"]["dims"][0] == {"name": "B", "input": "x", "axis": 0, "size": 1}
    assert Graph.from_json(graph.to_json()) == graph
    old = json.loads(fxviz.trace("resnet18").to_json())
    old["schema_version"] = 1
    assert Graph.from_dict(old).symbolic is None  # a version 1 graph reads as it was


runner = CliRunner()


def test_cli_draws_expressions_and_constraints(tmp_path: Path) -> None:
    out = tmp_path / "vit.dot"
    result = runner.invoke(app, ["vit_b_16", "--symbolic", "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "B×768×14×14" in text  # conv_proj: H and W are fixed, B is not
    assert "needs H, W = 224" in text
    assert "symbols: B = x dim 0 (here 1) · H = x dim 2 (fixed at 224)" in text
    out = tmp_path / "r.dot"
    pages = [tmp_path / "r.mmd", tmp_path / "r.html"]
    args = ["resnet18", "--dim", "N=x.0", "-o", str(out), *(f"-o{p}" for p in pages), "-q"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    for drawn in (out, *pages):
        assert "N×64×⌈H/2⌉×⌈W/2⌉" in drawn.read_text(), drawn.suffix


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["resnet18", "--dim", "N"], "--dim N: write NAME=INPUT.AXIS, such as N=x.0"),
        (["resnet18", "--symbolic", "--show", "memory"], "give one of them"),
    ],
)
def test_cli_bad_symbolic_use_is_one_line(args: list[str], said: str, tmp_path: Path) -> None:
    result = runner.invoke(app, [*args, "-o", str(tmp_path / "x.svg")])
    assert result.exit_code == 2
    assert said in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "x.svg").exists()


def test_lenet_says_what_its_first_linear_layer_needs() -> None:
    graph = fxviz.trace(f"{REPO}/examples/lenet.py:LeNet", symbolic=True)
    assert graph.symbolic is not None
    found = {c.text: c.node for c in graph.symbolic.constraints}
    assert found["(⌊H/4⌋ − 3)·(⌊W/4⌋ − 3)·16 = 400"] == "fc1"
    assert found["H ≥ 16 (⌊H/4⌋ − 3 ≥ 1)"] == "pool2"
    assert graph.node("conv1").outputs[0].expr == ("B", "6", "H − 4", "W − 4")
    dot = graph.to_dot()
    assert "B×6×(H − 4)×(W − 4)" in dot  # a sum is bracketed in a shape
    assert "needs (⌊H/4⌋ − 3)·(⌊W/4⌋ − 3)·16 = 400" in dot


def test_whisper_says_its_encoder_needs_3000_frames() -> None:
    graph = fxviz.trace(
        "hf:whisper", config=["encoder_layers=1", "decoder_layers=1"], symbolic=True
    )
    assert graph.symbolic is not None
    assert [c.text for c in graph.symbolic.constraints] == ["T = 3000"]
    assert [d.name for d in graph.symbolic.dims] == ["B", "T", "S"]


def test_summary_explain_and_diff_read_expressions() -> None:
    spec = f"{REPO}/examples/lenet.py:LeNet"
    result = runner.invoke(app, ["summary", spec, "--symbolic"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "B×6×(H − 4)×(W − 4)" in result.output
    assert "symbols: B = x dim 0 (here 1)" in result.output
    result = runner.invoke(app, ["explain", spec, "--symbolic"])
    assert result.exit_code == 0, result.output
    assert "B×1×H×W → B×6×(H − 4)×(W − 4)  (here 1×1×32×32 → 1×6×28×28)" in result.output
    assert "needs (⌊H/4⌋ − 3)·(⌊W/4⌋ − 3)·16 = 400 (at fc1)" in result.output
    args = ["diff", "hf:bert", "hf:bert", "--config", "num_hidden_layers=1", "--symbolic"]
    more = ["--config-b", "hidden_size=1024", "--config-b", "num_attention_heads=16"]
    result = runner.invoke(app, [*args, *more])
    assert result.exit_code == 1, result.output
    assert "B×L×768 -> B×L×1024" in result.output


def test_a_saved_graph_keeps_its_expressions_and_refuses_to_rerun(tmp_path: Path) -> None:
    import subprocess
    import sys

    saved = tmp_path / "lenet.json"
    done = subprocess.run(
        [sys.executable, "-m", "fxviz", f"{REPO}/examples/lenet.py:LeNet", "--symbolic"]
        + ["-o", str(saved), "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = tmp_path / "again.dot"
    result = runner.invoke(app, [str(saved), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert "B×6×(H − 4)×(W − 4)" in out.read_text()
    result = runner.invoke(app, [str(saved), "--symbolic", "-o", str(tmp_path / "x.svg")])
    assert result.exit_code == 2
    assert "a saved graph holds no model to run with symbolic shapes" in result.output


def test_an_input_with_no_dim_to_name_says_how_to_name_one() -> None:
    graph = fxviz.trace(torch.nn.Linear(8, 4), torch.randn(8), symbolic=True)
    assert graph.symbolic is None
    assert any(
        "no dim of input is one fxviz names; give one (--dim N=input.0)" in n for n in graph.notes
    )
    # Named, the one dim is the Linear layer's features: the model fixes it.
    named = fxviz.trace(torch.nn.Linear(8, 4), torch.randn(8), dims=["N=input.0"])
    assert named.symbolic is not None
    assert [c.text for c in named.symbolic.constraints] == ["N = 8"]
    assert named.node("input").outputs[0].expr == ("8",)


@pytest.mark.parametrize(
    ("spec", "config"),
    [("convnext_tiny", []), ("hf:t5", ["num_layers=2"]), ("hf:bert", ["num_hidden_layers=4"])],
)
def test_blocks_alike_run_once_and_give_what_running_each_gives(
    spec: str, config: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fxviz.tracing import record

    copies: list[tuple[str, str]] = []
    leave = record._Twins.__exit__

    def counted(self: record._Twins, *exc: object) -> None:
        copies.extend((first, twin) for first, twin, _ in self.copies)
        leave(self, *exc)

    monkeypatch.setattr(record._Twins, "__exit__", counted)
    loaded = fxviz.load(spec, config=config)
    once = fxviz.trace(loaded, symbolic=True)
    assert copies  # some blocks did not run
    monkeypatch.setattr(record._Twins, "__enter__", lambda self: self)
    each = fxviz.trace(loaded, symbolic=True)
    assert [n.outputs for n in once.nodes] == [n.outputs for n in each.nodes]
    assert once.symbolic == each.symbolic


def _sizes_and_guards(
    call: Callable[..., torch.Tensor], *shapes: tuple[str | int, ...], hint: int = 0
) -> tuple[list[str], list[str]]:
    """`call` on fake tensors of `shapes` (a str dim is a symbol of that name, `H` sized `hint`
    if given): its output's
    dims as expressions, and the sizes it fixed (its guards that are equalities: the others
    chose the op's path, `B ≠ 1`), each as text."""
    from fxviz.graph import Dim
    from fxviz.loaders.torch_internals import fake_tensors
    from fxviz.tracing.symbolic import make_symbols

    names = sorted({d for shape in shapes for d in shape if isinstance(d, str)})
    # Each symbol's size in this call: 5, 6, …, but H's is `hint` where given.
    sizes = [hint if n == "H" and hint else 5 + i for i, n in enumerate(names)]
    symbols, where = make_symbols([Dim(n, "x", i, sizes[i]) for i, n in enumerate(names)])
    by_name = {n: where[("x", i)] for i, n in enumerate(names)}
    with fake_tensors(symbols.env):
        tensors = [torch.empty([by_name.get(d, d) for d in shape]) for shape in shapes]  # type: ignore[misc]
        out = call(*tensors)
    dims = [symbols.value(d)[1] for d in out.shape]
    fixed = [g.expr for g in symbols.env.guards if isinstance(g.expr, sympy.Eq)]
    return dims, sorted(" = ".join(readable(side, symbols.names) for side in g.args) for g in fixed)


@pytest.mark.parametrize(
    ("op", "shapes", "fixed"),
    [
        (lambda x, w: torch.nn.functional.linear(x, w), [("B", "L", 32), (64, 32)], []),
        (
            lambda x, w, b: torch.nn.functional.linear(x.permute(0, 2, 3, 1), w, b),
            [("B", 32, "H", "W"), (64, 32), (64,)],
            [],
        ),
        (lambda x, w: torch.nn.functional.linear(x, w), [(32,), (64, 32)], []),
        (lambda x, w: torch.nn.functional.linear(x, w), [("B", "H"), (8, 400)], ["H = 400"]),
        (
            lambda q, k, v, m: torch.nn.functional.scaled_dot_product_attention(q, k, v, m),
            [("B", 4, "L", 16), ("B", 4, "S", 16), ("B", 4, "S", 8), ("B", 1, "L", "S")],
            [],
        ),
        (
            lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(q, k, v),
            [("B", "L", 16), (1, "S", 16), (1, "S", 8)],
            [],
        ),
        (
            lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(q, k, v),
            [("B", 4, "L", "H"), ("B", 4, "L", 16), ("B", 4, "L", 16)],
            ["H = 16"],
        ),
        (
            lambda x: torch.nn.functional.layer_norm(x.permute(0, 2, 3, 1), (32,)),
            [("B", 32, "H", "W")],
            [],
        ),
        (
            lambda x, w: torch.nn.functional.layer_norm(x, (6, 32), w),
            [("B", "L", 6, 32), (6, 32)],
            [],
        ),
        (lambda x: torch.nn.functional.layer_norm(x, (768,)), [("B", "L", "H")], ["H = 768"]),
    ],
)
def test_calls_made_by_their_sizes_give_what_the_op_gives(
    op: Callable[..., torch.Tensor], shapes: list[tuple[str | int, ...]], fixed: list[str]
) -> None:
    """A run on symbolic shapes makes linear, attention and layer norm by their sizes alone
    (record._SIZES_ONLY); each gives the op's own dims, and the op's guard where the model
    fixes a size (a features dim fixed to 400, a head dim to 16)."""
    from torch.overrides import TorchFunctionMode

    from fxviz.tracing.record import _SIZES_ONLY

    used: list[bool] = []

    class SizesOnly(TorchFunctionMode):
        def __torch_function__(
            self, func: Any, types: Any, args: Any = (), kwargs: Any = None
        ) -> Any:
            rule = _SIZES_ONLY.get(func)
            used.append(rule is not None)
            return (rule or func)(*args, **(kwargs or {}))

    def by_sizes(*tensors: torch.Tensor) -> torch.Tensor:
        with SizesOnly():
            return op(*tensors)

    hint = int(fixed[0].split(" = ")[1]) if fixed else 0
    dims, guards = _sizes_and_guards(op, *shapes, hint=hint)
    assert guards == fixed
    assert _sizes_and_guards(by_sizes, *shapes, hint=hint) == (dims, fixed)
    assert any(used)  # the op was made by its sizes, not run
