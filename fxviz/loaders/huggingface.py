"""Hugging Face models built from a config: a local folder, a hub id, or a bare model type.

Resolution order: a folder on disk (`hf:./ckpt`); a hub id (`hf:org/name`, from the local cache
when offline); a model type known to transformers (`hf:llama`, the library's default config).
Weights are loaded only with --weights; the model is built on the selected device, so on meta a
7B config costs no memory. Dummy inputs come from the config and `main_input_name`.
"""

from __future__ import annotations

import ast
import inspect
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch

from fxviz.errors import ModelLoadError, ModelNotFoundError, SpecError, did_you_mean, first_line
from fxviz.loaders import LoadedModel, LoadOptions
from fxviz.loaders.hf_types import model_types
from fxviz.loaders.inputs import make_inputs
from fxviz.loaders.meta import build_on
from fxviz.specs import InputSpec, ModelSpec

SEQ_LEN = 16
HUB_TIMEOUT_S = 3.0


def load_huggingface(spec: ModelSpec, options: LoadOptions, device: str) -> LoadedModel:
    config, origin = resolve_config(spec.target, options.weights is not None)
    if options.weights and origin == "type":
        raise ModelLoadError(
            f"{spec.text} is a model type, built from transformers' default config: it has no "
            f"published weights. For weights give a hub id (hf:org/name) or a local folder "
            "with config.json and the weights (hf:./checkpoint); drop --weights to draw the type"
        )
    unset = fill_unset(config) if origin == "type" else ""
    apply_overrides(config, options.config, spec.text)
    # After --config: `--layers 2 --config num_hidden_layers=6` draws 2 layers, the cap.
    staged = bool(options.layers) and _has_stages(config)
    shrunk = shrink_layers(config, options.layers, spec.text) if options.layers else ""
    if hasattr(config, "use_cache"):
        config.use_cache = False
    note = None
    auto, auto_note = auto_class(config)
    try:
        if options.weights:
            model = auto.from_pretrained(origin, config=config)
            model.to(device)
        elif staged and shrunk:
            try:
                model, note = build_on(device, lambda: auto.from_config(config))
            except (ValueError, TypeError, KeyError, AttributeError, IndexError):
                # Some stage models index one stage's list by another's position (CvT):
                # keep their stages as configured, and say so.
                config, _ = resolve_config(spec.target, False)
                assert options.layers is not None
                apply_overrides(config, options.config, spec.text)
                shrunk = shrink_layers(config, options.layers, spec.text, stages=False)
                kept = f"{spec.text}'s {STAGE_KEPT}"
                shrunk = f"{shrunk}; {kept}" if shrunk else f"--layers {options.layers}: {kept}"
                if hasattr(config, "use_cache"):
                    config.use_cache = False
                model, note = build_on(device, lambda: auto.from_config(config))
        else:
            model, note = build_on(device, lambda: auto.from_config(config))
    except OSError as exc:  # weights missing from the folder, the cache or the hub
        raise ModelLoadError(
            f"{spec.text}: transformers could not load the weights ({first_line(exc)})"
        ) from exc
    except (ValueError, TypeError, KeyError, AttributeError, ImportError, IndexError) as exc:
        after = f" after {shrunk.removeprefix(f'--layers {options.layers}: ')}" if shrunk else ""
        hint = "; draw it without --layers, or set its counts with --config" if after else ""
        raise ModelLoadError(
            f"transformers could not build {spec.text} ({type(config).__name__}){after}: "
            f"{first_line(exc)[:300]}{hint}"
        ) from exc
    model.eval()
    described = architecture_words(config)
    if described:
        # What the config decides that no layer's own repr shows (a sliding window, how far
        # positions go): the model's own line of the module tree, so a diff compares it.
        model.extra_repr = lambda: described
    language = default_language(model, config)
    args, kwargs = make_inputs(options.inputs, device) if options.inputs else ((), {})
    if not args:
        # Companion inputs (attention_mask, decoder ids) follow the user's batch and length.
        ids = next((s for s in options.inputs if s.name == "input_ids"), None)
        batch, seq = (ids.shape[0], ids.shape[-1]) if ids else (1, None)
        defaults = {s.name: s for s in default_inputs(model, config, batch, seq) if s.name}
        given = {s.name for s in options.inputs if s.name}
        _, made = make_inputs([s for n, s in defaults.items() if n not in given], device)
        kwargs = made | kwargs
    if isinstance(kwargs.get("attention_mask"), torch.Tensor):
        kwargs["attention_mask"] = torch.ones_like(kwargs["attention_mask"])  # attend everywhere
    name = spec.target.rstrip("/").rsplit("/", 1)[-1] if origin != "type" else spec.target
    notes = [n for n in (shrunk, unset, experts_note(config), auto_note, language, note) if n]
    loaded = LoadedModel(
        model, args, kwargs, name=name, source=spec.text, device=device, notes=notes
    )
    optional = _optional_media(model, kwargs) - {s.name for s in options.inputs if s.name}
    if not args and "input_ids" in kwargs and optional:
        loaded.text_only = {k: v for k, v in kwargs.items() if k not in optional}
    return loaded


