"""One tracer contract: fx, torch.export and a recorded run give the same module-level graph.

For a model two tracers can both follow, their Graphs agree at module level: the same module
calls with the same ids, classes and output values (shapes, dtypes, the whole result of each
call), the same edges between module calls, inputs and constants, the same totals, and
`fxviz diff` finds nothing.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import cases
import pytest
import torch

import fxviz
from fxviz.diff import format_report
from fxviz.graph import Graph
from fxviz.tracing.annotate import fx_nodes

REPO = Path(__file__).parent.parent.parent

# fx cannot follow GPT-2 (transformers builds kwargs dicts from proxies): export and record.
MODELS = {
    "resnet18": ("resnet18", [], ("fx", "export", "record")),
    "mobilenet_v3_small": ("mobilenet_v3_small", [], ("fx", "export", "record")),
    "vit_b_16": ("vit_b_16", [], ("fx", "export", "record")),
    "convnext_tiny": ("convnext_tiny", [], ("fx", "export", "record")),
    "swin_t": ("swin_t", [], ("fx", "export", "record")),
    "gpt2": ("hf:gpt2", ["num_hidden_layers=2"], ("export", "record")),
    "tiny": (f"{REPO}/examples/tiny.py:TinyNet", [], ("fx", "export", "record")),
    "lenet": (f"{REPO}/examples/lenet.py:LeNet", [], ("fx", "export", "record")),
    "lstm_tagger": (f"{REPO}/examples/lstm_tagger.py:LSTMTagger", [], ("fx", "export", "record")),
    "refactor_before": (f"{REPO}/examples/refactor_before.py:Net", [], ("fx", "export", "record")),
    "refactor_after": (f"{REPO}/examples/refactor_after.py:Net", [], ("fx", "export", "record")),
}


def module_calls(graph: Graph) -> list[tuple[str, str, str | None, tuple[object, ...]]]:
    return [
        (n.id, n.target, n.module_class, tuple((v.path, v.shape, v.dtype) for v in n.outputs))
        for n in graph.nodes
        if n.kind == "module"
    ]


def module_edges(graph: Graph) -> set[tuple[str, str]]:
    """Edges between module calls, inputs, constants and the output, through any functions."""
    reaches: dict[str, set[str]] = {}
    edges: set[tuple[str, str]] = set()
    for node in graph.nodes:
        found: set[str] = set()
        for source in map(graph.node, node.inputs):
            if source.kind in ("module", "input", "constant"):
                found.add(f"{source.kind}:{source.target}")
            else:
                found |= reaches[source.id]
        reaches[node.id] = found
        if node.kind in ("module", "output"):
            edges |= {(s, f"{node.kind}:{node.target}") for s in found}
    return edges


@pytest.mark.parametrize("model", MODELS)
def test_tracers_agree_at_module_level(model: str) -> None:
    spec, config, tracers = MODELS[model]
    graphs = {tracer: fxviz.trace(spec, tracer=tracer, config=config) for tracer in tracers}
    assert {g.tracer for g in graphs.values()} == set(tracers)
    for (name_a, a), (name_b, b) in combinations(graphs.items(), 2):
        pair = f"{model}: {name_a} vs {name_b}"
        assert module_calls(a) == module_calls(b), pair
        assert module_edges(a) == module_edges(b), pair
        assert (a.totals, a.modules) == (b.totals, b.modules), pair
        result = fxviz.diff(a, b)
        assert result.identical, f"{pair}\n{format_report(result)}"


def test_gpt2_is_beyond_fx() -> None:
    """The one exception above is real: fx cannot follow GPT-2, so it is not compared."""
    with pytest.raises(fxviz.TraceError, match="torch.fx cannot trace GPT2Model"):
        fxviz.trace("hf:gpt2", tracer="fx", config=["num_hidden_layers=2"])


def test_a_module_call_shows_its_whole_result_under_every_tracer() -> None:
    """`out, _ = self.lstm(x)`: export's graph keeps only `out`, the call node shows (h, c)."""
    spec = f"{REPO}/examples/lstm_tagger.py:LSTMTagger"
    for tracer in ("fx", "export", "record"):
        lstm = fxviz.trace(spec, tracer=tracer).node("lstm")
        assert [(v.path, v.shape) for v in lstm.outputs] == [
            ("[0]", (1, 12, 64)),
            ("[1][0]", (1, 1, 64)),
            ("[1][1]", (1, 1, 64)),
        ], tracer


