"""The Python API behind the CLI: `fxviz.load`, `fxviz.trace`. Torch is imported lazily."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fxviz.graph import Graph
from fxviz.loaders import LoadedModel, LoadOptions
from fxviz.loaders import load as _load
from fxviz.specs import InputSpec, parse_input_spec, parse_kwarg

if TYPE_CHECKING:
    import torch


def load(
    spec: str,
    *,
    inputs: Sequence[str | InputSpec] = (),
    model_kwargs: Sequence[str] | dict[str, object] = (),
    device: str | None = None,
    weights: str | None = None,
    config: Sequence[str] = (),
) -> LoadedModel:
    """Build the model a spec names (`resnet18`, `net.py:Net`) with inputs to trace it with.

    `inputs` are shapes such as "1,3,224,224" or "input_ids=int64:1,16"; without them the
    loader's defaults (or the file's `example_inputs()`) are used. `config` holds Hugging Face
    config overrides such as "num_hidden_layers=2".
    """
    kwargs = (
        tuple(model_kwargs.items())
        if isinstance(model_kwargs, dict)
        else tuple(parse_kwarg(k) for k in model_kwargs)
    )
    specs = tuple(parse_input_spec(i) if isinstance(i, str) else i for i in inputs)
    return _load(spec, LoadOptions(specs, kwargs, device, weights, tuple(config)))


def trace(
    model: str | torch.nn.Module | LoadedModel,
    inputs: Any = None,
    *,
    kwargs: dict[str, Any] | None = None,
    device: str | None = None,
    weights: str | None = None,
    config: Sequence[str] = (),
    tracer: str = "auto",
    name: str | None = None,
    expand: Sequence[str] = (),
) -> Graph:
    """Trace a model into a Graph with shapes on every node.

    `model` is an `nn.Module` (then `inputs` is a tensor or a tuple of positional tensors and
    `kwargs` the keyword inputs), a `LoadedModel`, or a spec string (then `inputs` is a list
    of shape specs and `device`/`weights`/`config` choose how it is built: meta by default).
    `tracer` is auto (fx, then torch.export, then a recorded run), fx, export or record.
    `expand` names module classes to draw from inside, e.g. ("LSTM",) shows its gates.
    """
    from fxviz.tracing import trace_module, trace_program

    if isinstance(model, str):
        model = load(model, inputs=inputs or (), device=device, weights=weights, config=config)
    if isinstance(model, LoadedModel) and model.program is not None:
        return trace_program(
            model.program,
            model.module,
            model.args,
            model.kwargs,
            name=name or model.name,
            source=model.source,
            notes=model.notes,
        )
    if isinstance(model, LoadedModel):
        return trace_module(
            model.module,
            model.args,
            model.kwargs,
            name=name or model.name,
            source=model.source,
            tracer=tracer,
            notes=model.notes,
            expand=tuple(expand),
        )
    args = inputs if isinstance(inputs, tuple) else () if inputs is None else (inputs,)
    return trace_module(model, args, kwargs, name=name, tracer=tracer, expand=tuple(expand))