# What a multimodal model reads besides text: images, audio features, waveforms.
_MEDIA = ("pixel_values", "input_features", "input_values")


def _optional_media(model: torch.nn.Module, kwargs: dict[str, Any]) -> set[str]:
    """The dummy images and audio a model reads only if given (`pixel_values=None`)."""
    parameters = inspect.signature(model.forward).parameters
    return {
        name
        for name in _MEDIA
        if name in kwargs and name in parameters and parameters[name].default is None
    }


# Fields some default configs leave unset that their model cannot run without, and what to
# draw with: DeepSeek-V2's default config routes each token to `None` experts.
_UNSET_DEFAULTS = {"num_experts_per_tok": 2}


def fill_unset(config: Any) -> str:
    """Give a default config's unset fields (`_UNSET_DEFAULTS`) a value, and say so;
    `--config` still overrides them."""
    filled = []
    for name, value in _UNSET_DEFAULTS.items():
        if name in config.to_dict() and getattr(config, name) is None:
            setattr(config, name, value)
            filled.append(f"{name}={value}")
    if not filled:
        return ""
    return (
        f"the default config leaves {', '.join(f.split('=')[0] for f in filled)} unset: "
        f"drawn with {', '.join(filled)} (--config to choose)"
    )


# The fields configs count a mixture of experts' routed experts in.
_EXPERT_COUNTS = ("num_local_experts", "n_routed_experts", "num_experts", "moe_num_experts")


def experts_note(config: Any) -> str:
    """What a mixture of experts' drawing assumes about routing, in a note: which experts a
    token goes to depends on its values, which a drawing on meta does not have, so the
    experts are drawn once, as the module that runs them all. Their FLOPs are what the code
    ran: Mixtral's grouped products count the experts each token uses; Llama 4 runs every
    expert on every token and masks the results, and counts that."""
    for cfg in (config, getattr(config, "text_config", None)):
        fields = cfg.to_dict() if cfg is not None else {}
        chosen = fields.get("num_experts_per_tok")
        routed = next((fields[f] for f in _EXPERT_COUNTS if isinstance(fields.get(f), int)), 0)
        if isinstance(chosen, int) and chosen and routed:
            shared = fields.get("n_shared_experts")
            also = f" (and {shared} shared)" if isinstance(shared, int) and shared else ""
            return (
                f"mixture of experts: each token goes to {chosen} of {routed} experts{also}, "
                "chosen by its values; the experts are drawn once, as the module that runs "
                "them all, and FLOPs are those of the code as it ran"
            )
    return ""


# Where a config's type has no base model (`AutoModel`), the auto classes that may list it,
# in the order a drawing would want them.
_HEADED_AUTO_CLASSES = (
    "AutoModelForCausalLM",
    "AutoModelForSeq2SeqLM",
    "AutoModelForMaskedLM",
    "AutoModelForImageClassification",
    "AutoModelForSpeechSeq2Seq",
    "AutoModelForCTC",
    "AutoModelForImageTextToText",
)


