"""Tracers: from an nn.Module and example inputs to the typed Graph."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from fxviz.graph import Graph
from fxviz.tracing.annotate import build_graph
from fxviz.tracing.fx import symbolic_trace
from fxviz.tracing.shapes import ShapePropagation

TRACERS = ("auto", "fx")


def trace_module(
    model: torch.nn.Module,
    args: Sequence[Any] = (),
    kwargs: dict[str, Any] | None = None,
    *,
    name: str | None = None,
    source: str = "",
    leaf_types: tuple[type[torch.nn.Module], ...] = (),
    notes: Sequence[str] = (),
) -> Graph:
    """Trace `model` with fx and propagate shapes on the device its inputs live on."""
    kwargs = kwargs or {}
    device = _device_of(model, args, kwargs)
    gm = symbolic_trace(model, leaf_types)
    propagation = ShapePropagation(gm, device)
    propagation.propagate(tuple(args), kwargs)
    return build_graph(
        gm,
        model,
        name=name or type(model).__name__,
        source=source or type(model).__name__,
        tracer="fx",
        device=device,
        notes=(*notes, *propagation.notes),
    )


def _device_of(model: torch.nn.Module, args: Sequence[Any], kwargs: dict[str, Any]) -> str:
    for value in (*args, *kwargs.values(), *model.parameters()):
        if isinstance(value, torch.Tensor):
            return value.device.type
    return "cpu"