def test_shape_arithmetic_is_shown_as_numbers_not_drawn_as_data() -> None:
    """ViT's `n = x.shape[0]` sizes the class token: fx no longer draws an edge from the input
    into the token (export and a recorded run never saw one); the expand shows the number."""
    for tracer in ("fx", "export", "record"):
        graph = fxviz.trace("vit_b_16", tracer=tracer)
        assert not any(n.target == "getattr" for n in graph.nodes), tracer
        assert ("input:x", "module:encoder.dropout") not in module_edges(graph), tracer
    expand = next(n for n in fxviz.trace("vit_b_16").nodes if n.target == "expand")
    assert expand.inputs == ("class_token",) and expand.arguments == "size=[1, -1, -1]"


def by_tracer(model: torch.nn.Module, args: tuple[object, ...]) -> dict[str, Graph]:
    """The model traced by every tracer that can follow it, and by auto."""
    graphs = {"auto": fxviz.trace(model, args)}
    for tracer in ("fx", "export", "record"):
        try:
            graphs[tracer] = fxviz.trace(model, args, tracer=tracer)
        except fxviz.TraceError:
            assert tracer == "fx", f"{type(model).__name__}: {tracer} failed"
    return graphs


def test_a_dict_in_and_a_dict_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """fx cannot loop over the dict; a recorded run and export (which flattens it into one
    placeholder per tensor) both draw one input, `batch`, read by both encoders."""
    loaded = fxviz.load(f"{REPO}/examples/multimodal.py:MultiModal")
    graphs = {t: fxviz.trace(loaded, tracer=t) for t in ("auto", "export", "record")}
    assert graphs["auto"].tracer == "record"
    for tracer, graph in graphs.items():
        (batch,) = graph.inputs
        assert batch.id == "batch" and [v.path for v in batch.outputs] == [
            "['image']",
            "['tokens']",
        ], tracer
        assert module_edges(graph) >= {
            ("input:batch", "module:encoders.image.0"),
            ("input:batch", "module:encoders.tokens"),
            ("module:head", "output:output"),
            ("module:encoders.image.2", "output:output"),
        }, tracer
        output = graph.outputs[0].outputs
        assert [(v.path, v.shape) for v in output] == [
            ("['logits']", (1, 5)),
            ("['image_features']", (1, 16)),
        ], tracer
    for a, b in combinations(graphs.values(), 2):
        assert module_calls(a) == module_calls(b) and module_edges(a) == module_edges(b)


def test_lists_and_nested_tuples_in() -> None:
    graphs = by_tracer(cases.Nested(), cases.INPUTS["Nested"])
    assert set(graphs) == {"auto", "fx", "export", "record"}
    for tracer, graph in graphs.items():
        xs, pair = graph.inputs
        assert [v.path for v in xs.outputs] == ["[0]", "[1]"], tracer
        assert [v.path for v in pair.outputs] == ["[0]", "[1][0]", "[1][1]"], tracer
        assert module_edges(graph) == {
            ("input:xs", "module:fc"),
            ("module:fc", "output:output"),
            ("input:pair", "output:output"),
        }, tracer
        assert [n.id for n in graph.nodes if n.kind == "module"] == ["fc", "fc_1"], tracer


def test_a_reader_after_an_in_place_op_reads_the_mutation() -> None:
    """`x.relu_()` then `self.fc2(x)`: fc2 reads the ReLU's result, never fc's directly."""
    for tracer, graph in by_tracer(cases.InPlace(), cases.INPUTS["InPlace"]).items():
        (relu,) = [n for n in graph.nodes if n.target.rpartition(".")[2] in ("relu_", "relu")]
        assert relu.inputs == ("fc",), tracer
        assert graph.node("fc2").inputs == (relu.id,), tracer


def test_a_module_under_two_names_is_one_module() -> None:
    """`self.head = self.proj`: both calls are `proj`'s, its parameters drawn once."""
    for tracer, graph in by_tracer(cases.TwoPaths(), cases.INPUTS["TwoPaths"]).items():
        calls = [(n.id, n.target, n.params.total) for n in graph.nodes if n.kind == "module"]
        assert calls == [("proj", "proj", 20), ("proj_1", "proj", 0)], tracer
        assert not any(n.kind == "constant" for n in graph.nodes), tracer
        assert [m.path for m in graph.modules] == ["", "proj"], tracer