def auto_class(config: Any) -> tuple[Any, str]:
    """The auto class that builds `config`: `AutoModel` (the base model) where transformers
    lists the type there, else the first task's class that lists it (TrOCR is only a causal
    LM), with a note saying which."""
    import transformers

    for name in ("AutoModel", *_HEADED_AUTO_CLASSES):
        auto = getattr(transformers, name, None)
        mapping = getattr(auto, "_model_mapping", None)
        if auto is None or mapping is None:
            continue
        try:
            built = mapping[type(config)]
        except (KeyError, ValueError, ImportError, AttributeError):
            continue
        if name == "AutoModel":
            return auto, ""
        return auto, (
            f"{type(config).__name__} has no base model in transformers; "
            f"drawn as {built.__name__} ({name})"
        )
    return transformers.AutoModel, ""  # let AutoModel say what it knows


def default_language(model: torch.nn.Module, config: Any) -> str:
    """Models with per-language adapters (X-MOD) refuse to run until one is chosen: the
    config's default, else its first language, said in a note."""
    choose = getattr(model, "set_default_language", None)
    languages = list(getattr(config, "languages", None) or [])
    if choose is None or not languages:
        return ""
    language = getattr(config, "default_language", None) or languages[0]
    choose(language)
    return f"language adapters: drawn with {language!r} (of {len(languages)})"


def resolve_config(target: str, weights: bool) -> tuple[Any, str]:
    """(config, where it came from): a folder, a hub id, or "type" for a bare model type."""
    from transformers import AutoConfig
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    folder = Path(target).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise ModelNotFoundError(f"hf:{target}: the folder has no config.json")
        try:
            return AutoConfig.from_pretrained(str(folder)), str(folder)
        except (ValueError, KeyError, OSError) as exc:
            import transformers

            raise ModelLoadError(
                f"hf:{target}: transformers {transformers.__version__} cannot read its "
                f"config.json ({first_line(exc)}); check model_type, or upgrade transformers"
            ) from exc
    if target in CONFIG_MAPPING and "/" not in target and not weights:
        return _default_config(target), "type"
    tried = f"no folder {target!r} here"
    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
    reachable = not offline and hub_reachable()
    try:
        return AutoConfig.from_pretrained(target, local_files_only=not reachable), target
    except (OSError, ValueError) as exc:
        if offline:
            why = "offline (HF_HUB_OFFLINE is set)"
        elif not reachable:
            why = f"the hub ({_hub_host()}) cannot be reached"
        else:
            why = "the hub has no such model"
        tried += f", no hub model {target!r} in the cache and {why}"
        if target in CONFIG_MAPPING:
            return _default_config(target), "type"
        close = did_you_mean(target, model_types(), n=3, shown=lambda t: f"hf:{t}")
        hint = f"; {close}" if close else ""
        raise ModelNotFoundError(
            f"hf:{target}: {tried}{hint}. Download it once, or point at a local folder "
            "with config.json (hf:./my-checkpoint), or use a model type (hf:bert)"
        ) from exc


def _default_config(model_type: str) -> Any:
    """transformers' default config for a model type; some fail its own validation."""
    from huggingface_hub.errors import StrictDataclassError
    from transformers import AutoConfig

    try:
        return AutoConfig.for_model(model_type)
    except (
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        ImportError,
        StrictDataclassError,  # a config class's own validator refused its defaults
    ) as exc:
        # A validator's error says which validator on its first line and why on the next.
        why = " ".join(str(exc).split()) if isinstance(exc, StrictDataclassError) else ""
        raise ModelLoadError(
            f"transformers could not build hf:{model_type}'s default config "
            f"({why[:240] or first_line(exc)}); "
            "give a hub id or a folder with a config.json instead"
        ) from exc


def _hub_host() -> str:
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    return urlparse(endpoint).hostname or "huggingface.co"


def hub_reachable() -> bool:
    """One TCP connect with a short timeout: huggingface_hub itself retries for ~30 s."""
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        socket.create_connection((_hub_host(), port), timeout=HUB_TIMEOUT_S).close()
    except OSError:
        return False
    return True


