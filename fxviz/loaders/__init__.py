"""Loaders turn a model spec into a module plus example inputs, built on the requested device."""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fxviz.errors import DeviceError, SpecError, did_you_mean
from fxviz.specs import InputSpec, ModelSpec, parse_model_spec

if TYPE_CHECKING:
    import torch

DEVICES = ("meta", "cpu", "cuda")


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """How to build a model: inputs override the loader's defaults; device None means meta
    unless weights are asked for (then cpu); config holds `key=value` overrides (Hugging Face)."""

    inputs: tuple[InputSpec, ...] = ()
    kwargs: tuple[tuple[str, object], ...] = ()
    device: str | None = None
    weights: str | None = None
    config: tuple[str, ...] = ()
    # Every layer-count field of a Hugging Face config, top-level and nested, at most this.
    layers: int | None = None


@dataclass(slots=True)
class LoadedModel:
    """A built model in eval mode, with the inputs to trace it with, on `device`; `program`
    is set for saved torch.export programs, whose `module` is the program's graph module."""

    module: torch.nn.Module
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    name: str
    source: str
    device: str
    notes: list[str] = field(default_factory=list)
    program: torch.export.ExportedProgram | None = None
    # The keyword inputs without images, for a model that takes images only optionally (a
    # vision-language model): drawn when the dummy images do not fit what the model expects.
    text_only: dict[str, Any] | None = None


def resolve_device(device: str | None, weights: str | None) -> str:
    """Pick and check the device: meta by default, cpu when weights are loaded."""
    if device is None:
        return "cpu" if weights else "meta"
    if device.split(":")[0] not in DEVICES:
        raise SpecError(f"--device {device!r}: choose one of {', '.join(DEVICES)}")
    if device == "meta" and weights:
        raise SpecError("--weights needs real memory: use --device cpu or cuda, not meta")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise DeviceError(
                f"--device {device}: torch sees no CUDA GPU here (torch {torch.__version__}, "
                f"built for CUDA {torch.version.cuda or 'none'}); use --device meta or cpu"
            )
    return device


def load(spec: str | ModelSpec, options: LoadOptions | None = None) -> LoadedModel:
    """Resolve a model spec (`resnet18`, `net.py:Net`, …) to a built model and its inputs."""
    options = options or LoadOptions()
    parsed = parse_model_spec(spec) if isinstance(spec, str) else spec
    if options.config and parsed.kind != "hf":
        raise SpecError(f"--config applies to Hugging Face models (hf:...), not {parsed.text!r}")
    if options.layers is not None and parsed.kind != "hf":
        raise SpecError(
            f"--layers applies to Hugging Face models (hf:...), not {parsed.text!r}; a "
            "torchvision or file model takes its depth as a constructor argument (--kwarg)"
        )
    if options.layers is not None and options.layers < 1:
        raise SpecError(f"--layers {options.layers}: give 1 or more")
    device = resolve_device(options.device, options.weights)
    if parsed.kind == "torchvision":
        from fxviz.loaders.torchvision import load_torchvision

        return load_torchvision(parsed, options, device)
    if parsed.kind == "userfile":
        from fxviz.loaders.userfile import load_userfile

        return load_userfile(parsed, options, device)
    if parsed.kind == "hf":
        from fxviz.loaders.huggingface import load_huggingface

        return load_huggingface(parsed, options, device)
    from fxviz.loaders.exported import load_exported

    return load_exported(parsed, options, device)


def keyword_hint(exc: BaseException, namespace: object) -> str:
    """`; did you mean num_classes?` for `Net.__init__() got an unexpected keyword argument
    'num_clases'`, from the signature of the class named in the message."""
    found = re.search(r"(\w+)\.__init__\(\) got an unexpected keyword argument '(\w+)'", str(exc))
    cls = getattr(namespace, found[1], None) if found else None
    if found is None or not inspect.isclass(cls):
        return ""
    names = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    hint = did_you_mean(found[2], names)
    return f"; {hint}" if hint else f"; {found[1]} takes {', '.join(names)}"
