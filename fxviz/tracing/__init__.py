"""Tracers: from an nn.Module and example inputs to the typed Graph.

`auto` tries torch.fx first (module-level graphs, exact leaf boxes); then a run recorded on
fake tensors (follows whatever Python runs, for this input; shapes only, so nothing is
allocated, and it costs a fraction of torch.export); then torch.export (follows code whose
shapes depend on values, symbolically); then a run recorded on real values (a detection
model's box counts). The graph's notes say which one drew and why the earlier ones did not.

One contract for all: each produces a module-level `torch.fx.Graph` whose nodes carry
their values and FLOPs in `meta` (fx natively, then shape propagation; export through
`lift_export_graph`, a pass over the propagated ATen graph; the recorder by appending nodes as
the model runs). `annotate.fx_nodes` is the one converter to typed Nodes, and
`annotate.assemble_graph` adds the module tree, each module's parameters (once, on its first
call) and the totals. The contract tests check that the tracers agree at module level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch

from fxviz.errors import ShapeError, SpecError, TraceError
from fxviz.graph import Graph, Node
from fxviz.specs import check_tracer
from fxviz.tracing.annotate import assemble_graph, fx_nodes
from fxviz.tracing.export import (
    Exported,
    argument_leaves,
    export_module,
    lift_export_graph,
    name_outputs,
    program_module_tree,
)
from fxviz.tracing.fx import symbolic_trace
from fxviz.tracing.record import record_module
from fxviz.tracing.shapes import ShapePropagation, device_of


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
    expand: tuple[str, ...] = (),
    values: bool = True,
) -> Graph:
    """Trace `model` and propagate shapes on the device its inputs live on.

    `expand` names built-in module classes to draw from inside (`("LSTM",)`): the model is
    exported and decomposed, so an LSTM shows its gates rather than one box. Without
    `values`, no tracer runs the model on real values (for a meta model, on a CPU copy)."""
    check_tracer(tracer)
    kwargs = kwargs or {}
    device = device_of(model, args, kwargs)
    name = name or type(model).__name__
    source = source or type(model).__name__
    failures: list[str] = []
    if expand:
        missing = set(expand) - _classes(model)
        if missing:
            known = ", ".join(sorted(_classes(model)))
            raise SpecError(f"--expand {sorted(missing)[0]}: {name} has none; its classes: {known}")
        exported = export_module(model, args, kwargs, leaf_types)
        exported.program = exported.program.run_decompositions()
        nodes, export_notes = _lifted(exported, model, args, kwargs, device, leaf_types, expand)
        expanded = [f"drawn inside {', '.join(expand)} (torch.export, decomposed)"]
        return _graph(
            model, nodes, name, source, "export", device, notes, (), [*expanded, *export_notes]
        )
    if tracer in ("auto", "fx"):
        try:
            traced = symbolic_trace(model, leaf_types)
        except TraceError as exc:
            if tracer == "fx":
                raise
            failures.append(f"torch.fx: {exc.reason}")
        else:
            propagation = ShapePropagation(traced.root, device, graph=traced.graph)
            try:
                propagation.propagate(tuple(args), kwargs)
            except ShapeError as exc:
                # Usually the input is wrong, and export will say the same; but an fx graph
                # can also fail where eager code does not. Export decides which it is.
                if tracer == "fx":
                    raise
                return _after_fx_shape_error(
                    exc, model, args, kwargs, name, source, notes, leaf_types, device
                )
            opaque = [
                f"torch.fx could not trace inside {path} ({why}); drawn as one box"
                for path, why in traced.opaque.items()
            ]
            return assemble_graph(
                model,
                fx_nodes(traced.graph, traced.root),
                name,
                source,
                "fx",
                device,
                (*notes, *opaque, *propagation.notes),
            )
    if tracer in ("auto", "record"):
        # A run on fake tensors before torch.export: the same module-level graph (the
        # contract tests check it) at a fraction of the cost, as it builds no program.
        try:
            nodes, device, record_notes = record_module(model, args, kwargs, leaf_types)
        except TraceError as exc:
            failures.append(f"{SHAPES_ONLY}: {exc.reason}")
        else:
            return _graph(
                model, nodes, name, source, "record", device, notes, failures, record_notes
            )
    if tracer in ("auto", "export"):
        try:
            exported = export_module(model, args, kwargs, leaf_types)
        except TraceError as exc:
            if tracer == "export":
                raise
            failures.append(f"torch.export: {exc.reason}")
        else:
            nodes, export_notes = _lifted(exported, model, args, kwargs, device, leaf_types)
            return _graph(
                model, nodes, name, source, "export", device, notes, failures, export_notes
            )
    if not values and failures:
        # The run on fake tensors says best what did not fit: fx and export fail on more.
        why = next((f for f in failures if f.startswith(SHAPES_ONLY)), failures[-1])
        raise _none_can_draw(name, failures, reason=why.split(": ", 1)[-1])
    try:
        nodes, device, record_notes = record_module(model, args, kwargs, leaf_types, values=True)
    except TraceError as exc:
        if tracer == "record":
            raise  # its own message: the run on real values says most
        failures.append(f"recording a run: {exc.reason}")
        raise _none_can_draw(name, failures) from exc
    return _graph(
        model, tuple(nodes), name, source, "record", device, notes, failures, record_notes
    )


def _none_can_draw(name: str, failures: Sequence[str], reason: str = "") -> TraceError:
    return TraceError(f"no tracer can draw {name}: " + "; ".join(failures), reason=reason)


def _after_fx_shape_error(
    error: ShapeError,
    model: torch.nn.Module,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    name: str,
    source: str,
    notes: Sequence[str],
    leaf_types: tuple[type[torch.nn.Module], ...],
    device: str,
) -> Graph:
    try:
        exported = export_module(model, args, kwargs, leaf_types)
    except TraceError:
        raise error from None
    nodes, export_notes = _lifted(exported, model, args, kwargs, device, leaf_types)
    failures = [f"torch.fx: its graph failed where the model itself runs ({error.reason})"]
    return _graph(model, nodes, name, source, "export", device, notes, failures, export_notes)


def _lifted(
    exported: Exported,
    model: torch.nn.Module,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    device: str,
    leaf_types: tuple[type[torch.nn.Module], ...],
    expand: tuple[str, ...] = (),
) -> tuple[tuple[Node, ...], list[str]]:
    """Shapes and FLOPs on the exported graph, lifted to module level: (nodes, notes)."""
    gm = exported.program.module()
    in_spec = exported.program.call_spec.in_spec
    propagation = ShapePropagation(gm, device, in_spec)
    propagation.propagate(tuple(args), kwargs)
    arguments = argument_leaves(model, args, kwargs, in_spec)
    lifted = lift_export_graph(gm, model, leaf_types, expand, exported.call_outputs, arguments)
    return name_outputs(fx_nodes(lifted, model), exported.program), propagation.notes


def _classes(model: torch.nn.Module) -> set[str]:
    return {type(m).__name__ for m in model.modules()} - {type(model).__name__}


def trace_program(
    program: torch.export.ExportedProgram,
    gm: torch.nn.Module,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    *,
    name: str,
    source: str,
    notes: Sequence[str] = (),
) -> Graph:
    """Draw a saved torch.export program: no source, so no other tracer applies."""
    assert isinstance(gm, torch.fx.GraphModule)
    device = device_of(gm, args, kwargs)
    propagation = ShapePropagation(gm, device)
    propagation.propagate(tuple(args), kwargs)
    nodes = name_outputs(fx_nodes(lift_export_graph(gm, gm), gm), program)
    graph = _graph(gm, nodes, name, source, "export", device, notes, (), propagation.notes)
    return replace(graph, modules=program_module_tree(gm))


def _graph(
    model: torch.nn.Module,
    nodes: tuple[Node, ...],
    name: str,
    source: str,
    tracer: str,
    device: str,
    notes: Sequence[str],
    failures: Sequence[str],
    tracer_notes: Sequence[str],
) -> Graph:
    why = [f"{f.split(':', 1)[0]} could not trace it ({f.split(': ', 1)[1]})" for f in failures]
    drawn = [f"{'; '.join(why)}; drawn with {_TRACER_NAMES[tracer]}"] if why else []
    return assemble_graph(
        model, nodes, name, source, tracer, device, (*notes, *drawn, *tracer_notes)
    )


_TRACER_NAMES = {"export": "torch.export", "record": "a recorded run"}
SHAPES_ONLY = "a run on fake tensors"  # the recorder's first try: shapes, no values