# The fields configs count their layers in; `--layers N` caps each one it finds, in the config
# and in its sub-configs (text_config, vision_config, …), so no one needs to know the name.
LAYER_FIELDS = (
    "num_hidden_layers",
    "n_layer",
    "n_layers",
    "num_layers",
    "encoder_layers",
    "decoder_layers",
    "num_encoder_layers",
    "num_decoder_layers",
)


def shrink_layers(config: Any, layers: int, spec: str, stages: bool = True) -> str:
    """Cap every layer count of `config` (and of its sub-configs) at `layers`, and each
    stage's block count (`stages`); the note saying which fields changed."""
    from transformers import PretrainedConfig

    changed: list[str] = []
    seen: set[int] = set()
    staged: list[int | None] = []

    def visit(cfg: Any, prefix: str) -> None:
        if id(cfg) in seen:
            return
        seen.add(id(cfg))
        aliases = getattr(cfg, "attribute_map", None) or {}
        counted = _cap_stage_depths(cfg, layers, prefix, changed if stages else None)
        staged.append(counted)
        # T5 calls num_layers num_hidden_layers too: each field once, by its own name.
        for name in dict.fromkeys(aliases.get(n, n) for n in LAYER_FIELDS):
            value = _layer_count(cfg, name)
            if value is not None and value == counted:
                continue  # it counts the stages (ConvNeXt's 4), whose lists must agree
            if value is not None and value > layers:
                try:
                    setattr(cfg, name, layers)
                except (NotImplementedError, AttributeError, TypeError, ValueError):
                    continue  # a read-only sum (ProphetNet's): its parts are capped by name
                if _layer_count(cfg, name) != layers:
                    _cut_layer_lists(cfg, value, layers)
                changed.append(f"{prefix}{name} {value} -> {layers}")
        _match_layer_types(cfg)
        for key, value in vars(cfg).items():
            if isinstance(value, PretrainedConfig):
                visit(value, f"{prefix}{key}.")

    visit(config, "")
    counted = any(_layer_count(config, n) is not None for n in LAYER_FIELDS)
    if not changed and not counted and not any(staged):
        return (
            f"--layers {layers}: {spec}'s config has no layer count fxviz knows "
            f"({', '.join(LAYER_FIELDS)}, or per-stage {', '.join(STAGE_DEPTHS)}): drawn as "
            "configured; set its own fields with --config key=value"
        )
    return f"--layers {layers}: {', '.join(changed)}" if changed else ""


# Per-stage block counts of models built in stages (ConvNeXt's depths [3, 3, 9, 3]): `--layers
# N` caps each stage at N blocks and keeps every stage, so the lists that describe the stages
# (hidden_sizes, num_heads, strides) still agree with each other.
STAGE_DEPTHS = ("depths", "depth", "num_block_repeats")


STAGE_KEPT = "stages keep their block counts (transformers cannot build them capped)"


def _has_stages(config: Any) -> bool:
    """The config (or a sub-config) lists a block count per stage."""
    from transformers import PretrainedConfig

    lists = (getattr(config, name, None) for name in STAGE_DEPTHS)
    if any(isinstance(v, list | tuple) and v for v in lists):
        return True
    return any(_has_stages(v) for v in vars(config).values() if isinstance(v, PretrainedConfig))


def _cap_stage_depths(cfg: Any, layers: int, prefix: str, changed: list[str] | None) -> int | None:
    """Cap each stage's block count at `layers` (only count them when `changed` is None);
    the number of stages (None without stages)."""
    stages = None
    for name in STAGE_DEPTHS:
        value = getattr(cfg, name, None)
        if not isinstance(value, list | tuple) or not value:
            continue
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            continue
        stages = len(value)
        capped = type(value)(min(v, layers) for v in value)
        if changed is not None and capped != value:
            setattr(cfg, name, capped)
            changed.append(f"{prefix}{name} {list(value)} -> {list(capped)}")
    return stages


