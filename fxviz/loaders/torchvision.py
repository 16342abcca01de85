"""Models from `torchvision.models`, built with weights=None unless --weights asks for them."""

from __future__ import annotations

import inspect
import sys
from typing import Any

import torch
import torchvision.models as tvm

from fxviz.errors import ModelLoadError, ModelNotFoundError, did_you_mean
from fxviz.loaders import LoadedModel, LoadOptions, keyword_hint
from fxviz.loaders.inputs import make_inputs
from fxviz.loaders.meta import build_on
from fxviz.loaders.torch_internals import torchvision_weights_only
from fxviz.specs import InputSpec, ModelSpec


def list_torchvision_models() -> list[str]:
    return sorted(tvm.list_models())


def load_torchvision(spec: ModelSpec, options: LoadOptions, device: str) -> LoadedModel:
    name = spec.target
    names = list_torchvision_models()
    if name not in names:
        hint = did_you_mean(name, names, n=3) or "`fxviz list` shows them all"
        raise ModelNotFoundError(f"no torchvision model named {name!r}; {hint}")
    builder = tvm.get_model_builder(name)
    kwargs = _builder_kwargs(builder, options)
    try:
        with torchvision_weights_only():
            module, note = build_on(device, lambda: builder(**kwargs))
    except (TypeError, ValueError) as exc:
        hint = keyword_hint(exc, sys.modules[builder.__module__])
        raise ModelLoadError(
            f"building torchvision {name}({_show(kwargs)}) failed: {exc}{hint}"
        ) from exc
    except (OSError, RuntimeError) as exc:
        if options.weights:
            raise ModelLoadError(
                f"cannot load {options.weights} weights for {name}: {exc}; weights are downloaded "
                "once into ~/.cache/torch; without network, draw without --weights"
            ) from exc
        raise
    module.eval()
    specs = options.inputs or default_inputs(name, module)
    if isinstance(specs, list):
        args: tuple[Any, ...] = (make_inputs(specs, device)[0],)
        call_kwargs: dict[str, Any] = {}
    else:
        args, call_kwargs = make_inputs(specs, device)
    notes = [note] if note else []
    return LoadedModel(
        module, args, call_kwargs, name=name, source=spec.text, device=device, notes=notes
    )


def _builder_kwargs(builder: Any, options: LoadOptions) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"weights": options.weights}
    if "weights_backbone" in inspect.signature(builder).parameters:
        kwargs["weights_backbone"] = None
    if "quantize" in inspect.signature(builder).parameters:
        kwargs["quantize"] = False
    kwargs.update(options.kwargs)
    return kwargs


def _show(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


def default_inputs(name: str, module: torch.nn.Module) -> tuple[InputSpec, ...] | list[InputSpec]:
    """The input each family expects; a list means "one list argument" (detection models).

    Sizes come from the model itself where it fixes one (ViT's image_size), else from the
    published weights' preprocessing (inception 299, efficientnet_b7 600, video 112/224).
    """
    family = _family(name)
    crop, frames = _crop_size(name)
    size = getattr(module, "image_size", None) or crop
    if family == "video":
        return (InputSpec((1, 3, frames, size, size)),)
    if family == "optical_flow":
        return (InputSpec((1, 3, 224, 224)), InputSpec((1, 3, 224, 224)))
    if family == "segmentation":
        return (InputSpec((1, 3, 520, 520)),)
    if family == "detection":
        return [InputSpec((3, 320, 320))]
    return (InputSpec((1, 3, size, size)),)


def _family(name: str) -> str:
    parts = tvm.get_model_builder(name).__module__.split(".")
    known = {"video", "optical_flow", "segmentation", "detection", "quantization"}
    return parts[2] if len(parts) > 3 and parts[2] in known else "classification"


def _crop_size(name: str) -> tuple[int, int]:
    try:
        weights = tvm.get_model_weights(name).DEFAULT
    except (ValueError, AttributeError):
        return 224, 16
    crop = getattr(weights.transforms, "keywords", {}).get("crop_size", 224)
    frames = max(16, int(weights.meta.get("min_temporal_size", 16)))
    return (crop[0] if isinstance(crop, tuple) else int(crop)), frames
