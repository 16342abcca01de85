"""Building models without memory for their weights.

`torch.device("meta")` makes every tensor a constructor creates a meta tensor: instant and
free, but some constructors compute with tensors (torchvision's regnet derives its widths
with `torch.round(...).tolist()`), which meta cannot do. Then the model is rebuilt with only
its parameters and buffers moved to meta as they are registered.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch

T = TypeVar("T")
REBUILT_NOTE = "its constructor computes with tensors: built with only weights on meta"


def build_on(device: str, build: Callable[[], T]) -> tuple[T, str | None]:
    """(built object, a note when the fallback was needed)."""
    if device != "meta":
        with torch.device(device):
            return build(), None
    try:
        with torch.device("meta"):
            return build(), None
    except (NotImplementedError, RuntimeError) as exc:
        if not is_meta_failure(exc):
            raise
    with weights_on_meta():
        return build(), REBUILT_NOTE


def is_meta_failure(exc: BaseException) -> bool:
    """No meta kernel, data read from a meta tensor, or a custom op without a fake impl."""
    text = str(exc)
    return isinstance(exc, NotImplementedError) or any(
        marker in text
        for marker in ("meta tensor", "on meta tensors", "with Meta tensors", "fake impl")
    )


@contextlib.contextmanager
def weights_on_meta() -> Iterator[None]:
    """Move each parameter and buffer to meta as a module registers it; always restored.

    Only `torch.empty`-style allocation of one tensor at a time happens on CPU; initialisers
    then run on meta tensors, for free."""
    register_parameter = torch.nn.Module.register_parameter
    register_buffer = torch.nn.Module.register_buffer

    def parameter_on_meta(module: torch.nn.Module, name: str, param: Any) -> None:
        register_parameter(module, name, param)
        if param is not None and not param.is_meta:
            kind = type(param)
            module._parameters[name] = kind(param.to("meta"), requires_grad=param.requires_grad)

    def buffer_on_meta(
        module: torch.nn.Module, name: str, tensor: Any, persistent: bool = True
    ) -> None:
        if isinstance(tensor, torch.Tensor) and not tensor.is_meta:
            tensor = tensor.to("meta")
        register_buffer(module, name, tensor, persistent=persistent)

    torch.nn.Module.register_parameter = parameter_on_meta  # type: ignore[method-assign, assignment]
    torch.nn.Module.register_buffer = buffer_on_meta  # type: ignore[method-assign, assignment]
    try:
        yield
    finally:
        torch.nn.Module.register_parameter = register_parameter  # type: ignore[method-assign]
        torch.nn.Module.register_buffer = register_buffer  # type: ignore[method-assign]
