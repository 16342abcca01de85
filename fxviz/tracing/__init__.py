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
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from fxviz.tracing.symbolic import Symbols


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


def with_symbolic_shapes(
    graph: Graph,
    model: torch.nn.Module,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    given: tuple[str, ...] = (),
) -> Graph:
    """`graph` with each tensor's dims as expressions of named input dims, from a run on
    symbolic shapes (`record_symbolic`), and the constraints that run found. A node's
    expressions are kept where, at this call's sizes, they give the shapes `graph` has; where
    the run on symbolic shapes fails (a size read from values), `graph` keeps its numbers
    and a note says why."""
    from fxviz.graph import Symbolic
    from fxviz.tracing.record import _named_inputs, record_symbolic
    from fxviz.tracing.symbolic import constraints, fixed_dims, name_dims, specialized

    named_inputs = _named_inputs(model, tuple(args), kwargs)
    dims = name_dims(named_inputs, given)
    if not dims:
        tensors = [n for n, v in named_inputs if isinstance(v, torch.Tensor)]
        note = (
            f"--symbolic: no dim of {', '.join(tensors)} is one fxviz names; give one "
            f"(--dim N={tensors[0]}.0); drawn with numbers"
            if tensors
            else "--symbolic: the inputs are not tensors (lists or dicts of them are not "
            "named); drawn with numbers"
        )
        return replace(graph, notes=(*graph.notes, note))
    try:
        recorded, symbols, guards = record_symbolic(model, args, kwargs, dims)
    except (TraceError, ShapeError) as exc:
        note = (
            f"--symbolic: the model cannot run on symbolic sizes ({exc.reason}); drawn with numbers"
        )
        return replace(graph, notes=(*graph.notes, note))
    fixed = fixed_dims(symbols)
    ops = _fixed_by_ops(model, args, kwargs, dims, fixed)
    recorded = specialized(recorded, symbols, ops)
    notes = list(graph.notes)
    if ops:
        where = {n: next((i for i, g in guards if _fixes(g, n, symbols)), "?") for n in ops}
        said = ", ".join(f"{n} (at {where[n]})" for n in sorted(ops))
        notes.append(
            f"--symbolic: an op reads these dims as numbers, so shapes from there on are "
            f"drawn with this call's sizes: {said}"
        )
    read = next((n.id for n in recorded for v in n.outputs if v.expr and "?" in v.expr), None)
    if read is not None:
        notes.append(
            f"--symbolic: a size at {read} depends on the tensor's values, so shapes from "
            "there on are drawn with this call's numbers"
        )
    # The run's nodes by what they are (kind, scope, target, and the how-manieth such in
    # its scope), then by id: the two tracers name functions each their own way (fx
    # numbers every `getitem`, of shapes and tuples too), and agree on modules.
    by_id = {n.id: n for n in recorded}
    by_key = dict(zip(_keys(recorded), recorded, strict=True))
    nodes: list[Node] = []
    done: dict[str, Node] = {}
    for node, key in zip(graph.nodes, _keys(graph.nodes), strict=True):
        same = by_key.get(key) or by_id.get(node.id)
        made = _with_exprs(node, same)
        if made is node and same is None and len(node.inputs) == 1:
            # No op ran for it in the recorded run: fx's `out[0]` of a tuple, a function
            # that returns its input as it is (torchvision's stochastic_depth in eval).
            made = _picked(node, done.get(node.inputs[0]))
        nodes.append(made)
        done[node.id] = made
    kept = fixed.keys() - ops
    named = tuple(
        replace(d, fixed=d.name in kept)
        for i, d in enumerate(dims)
        if d.name not in {x.name for x in dims[:i]}
    )
    found = constraints(symbols, guards, nodes, frozenset(ops))
    return replace(graph, nodes=tuple(nodes), notes=tuple(notes), symbolic=Symbolic(named, found))


def _fixed_by_ops(
    model: torch.nn.Module,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    dims: Sequence[Any],
    fixed: dict[str, int],
) -> set[str]:
    """Of the dims a run fixed, those an op fixed at whatever size it was given (an LSTM's
    kernel on fake tensors loops over the sequence): a second run, each of them one larger,
    fixes them at the new size. A size the model checks (a ViT's `H == 224`) stays, or the
    second run fails at the check."""
    from fxviz.tracing.record import record_symbolic
    from fxviz.tracing.symbolic import fixed_dims

    if not fixed:
        return set()
    try:
        _, again, _ = record_symbolic(model, args, kwargs, dims, other=frozenset(fixed))
    except (TraceError, ShapeError):
        return set()
    now = fixed_dims(again)
    return {name for name, size in fixed.items() if now.get(name, size) != size}


def _fixes(guard: Any, name: str, symbols: Symbols) -> bool:
    return any(symbols.names.get(s) == name for s in guard.free_symbols)


def _keys(nodes: Sequence[Node]) -> list[tuple[str, str, str, int]]:
    seen: dict[tuple[str, str, str], int] = {}
    keys: list[tuple[str, str, str, int]] = []
    for n in nodes:
        # A function by its own name: tracers qualify it differently (`operator.add`, `add`),
        # and `out += x` is fx's `add` where a recorded run sees the method `add_`.
        kind, target = n.kind, n.target
        if kind in ("function", "method"):
            kind, target = "function", target.rpartition(".")[2].rstrip("_")
        what: tuple[str, str, str] = (kind, n.scope, target)
        seen[what] = seen.get(what, -1) + 1
        keys.append((*what, seen[what]))
    return keys


def _picked(node: Node, source: Node | None) -> Node:
    """The expressions of the one value of `node`'s source that its value can be."""
    if source is None or len(node.outputs) != 1 or not node.outputs[0].is_tensor:
        return node
    value = node.outputs[0]
    same = [
        v
        for v in source.outputs
        if v.is_tensor and v.expr is not None and (v.shape, v.dtype) == (value.shape, value.dtype)
    ]
    if len({v.expr for v in same}) != 1:
        return node
    return replace(node, outputs=(replace(value, expr=same[0].expr),))


def _with_exprs(node: Node, recorded: Node | None) -> Node:
    """`node` with the expressions of the same node in a run on symbolic shapes, where that
    run's values agree with its own (the same tensors, the same numbers)."""
    if recorded is None:
        return node
    mine = [v for v in node.outputs if v.is_tensor]
    theirs = {v.path: v for v in recorded.outputs if v.is_tensor and v.expr is not None}
    if not mine or any(v.path not in theirs or theirs[v.path].shape != v.shape for v in mine):
        return node
    outputs = tuple(
        replace(v, expr=theirs[v.path].expr) if v.is_tensor else v for v in node.outputs
    )
    return replace(node, outputs=outputs)
