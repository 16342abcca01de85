"""Views: folding repeated blocks and collapsing depth, on small models and real ones."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from handmade import lines_graph, tensor
from torch import nn

import fxviz
import fxviz.drawing
from fxviz.drawing import DrawOptions
from fxviz.graph import Graph, Node, ParamCount
from fxviz.views import (
    apply_views,
    box_leaf_modules,
    collapse,
    fold_repeats,
    fold_steps,
    group_lines,
    signatures,
)
from fxviz.views.contract import topological

REPO = Path(__file__).parent.parent


class Block(nn.Module):
    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(x)) + x


class Stack(nn.Module):
    def __init__(self, depth: int = 4, odd_one: bool = False) -> None:
        super().__init__()
        self.stem = nn.Linear(4, 8)
        blocks = [Block() for _ in range(depth)]
        if odd_one:
            blocks[2] = Block()
            blocks[2].fc = nn.Linear(8, 8, bias=False)
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


def trace(model: nn.Module, width: int = 4) -> Graph:
    return fxviz.trace(model, torch.zeros(1, width))


def test_fold_keeps_one_block_and_labels_the_count() -> None:
    g = fold_repeats(trace(Stack(4)))
    folded = {m.path: (m.class_name, m.repeat) for m in g.modules}
    assert folded["blocks.0–3"] == ("Block", 4)
    assert [n.target for n in g.nodes if n.kind == "module"] == ["stem", "blocks.0–3.fc", "head"]
    head = next(n for n in g.nodes if n.target == "head")
    assert head.inputs == ("add",)  # reads the kept block's output
    assert Graph.from_json(g.to_json()) == g  # still a valid graph


def test_fold_needs_three_identical_blocks_by_default() -> None:
    g = trace(Stack(2))
    assert fold_repeats(g) == g
    assert "blocks.0–1" in {m.path for m in fold_repeats(g, min_repeat=2).modules}


def test_a_different_block_breaks_the_run() -> None:
    g = fold_repeats(trace(Stack(6, odd_one=True)), min_repeat=2)
    assert {m.path for m in g.modules if m.repeat > 1} == {"blocks.0–1", "blocks.3–5"}
    assert "blocks.2.fc" in {n.target for n in g.nodes}


def test_signature_ignores_names() -> None:
    found = signatures(trace(Stack(4)))
    assert (
        found["blocks.0"]
        == found["blocks.3"]
        == "Block(|72)[Linear(in_features=8, out_features=8|72)[]]"
    )
    assert found["blocks.0"] != found["stem"]


def test_collapse_to_one_node_per_module() -> None:
    g = collapse(trace(Stack(3)), 1)
    modules = [(n.target, n.module_class) for n in g.nodes if n.kind == "module"]
    assert modules == [("stem", "Linear"), ("blocks", "Sequential"), ("head", "Linear")]
    blocks = next(n for n in g.nodes if n.target == "blocks")
    assert blocks.params.total == 3 * 72 and blocks.outputs[0].shape == (1, 8)
    assert blocks.inputs == ("stem",) and blocks.flops == 3 * (2 * 8 * 8)
    assert Graph.from_json(g.to_json()) == g


def test_collapse_takes_functions_in_the_scope_too() -> None:
    g = collapse(trace(Stack(3)), 2)
    assert [n.target for n in g.nodes if n.kind == "module"] == [
        "stem",
        "blocks.0",
        "blocks.1",
        "blocks.2",
        "head",
    ]
    assert not any(n.target == "operator.add" for n in g.nodes)


def test_collapse_rejects_depth_zero() -> None:
    with pytest.raises(ValueError):
        collapse(trace(Stack(3)), 0)


class RMSNorm(nn.Module):
    """A norm written by hand: no submodules, five ops, its own weight."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        variance = x.pow(2).mean(-1, keepdim=True)
        return self.weight * x * torch.rsqrt(variance + 1e-6)


