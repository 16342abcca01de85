"""Hugging Face architectures drawn offline from their model type, on meta: a run recorded on
fake tensors (torch.export where that fails)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import fxviz
from fxviz.cli import app
from fxviz.errors import ModelLoadError, ModelNotFoundError, SpecError, TraceError
from fxviz.humanize import format_shape

runner = CliRunner()

ARCHITECTURES = [
    # model type, --config overrides, a module deep inside (path, class, output shape), output
    (
        "bert",
        ["num_hidden_layers=2"],
        ("encoder.layer.1.attention.self.query", "Linear", "1×16×768"),
        ("['last_hidden_state']", "1×16×768"),
    ),
    (
        "gpt2",
        ["num_hidden_layers=2"],
        ("h.1.ln_1", "LayerNorm", "1×16×768"),
        ("['last_hidden_state']", "1×16×768"),
    ),
    (
        "llama",
        ["num_hidden_layers=2"],
        ("layers.1.self_attn.q_proj", "Linear", "1×16×4096"),
        ("['last_hidden_state']", "1×16×4096"),
    ),
    (
        "mistral",
        ["num_hidden_layers=2"],
        ("layers.1.self_attn.k_proj", "Linear", "1×16×1024"),
        ("['last_hidden_state']", "1×16×4096"),
    ),
    (
        "qwen2",
        ["num_hidden_layers=2"],
        ("layers.1.mlp.down_proj", "Linear", "1×16×4096"),
        ("['last_hidden_state']", "1×16×4096"),
    ),
    (
        "mixtral",
        ["num_hidden_layers=2"],
        ("layers.1.self_attn.o_proj", "Linear", "1×16×4096"),
        ("['last_hidden_state']", "1×16×4096"),
    ),
    (
        "t5",
        ["num_layers=2", "num_decoder_layers=2"],
        ("decoder.block.1.layer.2.DenseReluDense.wo", "Linear", "1×16×512"),
        ("['encoder_last_hidden_state']", "1×16×512"),
    ),
    (
        "bart",
        ["encoder_layers=2", "decoder_layers=2"],
        ("decoder.layers.1.encoder_attn.q_proj", "Linear", "1×16×1024"),
        ("['last_hidden_state']", "1×16×1024"),
    ),
    (
        "vit",
        ["num_hidden_layers=2"],
        ("layers.1.attention.q_proj", "Linear", "1×197×768"),
        ("['pooler_output']", "1×768"),
    ),
    (
        "convnext",
        ["depths=[1, 1, 1, 1]"],
        ("encoder.stages.1.layers.0.dwconv", "Conv2d", "1×192×28×28"),
        ("['last_hidden_state']", "1×768×7×7"),
    ),
    (
        "whisper",
        ["encoder_layers=2", "decoder_layers=2"],
        ("encoder.conv2", "Conv1d", "1×384×1500"),
        ("['encoder_last_hidden_state']", "1×1500×384"),
    ),
    (
        "wav2vec2",
        ["num_hidden_layers=2"],
        ("feature_extractor.conv_layers.1.conv", "Conv1d", "1×512×1599"),
        ("['extract_features']", "1×49×512"),
    ),
    (
        "clip",
        ["text_config.num_hidden_layers=2", "vision_config.num_hidden_layers=2"],
        ("vision_model.encoder.layers.1.self_attn.q_proj", "Linear", "1×50×768"),
        ("['logits_per_text']", "1×1"),
    ),
]


@pytest.mark.parametrize(
    ("model_type", "config", "module", "output"), ARCHITECTURES, ids=[a[0] for a in ARCHITECTURES]
)
def test_architecture_draws_from_its_model_type(
    model_type: str, config: list[str], module: tuple[str, str, str], output: tuple[str, str]
) -> None:
    graph = fxviz.trace(f"hf:{model_type}", config=config)
    # Mixtral's experts run one grouped_mm: its meta kernel runs float32 (the fake kernel
    # takes bfloat16 only), so the run on meta tensors draws it too.
    assert graph.tracer == "record"
    assert graph.device == "meta"
    notes = [n for n in graph.notes if not n.startswith("mixture of experts: ")]
    assert notes and notes[0].startswith("torch.fx could not trace it")
    path, cls, shape = module
    node = next(n for n in graph.nodes if n.kind == "module" and n.target == path)
    assert (node.module_class, format_shape(node.outputs[0].shape or ())) == (cls, shape)
    assert node.params.total > 0 or cls not in ("Linear", "Conv1d", "Conv2d")
    outputs = {v.path: format_shape(v.shape or ()) for v in graph.outputs[0].outputs}
    assert outputs[output[0]] == output[1]
    assert graph.totals.params.total == sum(m.params.total for m in graph.modules if m.path == "")
    assert Graph_round_trips(graph)


def Graph_round_trips(graph: fxviz.Graph) -> bool:  # noqa: N802
    return fxviz.Graph.from_json(graph.to_json()) == graph


def test_inputs_come_from_the_config() -> None:
    loaded = fxviz.load("hf:bert", config=["num_hidden_layers=1", "max_position_embeddings=8"])
    assert {k: tuple(v.shape) for k, v in loaded.kwargs.items()} == {
        "input_ids": (1, 8),
        "attention_mask": (1, 8),
    }
    assert all(p.is_meta for p in loaded.module.parameters())
    vision = fxviz.load("hf:vit", config=["num_hidden_layers=1", "image_size=64"])
    assert tuple(vision.kwargs["pixel_values"].shape) == (1, 3, 64, 64)


def test_input_overrides_by_name() -> None:
    graph = fxviz.trace(
        "hf:bert",
        ["input_ids=int64:2,5", "attention_mask=int64:2,5"],
        config=["num_hidden_layers=1"],
    )
    assert graph.node("input_ids").outputs[0].shape == (2, 5)
    assert {v.path: v.shape for v in graph.outputs[0].outputs}["['last_hidden_state']"] == (
        2,
        5,
        768,
    )


def test_companion_inputs_follow_the_given_ids() -> None:
    loaded = fxviz.load("hf:t5", inputs=["input_ids=int64:3,7"], config=["num_layers=1"])
    shapes = {k: tuple(v.shape) for k, v in loaded.kwargs.items()}
    assert shapes == {"input_ids": (3, 7), "attention_mask": (3, 7), "decoder_input_ids": (3, 7)}


def test_cpu_attention_mask_is_ones() -> None:
    loaded = fxviz.load(
        "hf:bert",
        config=[
            "num_hidden_layers=1",
            "hidden_size=64",
            "num_attention_heads=2",
            "intermediate_size=64",
        ],
        device="cpu",
    )
    assert bool((loaded.kwargs["attention_mask"] == 1).all())


def test_local_folder_with_config_json(tmp_path: Path) -> None:
    from transformers import AutoConfig

    AutoConfig.for_model("gpt2", n_layer=1, n_embd=64, n_head=2).save_pretrained(tmp_path)
    graph = fxviz.trace(f"hf:{tmp_path}")
    assert graph.name == tmp_path.name
    assert graph.node("wte").outputs[0].shape == (1, 16, 64)


def test_full_size_default_llama_on_meta_allocates_no_weights() -> None:
    loaded = fxviz.load("hf:llama")
    params = list(loaded.module.parameters())
    assert sum(p.numel() for p in params) > 6_000_000_000
    assert all(p.is_meta for p in params)
    assert (
        torch.empty(0).untyped_storage().nbytes() == 0
    )  # nothing to compare against; see benchmarks


@pytest.mark.parametrize(
    ("spec", "config", "error", "message"),
    [
        (
            "hf:no-such-org/no-such-model",
            [],
            ModelNotFoundError,
            "no hub model 'no-such-org/no-such-model' in the cache and offline",
        ),
        ("hf:bertt", [], ModelNotFoundError, "did you mean hf:bert"),
        (
            "hf:bert",
            ["num_hiden_layers=2"],
            SpecError,
            "BertConfig has no 'num_hiden_layers'; did you mean num_hidden_layers",
        ),
        ("hf:bert", ["num_hidden_layers=two"], SpecError, "num_hidden_layers is a number"),
        ("hf:bert", ["novalue"], SpecError, "write key=value"),
        ("hf:clip", ["audio_config.x=1"], SpecError, "has no sub-config 'audio_config'"),
        (
            # a composite config keeps its layer counts in sub-configs: say where
            "hf:gemma3",
            ["num_hidden_layers=2"],
            SpecError,
            r"Gemma3Config has no 'num_hidden_layers'; its sub-configs have "
            r"text_config.num_hidden_layers and vision_config.num_hidden_layers "
            r"\(--layers N caps every layer count\)",
        ),
        ("hf:bert", ["zzzz=2"], SpecError, r"BertConfig has no 'zzzz'; its fields are add_cro"),
        ("resnet18", ["num_hidden_layers=2"], SpecError, "--config applies to Hugging Face models"),
        (
            # transformers' own validator refuses the type's default config
            "hf:gemma4_assistant",
            [],
            ModelLoadError,
            r"could not build hf:gemma4_assistant's default config \(Class validation error "
            r"for validator 'validate_architecture': ValueError: hidden_size_per_layer_input",
        ),
    ],
)
def test_errors(spec: str, config: list[str], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        fxviz.load(spec, config=config)


def test_folder_without_config_json(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="the folder has no config.json"):
        fxviz.load(f"hf:{tmp_path}")


def test_a_config_the_model_cannot_run_names_the_line() -> None:
    with pytest.raises(
        TraceError,
        match=r"no tracer can draw convnext: torch.fx: .*; torch.export: Given normalized_shape="
        r"\[768\].* at modeling_convnext.py:\d+ .*; recording a run: Given normalized_shape",
    ):
        fxviz.trace("hf:convnext", config=["num_hidden_layers=2"])


def test_corrupt_config_json(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "no_such_type"}))
    with pytest.raises(ModelLoadError, match="cannot read its config.json.*no_such_type"):
        fxviz.load(f"hf:{tmp_path}")


def test_unreachable_hub_fails_fast_with_the_cache_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from fxviz.loaders import huggingface

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface, "hub_reachable", lambda: False)
    with pytest.raises(ModelNotFoundError, match=r"the hub \(huggingface.co\) cannot be reached"):
        fxviz.load("hf:some-org/some-model")


def test_hub_probe_is_one_short_connect(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from fxviz.loaders import huggingface

    calls: list[tuple[object, float]] = []

    def refuse(address: object, timeout: float) -> None:
        calls.append((address, timeout))
        raise OSError("no route")

    monkeypatch.setenv("HF_ENDPOINT", "http://mirror.example:8080")
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert huggingface.hub_reachable() is False
    assert calls == [(("mirror.example", 8080), huggingface.HUB_TIMEOUT_S)]


def test_layers_caps_every_layer_count_whatever_it_is_called() -> None:
    from transformers import AutoConfig

    from fxviz.loaders.huggingface import shrink_layers

    gemma3 = AutoConfig.for_model("gemma3")
    note = shrink_layers(gemma3, 2, "hf:gemma3")
    assert "text_config.num_hidden_layers" in note and "vision_config.num_hidden_layers" in note
    assert gemma3.text_config.num_hidden_layers == 2 == gemma3.vision_config.num_hidden_layers
    assert len(gemma3.text_config.layer_types) == 2  # a type per layer, as many as the layers
    t5 = AutoConfig.for_model("t5")
    assert (
        shrink_layers(t5, 1, "hf:t5") == "--layers 1: num_layers 6 -> 1, num_decoder_layers 6 -> 1"
    )
    gpt2 = AutoConfig.for_model("gpt2")
    assert shrink_layers(gpt2, 2, "hf:gpt2") == "--layers 2: n_layer 12 -> 2"


def test_layers_caps_the_counts_config_sets_too() -> None:
    """--layers caps the config as --config leaves it, whichever is written first."""
    graph = fxviz.trace("hf:llama", config=["num_hidden_layers=6"], layers=2)
    assert graph.notes[0] == "--layers 2: num_hidden_layers 6 -> 2"
    assert {m.path for m in graph.modules if m.path.count(".") == 1} == {"layers.0", "layers.1"}


def test_layers_through_the_api_the_cli_and_a_gallery(tmp_path: Path) -> None:
    graph = fxviz.trace("hf:whisper", layers=1)
    assert graph.notes[0] == "--layers 1: encoder_layers 4 -> 1, decoder_layers 4 -> 1"
    assert graph.module("encoder.layers.0") and not graph.module("encoder.layers.1")
    result = runner.invoke(app, ["resnet18", "--layers", "2"])
    assert result.exit_code == 2 and "--layers applies to Hugging Face models" in result.stderr
    manifest = tmp_path / "models.toml"
    manifest.write_text(
        '[[model]]\nname = "gpt2"\nspec = "hf:gpt2"\nlayers = 1\nformats = ["json"]\n'
    )
    assert runner.invoke(app, ["gallery", str(manifest)]).exit_code == 0
    saved = fxviz.Graph.load(tmp_path / "gpt2.json")
    assert saved.module("h.0") and not saved.module("h.1")


def test_a_type_with_no_base_model_is_built_by_the_task_class_that_lists_it() -> None:
    loaded = fxviz.load("hf:trocr")
    assert type(loaded.module).__name__ == "TrOCRForCausalLM"
    assert loaded.notes[0] == (
        "TrOCRConfig has no base model in transformers; drawn as TrOCRForCausalLM "
        "(AutoModelForCausalLM)"
    )


def test_a_config_without_a_length_limit_gets_the_default_length() -> None:
    loaded = fxviz.load("hf:xlnet")  # max_position_embeddings is -1: no limit
    assert tuple(loaded.kwargs["input_ids"].shape) == (1, 16)


def test_language_adapters_get_the_configs_first_language() -> None:
    loaded = fxviz.load("hf:xmod")
    assert "language adapters: drawn with 'en_XX' (of 1)" in loaded.notes
    assert all(
        m.default_language == "en_XX"  # type: ignore[attr-defined]
        for m in loaded.module.modules()
        if hasattr(m, "default_language")
    )


def test_a_field_the_default_config_leaves_unset_gets_a_value_and_a_note() -> None:
    loaded = fxviz.load("hf:deepseek_v2", layers=1)
    assert loaded.module.config.num_experts_per_tok == 2
    assert (
        "the default config leaves num_experts_per_tok unset: drawn with "
        "num_experts_per_tok=2 (--config to choose)"
    ) in loaded.notes
    chosen = fxviz.load("hf:deepseek_v2", layers=1, config=["num_experts_per_tok=6"])
    assert chosen.module.config.num_experts_per_tok == 6


def test_a_model_whose_dummy_images_do_not_fit_is_drawn_text_only() -> None:
    """gemma3's default config pools 224-px images in 16-px patches (14 a side) into 16
    tokens a side: no tracer follows the dummy pixels, so it is drawn text-only, and says so."""
    loaded = fxviz.load("hf:gemma3", layers=2)
    assert loaded.text_only is not None and set(loaded.kwargs) - set(loaded.text_only) == {
        "pixel_values"
    }
    graph = fxviz.trace(loaded)
    (note,) = [n for n in graph.notes if n.startswith("drawn text-only")]
    assert note.startswith("drawn text-only: with dummy pixel_values it could not be traced (")
    assert "stride should not be zero" in note and "--input pixel_values=" in note
    assert {n.target.split(".")[0] for n in graph.nodes if n.kind == "module"} == {"language_model"}
    assert [n.id for n in graph.inputs] == ["input_ids", "attention_mask"]


def test_a_model_whose_dummy_images_fit_keeps_them() -> None:
    graph = fxviz.trace("hf:clip", layers=2)
    assert not any(n.startswith("drawn text-only") for n in graph.notes)
    assert "pixel_values" in {n.id for n in graph.inputs}


def test_layers_caps_a_count_derived_from_a_list_of_layer_types() -> None:
    from transformers import AutoConfig

    from fxviz.loaders.huggingface import shrink_layers

    # Nemotron-H's num_hidden_layers is a property: len(layers_block_type), which ignores
    # being set; --layers cuts the list it counts.
    nemotron = AutoConfig.for_model("nemotron_h")
    assert shrink_layers(nemotron, 2, "hf:nemotron_h") == "--layers 2: num_hidden_layers 4 -> 2"
    assert nemotron.num_hidden_layers == 2
    assert nemotron.layers_block_type == ["linear_attention", "moe"]


def test_layers_keeps_every_kind_of_layer_it_has_room_for() -> None:
    from transformers import AutoConfig

    from fxviz.loaders.huggingface import layer_kinds_kept, shrink_layers

    # Gemma 3: five sliding-window layers to one global; 2 layers keep one of each.
    gemma3 = AutoConfig.for_model("gemma3")
    shrink_layers(gemma3, 2, "hf:gemma3")
    assert gemma3.text_config.layer_types == ["sliding_attention", "full_attention"]
    # Qwen3.5's first three layers are linear attention: a full attention layer stays.
    qwen = AutoConfig.for_model("qwen3_5")
    note = shrink_layers(qwen, 2, "hf:qwen3_5")
    assert qwen.text_config.layer_types == ["linear_attention", "full_attention"]
    assert "vision_config.depth 27 -> 2" in note  # a layer count under another name
    assert layer_kinds_kept(["a", "a", "b", "b", "c"], 3) == ["a", "c", "b"]
    assert layer_kinds_kept(["a", "m", "f", "p"], 2) == ["a", "m"]  # no room for more
    assert layer_kinds_kept(["x"] * 4, 2) == ["x", "x"]


def test_a_vision_language_model_with_linear_attention_draws_text_only() -> None:
    graph = fxviz.trace("hf:qwen3_5", layers=2)
    assert graph.notes[1].startswith("drawn text-only: with dummy pixel_values")
    layers = {n.scope.split(".self_attn")[0] for n in graph.nodes if ".self_attn." in n.scope}
    linear = {n.scope.split(".linear_attn")[0] for n in graph.nodes if ".linear_attn" in n.scope}
    assert layers == {"language_model.layers.1"} and linear == {"language_model.layers.0"}


def test_mixture_of_experts_flops_count_the_experts_each_token_is_routed_to() -> None:
    small = ["hidden_size=64", "intermediate_size=128", "num_attention_heads=4"]
    graph = fxviz.trace("hf:mixtral", layers=1, config=[*small, "num_key_value_heads=2"])
    experts = {n.id: n.flops for n in graph.nodes if "grouped_mm" in n.target}
    # 16 tokens, 2 experts each: 32 rows through 64 -> 2·128 (gate and up), 128 -> 64 (down)
    assert sorted(experts.values()) == [2 * 32 * 128 * 64, 2 * 32 * 64 * 256]


def test_layers_leaves_a_read_only_layer_count_to_its_parts() -> None:
    from transformers import AutoConfig

    from fxviz.loaders.huggingface import shrink_layers

    # ProphetNet's num_hidden_layers is encoder + decoder, and refuses to be set.
    prophetnet = AutoConfig.for_model("prophetnet")
    note = shrink_layers(prophetnet, 2, "hf:prophetnet")
    assert note == "--layers 2: num_encoder_layers 12 -> 2, num_decoder_layers 12 -> 2"


def test_a_mixture_of_experts_says_what_its_drawing_assumes_about_routing() -> None:
    from transformers import AutoConfig

    from fxviz.loaders.huggingface import experts_note

    assert experts_note(AutoConfig.for_model("deepseek_v3")) == (
        "mixture of experts: each token goes to 8 of 256 experts (and 1 shared), chosen by "
        "its values; the experts are drawn once, as the module that runs them all, and FLOPs "
        "are those of the code as it ran"
    )
    assert "1 of 16 experts" in experts_note(AutoConfig.for_model("llama4"))  # text_config
    assert experts_note(AutoConfig.for_model("llama")) == ""
    graph = fxviz.trace("hf:mixtral", layers=1)
    assert graph.notes[1].startswith("mixture of experts: each token goes to 2 of 8 experts")


def test_layers_caps_each_stage_and_keeps_the_stage_lists_consistent() -> None:
    """ConvNeXt counts its stages in `num_stages` and lists a depth and a width per stage:
    `--layers 2` caps each stage at 2 blocks and keeps all 4, so the widths still agree."""
    from transformers import AutoConfig

    from fxviz.loaders.huggingface import shrink_layers

    config = AutoConfig.for_model("convnext")
    note = shrink_layers(config, 2, "hf:convnext")
    assert note == "--layers 2: depths [3, 3, 9, 3] -> [2, 2, 2, 2]"
    assert config.num_stages == 4 and list(config.hidden_sizes) == [96, 192, 384, 768]
    graph = fxviz.trace("hf:convnext", layers=2)
    stages = {n.scope.split(".layers.")[0] for n in graph.nodes if ".stages." in n.scope}
    assert len({s for s in stages if s.count(".") == 2}) == 4
    blocks = {
        n.scope.split(".layers.")[1].split(".")[0] for n in graph.nodes if ".layers." in n.scope
    }
    assert blocks == {"0", "1"}


def test_layers_says_what_it_left_unchanged_instead_of_refusing() -> None:
    """MobileViT has no layer count at all: drawn as configured, and the note says so."""
    graph = fxviz.trace("hf:mobilevit", layers=2)
    assert graph.notes[0].startswith("--layers 2: hf:mobilevit's config has no layer count")
    assert "drawn as configured" in graph.notes[0]


def test_a_stage_model_that_cannot_be_built_capped_keeps_its_stages() -> None:
    """CvT indexes one stage's list by another's position: capped, transformers fails, so
    its stages keep their counts and the note says why."""
    graph = fxviz.trace("hf:cvt", layers=2)
    assert graph.notes[0] == (
        "--layers 2: hf:cvt's stages keep their block counts "
        "(transformers cannot build them capped)"
    )


def test_speech_to_text_features_follow_the_config() -> None:
    """Speech2Text reads (batch, frames, features), `input_feat_per_channel` features each;
    Whisper reads (batch, mel bins, frames)."""
    graph = fxviz.trace("hf:speech_to_text", layers=2)
    (features,) = [n for n in graph.nodes if n.id == "input_features"]
    assert features.outputs[0].shape == (1, 3000, 80)
    whisper = fxviz.trace("hf:whisper", layers=2)
    (mels,) = [n for n in whisper.nodes if n.id == "input_features"]
    assert mels.outputs[0].shape == (1, 80, 3000)


def test_a_small_multimodal_model_that_needs_values_runs_on_them() -> None:
    """ViLT sizes its patch grid from its pixel mask's values: no run on fake tensors can
    draw it, text-only neither; at 41M parameters a CPU copy for a run on values is cheap."""
    graph = fxviz.trace("hf:vilt", layers=2)
    assert (graph.tracer, graph.device) == ("record", "cpu")
    assert {n.target for n in graph.nodes if n.kind == "input"} >= {"input_ids", "pixel_values"}