def test_a_tied_weight_is_counted_once_at_its_first_owner() -> None:
    for tracer, graph in by_tracer(cases.Tied(), cases.INPUTS["Tied"]).items():
        params = {n.target: n.params.total for n in graph.nodes if n.kind == "module"}
        assert params == {"embed": 40, "body": 20, "lm_head": 0}, tracer
        assert not any(n.kind == "constant" for n in graph.nodes), tracer
        assert graph.totals.params.total == 60 == sum(params.values())
        assert {m.path: m.params.total for m in graph.modules}["lm_head"] == 0, tracer


@pytest.mark.parametrize(
    ("tracer", "name"),
    [
        ("fx", "fxviz.tracing.fx.own_code"),  # source lookup, inside fx's tracer
        ("record", "fxviz.tracing.fx.own_code"),  # the same, inside the recorder
        ("export", "fxviz.tracing.export.summarize"),  # the hooks that run inside export
    ],
)
def test_a_bug_in_fxviz_is_never_taken_for_a_model_a_tracer_cannot_follow(
    monkeypatch: pytest.MonkeyPatch, tracer: str, name: str
) -> None:
    """Only the model's and torch's failures make auto try the next tracer; a bug in fxviz's
    own code that runs inside a trace surfaces as it is, not as "cannot trace"."""
    monkeypatch.setattr(name, None)  # calling it fails inside fxviz's own frame
    model = cases.InPlace()
    with pytest.raises(TypeError, match="'NoneType' object is not callable"):
        fxviz.trace(model, cases.INPUTS["InPlace"], tracer=tracer)
    if tracer == "fx":
        with pytest.raises(TypeError, match="'NoneType' object is not callable"):
            fxviz.trace(model, cases.INPUTS["InPlace"])


def test_t5s_shared_embedding_belongs_to_shared() -> None:
    """T5 ties `shared`, `encoder.embed_tokens` and `decoder.embed_tokens`: the weight is
    `shared`'s, both embedding calls read it inside their boxes, no stray weight node."""
    small = ["num_layers=1", "num_decoder_layers=1", "d_model=32", "d_kv=8", "d_ff=64"]
    graph = fxviz.trace("hf:t5", config=[*small, "num_heads=4", "vocab_size=100"])
    tree = {m.path: m.params.total for m in graph.modules}
    assert tree["shared"] == 100 * 32
    assert tree["encoder.embed_tokens"] == tree["decoder.embed_tokens"] == 0
    assert not any(n.kind == "constant" and "embed" in n.target for n in graph.nodes)
    embeddings = [n for n in graph.nodes if n.module_class == "Embedding"]
    assert {n.target for n in embeddings} >= {"encoder.embed_tokens", "decoder.embed_tokens"}


def test_every_tracer_hands_the_one_converter_a_module_level_fx_graph() -> None:
    """The contract: export's ATen graph is lifted to an fx graph of `call_module` nodes, the
    recorder appends to one as the model runs, and `fx_nodes` converts all of them."""
    from fxviz.tracing.export import argument_leaves, export_module, lift_export_graph
    from fxviz.tracing.shapes import ShapePropagation

    model, args = cases.Tied(), cases.INPUTS["Tied"]
    exported = export_module(model, args, {})
    gm = exported.program.module()
    ShapePropagation(gm, "cpu", exported.program.call_spec.in_spec).propagate(args, {})
    arguments = argument_leaves(model, args, {}, exported.program.call_spec.in_spec)
    lifted = lift_export_graph(gm, model, (), (), exported.call_outputs, arguments)
    assert [(n.op, str(n.target)) for n in lifted.nodes] == [
        ("placeholder", "ids"),
        ("call_module", "embed"),
        ("call_module", "body"),
        ("call_module", "lm_head"),
        ("output", "output"),
    ]
    fx_graph = fxviz.trace(model, args, tracer="fx")
    converted = fx_nodes(lifted, model)
    assert [(n.id, n.kind, n.target, n.inputs) for n in converted] == [
        (n.id, n.kind, n.target, n.inputs) for n in fx_graph.nodes
    ]


class MadeConstant(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * torch.tensor([1.0, 2.0])


def test_a_constant_export_makes_is_counted_from_the_exported_graph() -> None:
    """Export lifts `torch.tensor([1.0, 2.0])` into a constant the model has no attribute
    for (RAFT, GPT-Neo): the lifted graph counts it from the program, not from the model."""
    graph = fxviz.trace(MadeConstant(), torch.zeros(1, 2), tracer="export")
    (constant,) = [n for n in graph.nodes if n.kind == "constant"]
    assert constant.target == "torch.tensor([1.0, 2.0])" and constant.buffers == 2