def rotate(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Mixer(nn.Module):
    """One norm called twice; a helper function; a line with a module call in its middle."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = RMSNorm()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(x)
        y = rotate(y) * 2 + y
        z = torch.tanh(self.fc(y.view(1, 8)))
        return self.norm(z)


def test_leaf_boxes_and_line_groups_on_a_hand_built_graph() -> None:
    g = lines_graph()
    grouped = group_lines(g)
    (line,) = [n for n in grouped.nodes if n.arguments.startswith("2 ops")]
    assert (line.id, line.kind, line.target, line.scope) == ("pow_1", "line", "norm.py:11", "norm")
    assert 'label="x.pow(2).mean(-1, keepdim=True)\\n' in grouped.to_dot(views=False)
    assert line.arguments == "2 ops: .pow() ×1, .mean()".replace(" ×1", "")
    assert line.flops == 8 and line.outputs == (tensor(1, 1),) and line.inputs == ("tanh",)
    assert {"view", "tanh"} <= {n.id for n in grouped.nodes}  # a module call sits between
    assert grouped.node("mul").inputs == ("norm_weight", "tanh", "pow_1")

    boxed = box_leaf_modules(g)
    assert [n.id for n in boxed.nodes] == ["x", "view", "fc", "tanh", "norm", "output"]
    norm = boxed.node("norm")
    assert (norm.kind, norm.module_class, norm.params) == ("module", "RMSNorm", ParamCount(8, 0))
    assert (
        norm.inputs == ("tanh",) and norm.flops == 24 and boxed.node("output").inputs == ("norm",)
    )
    assert apply_views(g) == apply_views(boxed)  # nothing left to group once the norm is boxed


def test_a_module_without_submodules_is_one_box_per_call() -> None:
    g = trace(Mixer(), 8)
    boxed = box_leaf_modules(g)
    norms = [n for n in boxed.nodes if n.target == "norm"]
    assert [(n.id, n.kind, n.module_class) for n in norms] == [
        ("norm", "module", "RMSNorm"),
        ("norm_1", "module", "RMSNorm"),
    ]
    assert all(n.outputs[0].shape == (1, 8) for n in norms)
    # Its parameters are drawn once, on the first call, as traced module calls are.
    assert [n.params.total for n in norms] == [8, 0]
    # Both calls read the one weight, so it stays drawn, feeding both.
    assert norms[0].inputs == ("x", "norm_weight") and "norm_weight" in norms[1].inputs
    assert [n.id for n in boxed.nodes if n.scope == "norm"] == ["norm_weight"]
    assert boxed.nodes[-1].inputs == ("norm_1",)
    assert box_leaf_modules(g, expand=("RMSNorm",)) == g
    assert box_leaf_modules(boxed) == boxed


def test_a_source_lines_ops_are_one_node() -> None:
    g = trace(Mixer(), 8)
    grouped = group_lines(g)
    line = next(n for n in grouped.nodes if n.source and "rotate" in n.source.code)
    assert line.kind == "line" and line.source is not None
    assert 'label="rotate(y) * 2 + y\\n' in grouped.to_dot(views=False)
    # `x.shape[-1] // 2` in the helper is shape arithmetic: the slices show its number (4).
    assert line.arguments == "6 ops: getitem ×2, neg, cat, mul, add"
    assert line.outputs[0].shape == (1, 8)
    # `torch.tanh(self.fc(y.view(1, 8)))`: the view and the tanh sit on either side of the
    # module call, so grouping them would make a cycle; they stay apart.
    fc = next(n for n in grouped.nodes if n.target == "fc")
    view = grouped.node(fc.inputs[0])
    assert view.target == "view" and any(n.target == "torch.tanh" for n in grouped.nodes)
    assert _acyclic(grouped)
    assert group_lines(g, expand=("RMSNorm", "Mixer")) == g


def test_every_op_draws_the_traced_graph() -> None:
    g = trace(Mixer(), 8)
    assert apply_views(g, every_op=True) == g
    assert len(apply_views(g).nodes) < len(g.nodes)


def _acyclic(graph: Graph) -> bool:
    seen: set[str] = set()
    for node in graph.nodes:
        if not set(node.inputs) <= seen:
            return False
        seen.add(node.id)
    return True


def test_llama_helper_lines_are_grouped_where_they_are_called() -> None:
    """The ops run inside `apply_rotary_pos_emb` and `create_causal_mask` (itself called
    through transformers' decorator on `forward`) are sourced to the line in the module's own
    forward, so each call is one node, whichever tracer drew it."""
    g = fxviz.trace("hf:llama", config=["num_hidden_layers=1", *SMALL_LLAMA])
    neg = {"record": "operator.neg", "export": "aten.neg"}[g.tracer]
    rope = [n for n in g.nodes if n.scope == "layers.0.self_attn" and n.target == neg]
    assert rope and all(
        n.source is not None and "apply_rotary_pos_emb(" in n.source.code for n in rope
    )
    drawn = apply_views(g)
    dot = g.to_dot()
    assert 'label="apply_rotary_pos_emb(query_states, key_states, cos, sin)\\n' in dot
    assert 'label="create_causal_mask(…)\\n' in dot
    classes = {n.module_class for n in drawn.nodes if n.kind == "module"}
    assert {"LlamaRMSNorm", "LlamaRotaryEmbedding"} <= classes
    assert not any(n.kind == "constant" for n in drawn.nodes)  # norm weights, inv_freq inside
    assert _acyclic(drawn)
    opened = apply_views(g, expand=("LlamaRMSNorm",))
    assert {"record": "torch.rsqrt", "export": "aten.rsqrt"}[g.tracer] in {
        n.target for n in opened.nodes
    }
    small = ["num_hidden_layers=1", *SMALL_LLAMA]
    exported = fxviz.trace("hf:llama", config=small, tracer="export")
    assert 'label="create_causal_mask(…)\\n' in exported.to_dot()


def test_bert_base_folds_its_twelve_layers() -> None:
    g = fxviz.trace("hf:bert")
    drawn = apply_views(g)
    assert len(g.nodes) > 300 and len(drawn.nodes) <= 60
    folded = drawn.module("encoder.layer.0–11")
    assert folded is not None and (folded.class_name, folded.repeat) == ("BertLayer", 12)
    assert 'label="encoder.layer.0–11: BertLayer ×12"' in g.to_dot()
    assert len(apply_views(g, depth=2).nodes) < len(drawn.nodes)
    assert len(apply_views(g, every_op=True).nodes) > len(drawn.nodes)


def test_resnet50_keeps_its_four_stages_as_clusters() -> None:
    folded = apply_views(fxviz.trace("resnet50"))
    stages = {m.path.split(".")[0] for m in folded.modules if m.path.startswith("layer")}
    assert stages == {"layer1", "layer2", "layer3", "layer4"}
    assert {m.path: m.repeat for m in folded.modules}["layer3.1–5"] == 5
    dot = fxviz.trace("resnet50").to_dot()
    assert 'label="layer3.1–5: Bottleneck ×5"' in dot


def test_folded_bert_golden(golden) -> None:  # type: ignore[no-untyped-def]
    g = fxviz.trace("hf:bert", config=["num_hidden_layers=3"])
    golden("views/bert-3-layers-folded.dot", g.to_dot())


SMALL_LLAMA = [
    "hidden_size=64",
    "intermediate_size=128",
    "num_attention_heads=4",
    "num_key_value_heads=2",
    "vocab_size=100",
]


def test_llama_drawing_does_not_grow_with_its_layer_count() -> None:
    """Per-layer norm weights (get_attr constants) belong to their layer and fold with it.
    Llama-3-70B's real widths are drawn by benchmarks/llama_meta.py; the picture is the same."""
    small = SMALL_LLAMA
    traced = [fxviz.trace("hf:llama", config=[f"num_hidden_layers={n}", *small]) for n in (3, 8)]
    drawn = [apply_views(g) for g in traced]
    assert len(drawn[0].nodes) == len(drawn[1].nodes) <= 40
    assert "layers.0–7: LlamaDecoderLayer ×8" in traced[1].to_dot()
    graph = fxviz.trace("hf:llama", config=["num_hidden_layers=8", *small])
    weight = next(n for n in graph.nodes if n.target == "layers.5.input_layernorm.weight")
    assert weight.kind == "constant" and weight.scope == "layers.5.input_layernorm"


def test_a_collapsed_folded_run_counts_every_block() -> None:
    g = trace(Stack(4))
    drawn = apply_views(g, depth=2)
    (blocks,) = [n for n in drawn.nodes if n.target == "blocks.0–3"]
    assert blocks.module_class == "Block"
    assert blocks.params.total == 4 * 72 and blocks.flops == 4 * (2 * 8 * 8)
    assert blocks.flops == sum(n.flops for n in g.nodes if n.scope.startswith("blocks"))
    label = next(line for line in g.to_dot(depth=2).splitlines() if "blocks_0_3 [" in line)
    assert "blocks.0–3 · Block ×4" in label
    assert "in 1×8\\nout 1×8\\n288 params · 512 FLOPs" in label
    (outer,) = [n for n in apply_views(g, depth=1).nodes if n.target == "blocks"]
    assert outer.flops == blocks.flops and outer.params == blocks.params


def test_numbered_names_fold_in_number_order() -> None:
    """ViT names its blocks `encoder_layer_0` … `encoder_layer_11`: in name order 10 and 11
    would come before 2 and split the run. Numbers inside names count as numbers."""
    drawn = apply_views(fxviz.trace("vit_b_16"))
    folded = [(m.path, m.repeat) for m in drawn.modules if m.repeat > 1]
    assert folded == [("encoder.layers.encoder_layer_0–encoder_layer_11", 12)]
    assert len(drawn.nodes) <= 30


def test_values_nothing_reads_are_not_drawn() -> None:
    """Each attention call's unused `[1]` (the weights it returns as None) is left out; the
    traced graph keeps it, and --all-ops draws it."""
    g = fxviz.trace("vit_b_16")
    unread = [n for n in g.nodes if n.target == "getitem" and n.arguments == "1"]
    assert len(unread) == 12
    drawn = apply_views(g, fold=False)
    assert not any(n.target == "getitem" and n.arguments == "1" for n in drawn.nodes)
    assert len([n for n in apply_views(g, fold=False, every_op=True).nodes if n in unread]) == 12


def test_an_index_reads_as_python_writes_it() -> None:
    head = [n for n in fxviz.trace("vit_b_16").nodes if n.target == "getitem"][-1]
    assert head.arguments == ":, 0"
    assert 'label="[:, 0]\\n1×768"' in fxviz.trace("vit_b_16").to_dot()


def test_pictures_keep_the_order_the_model_ran_in_and_late_inputs_stack() -> None:
    class Towers(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Linear(4, 4))
            self.decoder = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))

        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            memory = self.encoder(x)
            return self.decoder(y) + memory

    graph = fxviz.trace(Towers(), (torch.zeros(1, 4), torch.zeros(1, 4)))
    assert "encoder -> y [style=invis]" in graph.to_dot(depth=1)  # y is read after the encoder
    # Contraction re-sorts its nodes: only a node placed before its inputs may move.
    nodes = [
        Node("x", "input", "x"),
        Node("y", "input", "y"),
        Node("e2", "function", "f", inputs=("e1",)),  # a group placed before its input
        Node("e1", "function", "f", inputs=("x",)),
        Node("e3", "function", "f", inputs=("e2",)),
        Node("d1", "function", "f", inputs=("y",)),
        Node("out", "output", "output", inputs=("e3", "d1")),
    ]
    order = [n.id for n in topological(nodes)]
    assert order == ["x", "y", "e1", "e2", "e3", "d1", "out"]  # d1 stays after the encoder