def _layer_count(config: Any, name: str) -> int | None:
    """A config's layer count by that field's name: a stored field or a property derived
    from a per-layer list (Nemotron-H counts `layers_block_type`); None where it has none."""
    try:
        value = getattr(config, name, None)
    except (AttributeError, TypeError, ValueError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _cut_layer_lists(config: Any, count: int, layers: int) -> None:
    """A count the config derives from per-layer lists ignores being set: cut each list of
    `count` entries (a type per layer) to its first `layers`."""
    for key, value in config.to_dict().items():
        if isinstance(value, list) and len(value) == count:
            setattr(config, key, value[:layers])


def _match_layer_types(config: Any) -> None:
    """Configs that list a type per layer must list as many as there are layers. The list
    transformers' masks and caches read, a config's own `layer_types` (attention kinds),
    keeps every kind it has room for (`layer_kinds_kept`); a model's own list under that
    name (Zamba's `layers_block_type`, tied to its hybrid layers' ids) is cut as it is."""
    types = getattr(config, "layer_types", None)
    count = getattr(config, "num_hidden_layers", None)
    if isinstance(types, list) and isinstance(count, int) and len(types) != count and types:
        fitted = (types * count)[:count]
        if "layer_types" in vars(config) and len(types) > count:
            fitted = layer_kinds_kept(types, count)
        config.layer_types = fitted


def layer_kinds_kept(types: list[Any], layers: int) -> list[Any]:
    """The first `layers` of a per-layer list of kinds, with every kind the list has while
    there is room: each kind the first `layers` lack takes the place of the last repeated
    entry, so a shrunk model keeps every kind of layer it can. Gemma 3's five sliding-window
    layers to one global become [sliding, global] at 2 layers, not two sliding ones, and
    Qwen3.5, whose first three layers are linear attention, keeps a full attention layer
    (without one its cache cannot count the tokens it has seen)."""
    kept = list(types[:layers])
    for kind in dict.fromkeys(types):
        if kind in kept:
            continue
        repeated = [i for i, k in enumerate(kept) if kept.count(k) > 1]
        if not repeated:
            break
        kept[repeated[-1]] = kind
    return kept


def apply_overrides(config: Any, overrides: tuple[str, ...], spec: str) -> None:
    """`--config key=value`: only keys the config has (nested ones as text_config.key)."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"--config {item!r}: write key=value, e.g. num_hidden_layers=2")
        target, attr = config, key.strip()
        while "." in attr:
            head, attr = attr.split(".", 1)
            target = getattr(target, head, None)
            if target is None:
                raise SpecError(f"--config {item!r}: {spec} has no sub-config {head!r}")
        known = sorted(set(target.to_dict()) | set(getattr(target, "attribute_map", {})))
        if attr not in known:
            raise SpecError(
                f"--config {item!r}: {type(target).__name__} has no {attr!r}; "
                + _missing_key_hint(target, attr, known)
            )
        try:
            value = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            value = raw.strip()
        current = getattr(target, attr)
        if (
            current is not None
            and isinstance(current, int | float)
            and not isinstance(value, int | float)
        ):
            raise SpecError(f"--config {item!r}: {attr} is a number (now {current}), not {raw!r}")
        setattr(target, attr, value)
    _match_layer_types(config)


def _missing_key_hint(config: Any, attr: str, known: list[str]) -> str:
    """Where the key is: in a sub-config (a composite model's `text_config`), a close
    spelling, or the fields there are; a layer count also points at --layers."""
    subs = {name: getattr(config, name, None) for name in sorted(config.to_dict())}
    nested = [
        f"{name}.{attr}"
        for name, sub in subs.items()
        if sub is not None and hasattr(sub, "to_dict") and attr in sub.to_dict()
    ]
    layers = " (--layers N caps every layer count)" if attr in LAYER_FIELDS else ""
    if nested:
        return f"its sub-configs have {' and '.join(nested)}{layers}"
    close = did_you_mean(attr, known, n=3)
    if close:
        return close + layers
    shown = ", ".join(k for k in known if not k.startswith("_"))
    return f"its fields are {shown[:300]}{'…' if len(shown) > 300 else ''}{layers}"


def default_inputs(
    model: torch.nn.Module, config: Any, batch: int = 1, seq: int | None = None
) -> list[InputSpec]:
    """Dummy inputs from the config: token ids, pixels, audio features, decoder ids."""
    params = inspect.signature(model.forward).parameters
    vision = getattr(config, "vision_config", None) or config
    text = getattr(config, "text_config", None) or config
    if seq is None:
        limit = getattr(text, "max_position_embeddings", None)
        # Some configs have no limit (XLNet says -1): keep the default length.
        seq = min(SEQ_LEN, limit) if isinstance(limit, int) and limit > 0 else SEQ_LEN
    specs: list[InputSpec] = []
    if "input_ids" in params:
        specs.append(InputSpec((batch, seq), "int64", "input_ids"))
        if "attention_mask" in params:
            specs.append(InputSpec((batch, seq), "int64", "attention_mask"))
    if "pixel_values" in params:
        size = getattr(vision, "image_size", 224)
        size = size if isinstance(size, int) else int(size[0]) if size else 224
        channels = int(getattr(vision, "num_channels", 3))
        specs.append(InputSpec((batch, channels, size, size), "float32", "pixel_values"))
    if "input_features" in params:
        frames = 2 * int(getattr(config, "max_source_positions", 1500))
        per_channel = getattr(config, "input_feat_per_channel", None)
        if isinstance(per_channel, int):  # Speech2Text: frames first, then the features
            features = per_channel * int(getattr(config, "input_channels", 1))
            shape = (batch, min(frames, 3000), features)
        else:  # Whisper: mel bins first, then the frames
            shape = (batch, int(getattr(config, "num_mel_bins", 80)), frames)
        specs.append(InputSpec(shape, "float32", "input_features"))
    if "input_values" in params:
        specs.append(InputSpec((batch, 16000), "float32", "input_values"))
    if getattr(config, "is_encoder_decoder", False) and "decoder_input_ids" in params:
        specs.append(InputSpec((batch, seq), "int64", "decoder_input_ids"))
    if not specs:
        main = getattr(model, "main_input_name", "input_ids")
        raise SpecError(
            f"fxviz does not know what {type(model).__name__} takes ({main}); "
            f"pass --input {main}=dtype:shape"
        )
    return specs


# Config fields that decide how a model computes but that no module's repr shows. Sizes and
# counts are not here: the layers' shapes show them.
ARCHITECTURE_FIELDS = (
    "position_embedding_type",
    "max_position_embeddings",
    "n_positions",
    "rope_parameters",
    "rope_theta",
    "rope_scaling",
    "partial_rotary_factor",
    "sliding_window",
    "use_sliding_window",
    "window_size",
    "attention_layers",
    "layer_types",
    "attn_logit_softcapping",
    "final_logit_softcapping",
    "scale_attn_weights",
    "use_parallel_residual",
    "is_decoder",
)


def architecture_words(config: Any) -> str:
    """`max_position_embeddings=131072, rope_theta=10000.0, sliding_window=4096`: the
    architecture fields a config sets, lists written as runs (`[global, local]×1`)."""
    data = config.to_dict() if hasattr(config, "to_dict") else {}
    parts = []
    for key in ARCHITECTURE_FIELDS:
        value = data.get(key)
        if value is None or value is False:
            continue
        if isinstance(value, dict):
            parts += [f"{k}={v}" for k, v in sorted(value.items()) if v is not None]
        elif isinstance(value, list):
            parts.append(f"{key}={_runs(value)}")
        else:
            parts.append(f"{key}={value}")
    return ", ".join(parts)


def _runs(items: list[Any]) -> str:
    """`[global, local]×6` for a list that repeats one period, else the items with counts."""
    for period in range(1, len(items) // 2 + 1):
        if len(items) % period == 0 and items == items[:period] * (len(items) // period):
            return f"[{' '.join(map(str, items[:period]))}]×{len(items) // period}"
    return "[" + " ".join(map(str, items)) + "]"
