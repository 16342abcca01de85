"""Views: folding repeated blocks and collapsing depth, on small models and real ones."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import fxviz
from fxviz.graph import Graph
from fxviz.views import apply_views, collapse, fold_repeats, structure_signature


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


def trace(model: nn.Module) -> Graph:
    return fxviz.trace(model, torch.zeros(1, 4))


def test_fold_keeps_one_block_and_labels_the_count() -> None:
    g = fold_repeats(trace(Stack(4)))
    classes = {m.path: m.class_name for m in g.modules}
    assert classes["blocks.0–3"] == "Block ×4"
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
    assert {m.path for m in g.modules if "×" in m.class_name} == {"blocks.0–1", "blocks.3–5"}
    assert "blocks.2.fc" in {n.target for n in g.nodes}


def test_signature_ignores_names() -> None:
    modules = {m.path: m for m in trace(Stack(4)).modules}
    assert structure_signature("blocks.0", modules) == structure_signature("blocks.3", modules)
    assert structure_signature("blocks.0", modules) != structure_signature("stem", modules)


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


def test_bert_base_folds_its_twelve_layers() -> None:
    g = fxviz.trace("hf:bert")
    folded = apply_views(g)
    assert len(g.nodes) > 300 and len(folded.nodes) <= 75
    assert {m.path: m.class_name for m in folded.modules}["encoder.layer.0–11"] == "BertLayer ×12"
    assert len(apply_views(g, depth=2).nodes) <= 50


def test_resnet50_keeps_its_four_stages_as_clusters() -> None:
    folded = apply_views(fxviz.trace("resnet50"))
    stages = {m.path.split(".")[0] for m in folded.modules if m.path.startswith("layer")}
    assert stages == {"layer1", "layer2", "layer3", "layer4"}
    assert {m.path: m.class_name for m in folded.modules}["layer3.1–5"] == "Bottleneck ×5"
    dot = folded.to_dot()
    assert 'label="layer3.1–5: Bottleneck ×5"' in dot


def test_folded_bert_golden(golden) -> None:  # type: ignore[no-untyped-def]
    g = fxviz.trace("hf:bert", config=["num_hidden_layers=3"])
    golden("views/bert-3-layers-folded.dot", apply_views(g).to_dot())


def test_llama_drawing_does_not_grow_with_its_layer_count() -> None:
    """Per-layer norm weights (get_attr constants) belong to their layer and fold with it."""
    small = [
        "hidden_size=64",
        "intermediate_size=128",
        "num_attention_heads=4",
        "num_key_value_heads=2",
        "vocab_size=100",
    ]
    drawn = [
        len(apply_views(fxviz.trace("hf:llama", config=[f"num_hidden_layers={n}", *small])).nodes)
        for n in (3, 8)
    ]
    assert drawn[0] == drawn[1]
    graph = fxviz.trace("hf:llama", config=["num_hidden_layers=8", *small])
    weight = next(n for n in graph.nodes if n.target == "layers.5.input_layernorm.weight")
    assert weight.kind == "constant" and weight.scope == "layers.5.input_layernorm"