class CellLoop(nn.Module):
    """A recurrent loop written by hand: one LSTMCell called once per time step."""

    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.LSTMCell(4, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = c = x.new_zeros(x.shape[0], 8)
        outs = []
        for t in range(x.shape[1]):
            h, c = self.cell(x[:, t], (h, c))
            outs.append(h)
        return self.head(torch.stack(outs, 1))


def test_a_loop_of_steps_is_drawn_once_with_its_count() -> None:
    graph = fxviz.trace(CellLoop(), torch.zeros(2, 6, 4))
    assert sum(n.target == "cell" for n in graph.nodes) == 6
    drawn = apply_views(graph)
    (loop,) = [m for m in drawn.modules if m.class_name == "loop"]
    assert (loop.path, loop.repeat) == ("loop", 6)
    cells = [n for n in drawn.nodes if n.target == "cell"]
    assert len(cells) == 1 and cells[0].scope == "loop"
    # The stack of all six hidden states reads the one drawn step; the weights are drawn
    # once, on the cell's first call.
    (stack,) = [n for n in drawn.nodes if n.target.endswith("stack")]
    assert set(stack.inputs) == {cells[0].id}
    assert cells[0].params.total == graph.module("cell").params.total
    dot = graph.to_dot()
    assert "loop ×6: one step drawn, each step reads the one before" in dot
    assert not any(m.class_name == "loop" for m in apply_views(graph, fold=False).modules)


def test_an_expanded_lstm_draws_one_time_step_and_its_weights_once() -> None:
    graph = fxviz.trace(f"{REPO}/examples/lstm_tagger.py:LSTMTagger", expand=("LSTM",))
    drawn = apply_views(graph, expand=("LSTM",))
    (loop,) = [m for m in drawn.modules if m.class_name == "loop"]
    assert (loop.path, loop.repeat) == ("lstm.loop", 12)
    step = [n for n in drawn.nodes if n.scope == "lstm.loop"]
    assert sum(n.target.endswith("sigmoid") for n in step) == 3
    assert sum(n.target.endswith("tanh") for n in step) == 2
    # The step's own slice of the input is inside it; h0 and c0 are not.
    assert any(n.target.endswith("slice") for n in step)
    assert not any(n.target.endswith("full") for n in step)
    weights = [n for n in drawn.nodes if n.kind == "constant" and "weight_hh" in n.target]
    assert len(weights) == 1 and weights[0].scope != "lstm.loop"
    assert len(drawn.nodes) < len(graph.nodes) / 3


def test_repetition_without_a_chain_is_not_a_loop() -> None:
    """Three heads reading the same value, one after another, are not steps of a loop."""

    class Heads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([torch.relu(self.proj(x)) for _ in range(4)], 1)

    graph = fxviz.trace(Heads(), torch.zeros(1, 4))
    assert fold_steps(graph) is graph
    assert not any(m.class_name == "loop" for m in apply_views(graph).modules)


def test_a_folded_runs_parameters_carry_the_runs_name() -> None:
    """ConvNeXt reads each block's `layer_scale` as a tensor: in a folded run of 3 blocks it
    is drawn once, named for the run, not for its first block."""
    drawn = apply_views(fxviz.trace("convnext_tiny"))
    scales = [n.target for n in drawn.nodes if n.target.endswith("layer_scale")]
    assert "features.1.0–2.layer_scale" in scales
    assert not any(t.startswith("features.1.0.") for t in scales)


class Global(nn.Module):
    """A block of another kind: Gemma 3's global layer among its sliding-window ones."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc(x)) + x


class Hybrid(nn.Module):
    """Three blocks of one kind and one of another, four times, then one left over."""

    def __init__(self) -> None:
        super().__init__()
        kinds = ([Block] * 3 + [Global]) * 4 + [Block]
        self.layers = nn.ModuleList(kind() for kind in kinds)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


def test_alternating_blocks_fold_as_a_group_drawn_once() -> None:
    from fxviz.views import fold_periods

    g = fold_periods(fold_repeats(trace(Hybrid(), width=8)))
    group = next(m for m in g.modules if m.path == "layers.0–15")
    assert (group.class_name, group.qualname, group.repeat) == ("group", "", 4)
    assert group.params.total == 4 * (3 * 72 + 64)  # the whole run's, as a folded run's
    # Its blocks go under the group (one run of three, one Global), drawn by their own paths.
    assert [n.target for n in g.nodes if n.kind == "module"] == [
        "layers.0–15.0–2.fc",
        "layers.0–15.3.fc",
        "layers.16.fc",
    ]
    assert g.module("layers.0–15.3") is not None and g.module("layers.3") is None
    last = next(n for n in g.nodes if n.target == "layers.16.fc")
    assert last.inputs == ("add_3",)  # reads the kept group's output
    assert Graph.from_json(g.to_json()) == g
    dot = apply_views(trace(Hybrid(), width=8)).to_dot()
    lines = [line for line in dot.splitlines() if 'label="' in line]
    labels = [line.split('label="')[1].split('"')[0] for line in lines]
    assert "layers.0–15: the 4 blocks below, in turn, ×4" in labels
    assert "layers.3: Global" in labels and "layers.0–2: Block ×3" in labels
    assert not [label for label in labels if "0–15." in label]  # the group is not in a name
    assert sum(label.startswith("layers.3.fc · Linear") for label in labels) == 1


def test_pairs_of_leaf_modules_are_not_grouped() -> None:
    # A Sequential's (Linear, ReLU) pairs: leaves, not blocks, stay as they are.
    model = nn.Sequential(*[m for _ in range(4) for m in (nn.Linear(8, 8), nn.ReLU())])
    g = fxviz.trace(model, torch.zeros(1, 8))
    from fxviz.views import fold_periods

    assert fold_periods(fold_repeats(g)) == fold_repeats(g)


class DenseLayer(nn.Module):
    """DenseNet's layer: reads every earlier layer's output, adds `growth` channels."""

    def __init__(self, channels: int, growth: int = 32) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels)
        self.conv = nn.Conv2d(channels, growth, kernel_size=3, padding=1, bias=False)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.conv(torch.relu(self.norm(torch.cat(features, 1))))


class DenseBlock(nn.Module):
    def __init__(self, channels: int = 64, layers: int = 6) -> None:
        super().__init__()
        self.layers = nn.ModuleList(DenseLayer(channels + 32 * i) for i in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            features.append(layer(features))
        return torch.cat(features, 1)


def test_blocks_alike_but_for_their_sizes_fold_with_the_range_said() -> None:
    from fxviz.views import fold_ranges

    graph = fxviz.trace(DenseBlock(), torch.zeros(1, 64, 8, 8))
    assert not [m for m in apply_views(graph).modules if m.repeat > 1]  # none is identical
    folded = fold_ranges(apply_views(graph))
    (run,) = [m for m in folded.modules if m.repeat > 1]
    assert (run.path, run.class_name, run.repeat) == ("layers.0–5", "DenseLayer", 6)
    assert run.varies == "in 64 → 224 (+32 each)"
    assert run.params == sum(
        (m.params for m in graph.modules if m.path.count(".") == 1), ParamCount()
    )
    assert "layers.0–5: DenseLayer ×6, in 64 → 224 (+32 each)" in to_dot_of(folded)
    # the block's concatenation of every layer is one edge from the folded layer, not six
    (concat,) = [n for n in folded.nodes if n.target == "torch.cat" and n.scope == ""]
    assert len(concat.inputs) == 2
    drawn = {n.id for n in folded.nodes}
    assert all(i in drawn for n in folded.nodes for i in n.inputs)


def test_range_folding_is_asked_for_only_when_a_picture_would_not_fit() -> None:
    graph = fxviz.trace(DenseBlock(), torch.zeros(1, 64, 8, 8))
    assert not [m for m in fxviz.drawing.picture(graph, DrawOptions()).modules if m.varies]
    assert apply_views(graph, ranges=True) != apply_views(graph)


def test_the_range_names_a_changing_keyword() -> None:
    from fxviz.views.ranges import fold_ranges

    class Strided(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.Sequential(*(nn.Sequential(nn.Dropout(p / 10)) for p in (1, 2, 3)))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.blocks(x)

    folded = fold_ranges(apply_views(fxviz.trace(Strided(), torch.zeros(1, 4))))
    (run,) = [m for m in folded.modules if m.repeat > 1]
    assert run.varies == "p 0.1 → 0.3 (+0.1 each)"


def to_dot_of(graph: Graph) -> str:
    from fxviz.exporters.dot import to_dot

    return to_dot(graph)


def test_collapsing_draws_each_call_of_a_module_as_its_own_node() -> None:
    """SAM's mask decoder runs one `activation` after each of two upsamplings: drawn as one
    node at --depth 2 it read its own output (a cycle in the picture)."""

    class Decoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.up1 = nn.Linear(4, 4)
            self.up2 = nn.Linear(4, 4)
            self.activation = nn.GELU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.activation(self.up2(self.activation(self.up1(x))))

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.decoder = Decoder()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.decoder(x)

    drawn = collapse(fxviz.trace(Model(), torch.zeros(1, 4)), 2)
    order = [n.target for n in drawn.nodes if n.kind == "module"]
    assert order == ["decoder.up1", "decoder.activation", "decoder.up2", "decoder.activation"]
    position = {n.id: i for i, n in enumerate(drawn.nodes)}
    assert all(position[i] < position[n.id] for n in drawn.nodes for i in n.inputs)


class PerClass(nn.Module):
    """SSD's post-processing: one step per class, each reading the one score tensor, no
    step reading another; the results concatenated."""

    def forward(self, scores: torch.Tensor) -> torch.Tensor:
        kept = []
        for label in range(1, scores.shape[1]):
            score = scores[:, label]
            top = torch.topk(score * (score > 0.5), 4).values
            kept.append(torch.full_like(top, label) + top)
        return torch.cat(kept)


def test_a_loop_of_independent_steps_folds_only_to_fit_a_screen() -> None:
    graph = fxviz.trace(PerClass(), torch.zeros(16, 12))
    assert not [m for m in apply_views(graph).modules if m.class_name == "loop"]
    folded = apply_views(graph, ranges=True)
    (loop,) = [m for m in folded.modules if m.class_name == "loop"]
    assert (loop.repeat, loop.hparams) == (11, "independent steps")
    assert "loop ×11: one step drawn, no step reads another" in to_dot_of(folded)
    (cat,) = [n for n in folded.nodes if n.target == "torch.cat"]
    assert len(cat.inputs) == 1  # every step's result reads as the kept step's
    drawn = {n.id for n in folded.nodes}
    read = {i for n in folded.nodes for i in n.inputs}
    assert all(i in drawn for i in read)
    assert not [
        n.id for n in folded.nodes if n.kind not in ("output", "input") and n.id not in read
    ]


def test_an_input_the_model_never_reads_is_said_and_not_drawn() -> None:
    """RWKV takes an attention_mask and never reads it: a box read by nothing."""

    class Ignores(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
            return self.fc(x)

    graph = fxviz.trace(Ignores(), kwargs={"x": torch.zeros(1, 4), "mask": torch.ones(1, 4)})
    assert "the model never reads mask: not drawn" in graph.notes
    assert [n.target for n in graph.nodes if n.kind == "input"] == ["x", "mask"]
    drawn = apply_views(graph)
    assert [n.target for n in drawn.nodes if n.kind == "input"] == ["x"]
