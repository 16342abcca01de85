"""Two architectures of one family, from their default configs (2 layers): a short list of the
real differences, each checked against the two configs."""

from __future__ import annotations

import pytest

import fxviz
from fxviz.diff import diff, format_report
from fxviz.loaders.huggingface import architecture_words

FAMILIES = {
    # RoBERTa: a larger vocabulary, padding id 1, positions counted from the ids themselves
    # (padding-aware) instead of a buffer of 0..L-1.
    ("hf:bert", "hf:roberta"): [
        "* classes Bert* -> Roberta*: embeddings, encoder, encoder.*, pooler (15 modules)",
        "* sizes 30522 -> 50265, padding_idx 0 -> 1: embeddings.word_embeddings "
        "[+15,162,624 params]",
        "> 2 rewired, reading input_ids instead of the tensor embeddings.position_ids: "
        "embeddings.{token_type_embeddings,position_embeddings}",
        "* +padding_idx=1: embeddings.position_embeddings",
    ],
    # Mistral: sliding-window attention, 8 key/value heads for 32 (k/v ÷4), a wider MLP,
    # positions up to 131072.
    ("hf:llama", "hf:mistral"): [
        "* max_position_embeddings=2048 -> 131072, +sliding_window=4096: the model's config",
        "* classes Llama* -> Mistral*: layers.*, norm, rotary_emb (12 modules)",
        "* sizes ÷4 (4096 -> 1024): layers.{0,1}.self_attn.{k_proj,v_proj} (4 modules in 2 "
        "MistralAttention) [-50,331,648 params; 4 shapes follow]",
        "* sizes 11008 -> 14336: layers.{0,1}.mlp.{gate_proj,up_proj,down_proj} (6 modules in "
        "2 MistralMLP) [+81,788,928 params; 4 shapes follow]",
    ],
    # GPT-Neo: local and global attention in turn (window 256), unscaled attention scores,
    # separate q/k/v projections instead of one fused Conv1D, Linear MLPs, no dropout.
    ("hf:gpt2", "hf:gpt_neo"): [
        "* +max_position_embeddings=2048, +window_size=256, +attention_layers=[global local]×12,"
        " -n_positions=1024, -scale_attn_weights=True: the model's config",
        "- 4 Conv1D: h.{0,1}.attn.{c_attn,c_proj} [-4,724,736 params]",
        "+ 2 GPTNeoSelfAttention: h.{0,1}.attn.attention [+33,558,528 params]",
        "* class Conv1D -> Linear; hyper-parameters: h.{0,1}.mlp.{c_fc,c_proj} (4 modules in 2 "
        "GPTNeoMLP) [+57,684,480 params]",
        "* p 0.1 -> 0.0: drop, h.{0,1}.mlp.dropout (3 modules) [1 shape follows]",
    ],
}


@pytest.mark.parametrize(("pair", "expected"), list(FAMILIES.items()), ids=lambda v: str(v))
def test_a_family_pair_reads_as_its_real_differences(
    pair: tuple[str, str], expected: list[str]
) -> None:
    a, b = (fxviz.trace(spec, layers=2) for spec in pair)
    report = format_report(diff(a, b)).splitlines()
    assert len(report) <= 15, "\n".join(report)
    lines = [line.strip() for line in report]
    for line in expected:
        assert line in lines, "\n".join(report)


def test_architecture_words() -> None:
    class Config:
        def to_dict(self) -> dict[str, object]:
            return {
                "max_position_embeddings": 4096,
                "rope_parameters": {"rope_theta": 1e6, "rope_type": "default"},
                "sliding_window": None,
                "layer_types": ["sliding", "sliding", "full"] * 2,
                "is_decoder": False,
                "hidden_size": 64,  # a size: the layers show it
            }

    assert architecture_words(Config()) == (
        "max_position_embeddings=4096, rope_theta=1000000.0, rope_type=default, "
        "layer_types=[sliding sliding full]×2"
    )
    assert architecture_words(object()) == ""
