"""Example inputs: tensors made from --input specs, and user-provided ones moved to a device."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from fxviz.loaders.torch_internals import tree_map
from fxviz.specs import InputSpec


def make_inputs(
    specs: Sequence[InputSpec], device: str
) -> tuple[tuple[torch.Tensor, ...], dict[str, Any]]:
    """Tensors for --input specs: positional ones in order, named ones as keyword arguments.

    Values are zeros for integer dtypes (valid token ids and indices) and a seeded normal
    sample for floats, so runs are reproducible; on meta only shapes exist.
    """
    generator = torch.Generator().manual_seed(0)
    args: list[torch.Tensor] = []
    kwargs: dict[str, Any] = {}
    for spec in specs:
        if spec.value is not None and spec.name is not None:
            kwargs[spec.name] = spec.value
            continue
        tensor = make_tensor(spec, device, generator)
        if spec.name is None:
            args.append(tensor)
        else:
            kwargs[spec.name] = tensor
    return tuple(args), kwargs


def make_tensor(spec: InputSpec, device: str, generator: torch.Generator) -> torch.Tensor:
    dtype = getattr(torch, spec.dtype)
    if device == "meta":
        return torch.empty(spec.shape, dtype=dtype, device="meta")
    if dtype.is_floating_point or dtype.is_complex:
        return torch.randn(spec.shape, generator=generator).to(device=device, dtype=dtype)
    return torch.zeros(spec.shape, dtype=dtype, device=device)


def move_inputs(value: Any, device: str) -> Any:
    """Move every tensor in a nested structure of inputs to `device`."""
    return tree_map(lambda x: x.to(device) if isinstance(x, torch.Tensor) else x, value)


def positional_names(module: torch.nn.Module) -> list[str]:
    """The names of `forward`'s parameters, for messages about missing inputs."""
    import inspect

    try:
        params = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def example_input(model: torch.nn.Module) -> str:
    """A first input shape the model would take, read from its first layer: `1,10` before a
    Linear(10, …), `1,3,32,32` before a Conv2d(3, …), `int64:1,16` before an Embedding."""
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            return f"1,{module.in_features}"
        if isinstance(module, torch.nn.Embedding | torch.nn.EmbeddingBag):
            return "int64:1,16"
        if isinstance(module, torch.nn.modules.conv._ConvNd):
            spatial = {1: "64", 2: "32,32", 3: "8,32,32"}[len(module.kernel_size)]
            return f"1,{module.in_channels},{spatial}"
        if isinstance(module, torch.nn.RNNBase):
            return (
                f"1,12,{module.input_size}" if module.batch_first else f"12,1,{module.input_size}"
            )
    return "1,3,224,224"
