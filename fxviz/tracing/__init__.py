"""Tracers: from an nn.Module and example inputs to the typed Graph.

`auto` tries torch.fx first (module-level graphs, exact leaf boxes), then torch.export (follows
Python control flow that fx cannot); the graph's notes say which one drew and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch

from fxviz.errors import SpecError, TraceError
from fxviz.graph import Graph, Totals
from fxviz.tracing.annotate import build_graph, count_buffers, count_params, module_tree
from fxviz.tracing.export import export_module, lift_export_graph, name_outputs
from fxviz.tracing.fx import symbolic_trace
from fxviz.tracing.shapes import ShapePropagation

Tracer = Literal["auto", "fx", "export"]
TRACERS: tuple[Tracer, ...] = ("auto", "fx", "export")


def trace_module(
    model: torch.nn.Module,
    args: Sequence[Any] = (),
    kwargs: dict[str, Any] | None = None,
    *,
    name: str | None = None,
    source: str = "",
    tracer: str = "auto",
    leaf_types: tuple[type[torch.nn.Module], ...] = (),
    notes: Sequence[str] = (),
) -> Graph:
    """Trace `model` and propagate shapes on the device its inputs live on."""
    if tracer not in TRACERS:
        raise SpecError(f"--tracer {tracer!r}: choose one of {', '.join(TRACERS)}")
    kwargs = kwargs or {}
    device = _device_of(model, args, kwargs)
    name = name or type(model).__name__
    source = source or type(model).__name__
    fx_failure: TraceError | None = None
    if tracer in ("auto", "fx"):
        try:
            gm = symbolic_trace(model, leaf_types)
        except TraceError as exc:
            if tracer == "fx":
                raise
            fx_failure = exc
            notes = (*notes, f"torch.fx could not trace it ({exc.reason}); drawn with torch.export")
        else:
            propagation = ShapePropagation(gm, device)
            propagation.propagate(tuple(args), kwargs)
            return build_graph(
                gm,
                model,
                name=name,
                source=source,
                tracer="fx",
                device=device,
                notes=(*notes, *propagation.notes),
            )
    try:
        program = export_module(model, args, kwargs)
    except TraceError as exc:
        if fx_failure is None:
            raise
        raise TraceError(
            f"neither tracer can follow {name}: torch.fx: {fx_failure.reason}; "
            f"torch.export: {exc.reason}"
        ) from exc
    gm = program.module()
    propagation = ShapePropagation(gm, device)
    propagation.propagate(tuple(args), kwargs)
    nodes = name_outputs(lift_export_graph(gm, model, leaf_types), program)
    return Graph(
        name=name,
        source=source,
        tracer="export",
        device=device,
        nodes=nodes,
        modules=module_tree(model),
        totals=Totals(
            params=count_params(model.parameters()),
            buffers=count_buffers(model),
            flops=sum(n.flops for n in nodes),
        ),
        notes=(*notes, *propagation.notes),
    )


def _device_of(model: torch.nn.Module, args: Sequence[Any], kwargs: dict[str, Any]) -> str:
    for value in (*args, *kwargs.values(), *model.parameters()):
        if isinstance(value, torch.Tensor):
            return value.device.type
    return "cpu"
