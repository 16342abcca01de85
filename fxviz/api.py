"""The Python API behind the CLI: `fxviz.load`, `fxviz.trace`, `fxviz.draw`. Torch is imported
lazily, and not at all for saved graphs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fxviz.drawing import draw_options, save
from fxviz.errors import CompileError, SpecError, TraceError
from fxviz.graph import Graph
from fxviz.loaders import LoadedModel, LoadOptions
from fxviz.loaders import load as _load
from fxviz.specs import InputSpec, parse_input_spec, parse_kwarg

if TYPE_CHECKING:
    import torch  # noqa: TID251 (a type only: importing fxviz never imports torch)


def is_saved_graph(spec: str | Path) -> bool:
    """A spec naming a graph saved with `-o graph.json`, drawn without tracing."""
    return str(spec).lower().endswith(".json")


def load(
    spec: str,
    *,
    inputs: Any = (),
    model_kwargs: Sequence[str] | dict[str, object] = (),
    device: str | None = None,
    weights: str | None = None,
    config: Sequence[str] = (),
    layers: int | None = None,
) -> LoadedModel:
    """Build the model a spec names (`resnet18`, `net.py:Net`) with inputs to trace it with.

    `inputs` are shapes such as "1,3,224,224" or "input_ids=int64:1,16", or tensors (traced
    with as given, on the model's device); without them the loader's defaults (or the file's
    `example_inputs()`) are used. `config` holds Hugging Face config overrides such as
    "num_hidden_layers=2"; `layers` caps every layer count of a Hugging Face config.
    """
    kwargs = (
        tuple(model_kwargs.items())
        if isinstance(model_kwargs, dict)
        else tuple(parse_kwarg(k) for k in model_kwargs)
    )
    items = _input_items(inputs)
    specs = tuple(_input_spec(i) for i in items)
    options = LoadOptions(specs, kwargs, device, weights, tuple(config), layers)
    loaded = _load(spec, options)
    if items and all(not isinstance(i, str | InputSpec) for i in items):
        loaded.args = tuple(t.to(loaded.device) for t in items)
        loaded.kwargs = {}
    return loaded


def _input_items(inputs: Any) -> tuple[Any, ...]:
    """Inputs as a tuple of items: one spec or tensor alone, or a list or tuple of them."""
    if inputs is None:
        return ()
    if isinstance(inputs, list | tuple):
        return tuple(inputs)
    return (inputs,)


def _input_spec(item: Any) -> InputSpec:
    if isinstance(item, InputSpec):
        return item
    if isinstance(item, str):
        return parse_input_spec(item)
    shape, dtype = getattr(item, "shape", None), getattr(item, "dtype", None)
    if shape is None or dtype is None or not hasattr(item, "to"):
        raise SpecError(
            f"inputs: {type(item).__name__} is neither a shape such as '1,3,224,224' nor a "
            "tensor; give shapes or tensors (a list of them for several inputs)"
        )
    return InputSpec(tuple(int(d) for d in shape), str(dtype).removeprefix("torch."))


def trace(
    model: str | Path | torch.nn.Module | LoadedModel,
    inputs: Any = None,
    *,
    kwargs: dict[str, Any] | None = None,
    device: str | None = None,
    weights: str | None = None,
    config: Sequence[str] = (),
    layers: int | None = None,
    tracer: str = "auto",
    name: str | None = None,
    expand: Sequence[str] = (),
    symbolic: bool = False,
    dims: Sequence[str] = (),
) -> Graph:
    """Trace a model into a Graph with shapes on every node.

    `model` is an `nn.Module` (then `inputs` is a tensor or a tuple of positional tensors and
    `kwargs` the keyword inputs), a `LoadedModel`, a spec string (then `inputs` is a shape
    spec, a tensor or a list of them, and `device`/`weights`/`config`/`layers` choose how it
    is built: meta by default), or a graph saved as JSON (read, not traced).
    `tracer` is auto (fx, then torch.export, then a recorded run), fx, export or record.
    `expand` names module classes to draw from inside, e.g. ("LSTM",) shows its gates.
    `symbolic` gives each shape its dims as expressions of named input dims (`B×L×768`):
    batch B, tokens L (a decoder's S), an image's H and W, audio's T; `dims` names others
    as "NAME=INPUT.AXIS" ("N=x.0"). `graph.symbolic` holds the names and the constraints
    found (`H, W = 224`, `L ≤ 512`).
    """
    if not (symbolic or dims):
        return _trace(model, inputs, kwargs, device, weights, config, layers, tracer, name, expand)
    from fxviz.tracing import with_symbolic_shapes

    model = _runnable(
        model,
        " with symbolic shapes; give the model itself, or save it with `fxviz MODEL "
        "--symbolic -o graph.json`",
        inputs=inputs,
        device=device,
        weights=weights,
        config=config,
        layers=layers,
    )
    if isinstance(model, LoadedModel) and model.program is not None:
        raise SpecError(
            f"{model.name}: a saved torch.export program is fixed to its sizes; give the "
            "model's own code to draw it with --symbolic"
        )
    graph = _trace(model, inputs, kwargs, device, weights, config, layers, tracer, name, expand)
    return with_symbolic_shapes(graph, *_run_inputs(model, inputs, kwargs), tuple(dims))


def _runnable(
    model: str | Path | torch.nn.Module | LoadedModel,
    refusal: str,
    *,
    inputs: Any,
    model_kwargs: Sequence[str] | dict[str, object] = (),
    device: str | None,
    weights: str | None,
    config: Sequence[str],
    layers: int | None,
) -> torch.nn.Module | LoadedModel:
    """`model` built where it is a spec; a saved graph holds no model to run, and is refused
    with `refusal` said after that."""
    if isinstance(model, str | Path) and is_saved_graph(model):
        raise SpecError(f"{model}: a saved graph holds no model to run{refusal}")
    if not isinstance(model, str | Path):
        return model
    return load(
        str(model),
        inputs=inputs,
        model_kwargs=model_kwargs,
        device=device,
        weights=weights,
        config=config,
        layers=layers,
    )


def _run_inputs(
    model: torch.nn.Module | LoadedModel, inputs: Any, kwargs: dict[str, Any] | None
) -> tuple[torch.nn.Module, tuple[Any, ...], dict[str, Any]]:
    if isinstance(model, LoadedModel):
        return model.module, tuple(model.args), dict(model.kwargs)
    args = inputs if isinstance(inputs, tuple) else () if inputs is None else (inputs,)
    return model, args, dict(kwargs or {})


def _trace(
    model: str | Path | torch.nn.Module | LoadedModel,
    inputs: Any,
    kwargs: dict[str, Any] | None,
    device: str | None,
    weights: str | None,
    config: Sequence[str],
    layers: int | None,
    tracer: str,
    name: str | None,
    expand: Sequence[str],
) -> Graph:
    from fxviz.tracing import trace_module, trace_program

    if isinstance(model, str | Path) and is_saved_graph(model):
        return Graph.load(model)
    if isinstance(model, Path):
        model = str(model)
    if isinstance(model, str):
        model = load(
            model, inputs=inputs, device=device, weights=weights, config=config, layers=layers
        )
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
        loaded = model

        def traced(kwargs: dict[str, Any], notes: list[str], values: bool = True) -> Graph:
            return trace_module(
                loaded.module,
                loaded.args,
                kwargs,
                name=name or loaded.name,
                source=loaded.source,
                tracer=tracer,
                notes=notes,
                expand=tuple(expand),
                values=values,
            )

        if loaded.text_only is None:
            return traced(loaded.kwargs, loaded.notes)
        try:  # the dummy images, short of a run on real values (a CPU copy of the weights)
            return traced(loaded.kwargs, loaded.notes, values=False)
        except TraceError as exc:
            why = exc.reason
            left_out = " and ".join(sorted(set(loaded.kwargs) - set(loaded.text_only)))
            note = (
                f"drawn text-only: with dummy {left_out} it could not be traced "
                f"({why}); to draw its other towers, give those inputs "
                "(--input pixel_values=…) with the tokens they expect in input_ids"
            )
            try:  # short of real values too: a CPU copy of a 2-layer VLM took 10 GiB
                return traced(loaded.text_only, [*loaded.notes, note], values=False)
            except TraceError:
                # A small one runs on real values (ViLT sizes its patch grid from its pixel
                # mask's values): its CPU copy is under a gigabyte.
                if _parameters(loaded.module) > VALUES_RUN_PARAMS:
                    raise exc from None
            return traced(loaded.kwargs, loaded.notes, values=True)
    args = inputs if isinstance(inputs, tuple) else () if inputs is None else (inputs,)
    return trace_module(model, args, kwargs, name=name, tracer=tracer, expand=tuple(expand))


# The most parameters a multimodal model may have for a run on real values (on a CPU copy
# of its weights, 4 bytes each) when no run on fake tensors can draw it.
VALUES_RUN_PARAMS = 250_000_000


def _parameters(module: Any) -> int:
    return sum(int(p.numel()) for p in module.parameters())


def draw(
    model: Graph | str | Path | torch.nn.Module | LoadedModel,
    *paths: str | Path,
    inputs: Any = None,
    **options: Any,
) -> Graph:
    """Write the default picture of `model` to each path (the format from the suffix; .json
    saves the full graph) and return the graph. `model` is anything `trace` takes, or a
    Graph. `options`: depth, fold, all_ops, expand, views, show, rankdir, renderer."""
    chosen = draw_options(**options)
    graph = model if isinstance(model, Graph) else trace(model, inputs, expand=chosen.expand)
    if paths:
        save(graph, [Path(p) for p in paths], chosen)
    return graph


def compiled(
    model: str | Path | torch.nn.Module | LoadedModel,
    inputs: Any = None,
    *,
    kwargs: dict[str, Any] | None = None,
    model_kwargs: Sequence[str] | dict[str, object] = (),
    device: str | None = None,
    weights: str | None = None,
    config: Sequence[str] = (),
    layers: int | None = None,
    tracer: str = "auto",
    name: str | None = None,
    expand: Sequence[str] = (),
) -> Graph:
    """The graph of `model` (as `trace` draws it) with what `torch.compile` makes of one run:
    the graphs TorchDynamo captures (`graph.compilation.graphs`, each node's `compiled`),
    its graph breaks with their reasons and lines, and the guards that fail on a second run.

    Nothing is compiled to code: a backend that only captures. On meta (the default for a
    spec) the run needs no memory; where the code between graphs needs values (`x.item()`,
    an `if` on a tensor), a spec is built again on cpu and run there, and a note says so.
    Arguments as for `trace`; `model_kwargs` as for `load` (a spec's constructor arguments)."""
    from fxviz.tracing.dynamo import NeedsValues, annotate, capture

    if isinstance(model, str | Path) and is_saved_graph(model):
        raise SpecError(
            f"{model}: a saved graph cannot be compiled; give the model (`fxviz compile "
            "net.py:Net`), or draw a graph saved by `fxviz compile -o graph.json` with `fxviz`"
        )
    spec = str(model) if isinstance(model, str | Path) else None

    def built(on: str | None) -> LoadedModel:
        assert spec is not None
        return load(spec, inputs=inputs, device=on, weights=weights, config=config, layers=layers)

    loaded = built(device) if spec is not None else model
    if isinstance(loaded, LoadedModel) and loaded.program is not None:
        raise SpecError(
            f"{loaded.name}: a saved torch.export program has no Python code left for "
            "torch.compile to break; give the model's own file (`fxviz compile net.py:Net`)"
        )
    graph = trace(loaded, inputs, kwargs=kwargs, tracer=tracer, name=name, expand=expand)
    if isinstance(loaded, LoadedModel):
        module, args, kw = loaded.module, loaded.args, loaded.kwargs
    else:
        assert not isinstance(loaded, str | Path)
        module = loaded
        args = inputs if isinstance(inputs, tuple) else () if inputs is None else (inputs,)
        kw = kwargs or {}
    label = name or graph.name
    try:
        captured = capture(module, args, kw, label)
    except NeedsValues as exc:
        if spec is None:
            raise CompileError(
                f"torch.compile could not run {label} on meta tensors ({exc}); give the "
                "model and its inputs on cpu"
            ) from exc
        again = built("cpu")
        captured = capture(again.module, again.args, again.kwargs, label)
        note = f"torch.compile ran on cpu: the code between its graphs needs values ({exc})"
        graph = replace(graph, notes=(*graph.notes, note))
    return annotate(graph, captured)


def memory(
    model: str | Path | torch.nn.Module | LoadedModel,
    inputs: Any = None,
    *,
    train: str | None = None,
    batch: int | None = None,
    dtype: str | None = None,
    master_weights: bool = False,
    fit: str | int | None = None,
    kernels: str = "cpu",
    scratch: bool = True,
    kwargs: dict[str, Any] | None = None,
    model_kwargs: Sequence[str] | dict[str, object] = (),
    device: str | None = None,
    weights: str | None = None,
    config: Sequence[str] = (),
    layers: int | None = None,
    tracer: str = "auto",
    name: str | None = None,
    expand: Sequence[str] = (),
    whole: bool = False,
) -> Graph:
    """The graph of `model` (as `trace` draws it) with the memory one step needs at its peak
    (`graph.memory`: weights, gradients, optimizer state, activations, the module running at
    the peak) and each module's share (`module.memory`: bytes saved for backward, live peak).

    `train` is None for inference, or the optimizer of a training step: sgd, momentum, adam,
    adamw; "auto" is an SGD step where anything is trainable, else inference (what
    `--show memory` draws: the bytes saved for backward do not depend on the optimizer).
    `batch` sets the inputs' batch size; `fit` (bytes, or a size such as "24GiB") finds the
    largest batch whose peak fits instead. `dtype` (fp32, bf16, fp16) casts the
    weights; `master_weights` gives the optimizer fp32 copies of bf16/fp16 ones. The step runs
    on fake tensors that take `kernels`' kernels (cpu, or cuda where a GPU is present):
    nothing is allocated, for any model size. On cpu, `scratch` counts the memory kernels take
    of their own while they run (oneDNN's reorders and buffers, which no tensor holds:
    `graph.memory.scratch`), asked of each real kernel on zeros at a small batch; False counts
    tensors alone. A Hugging Face model from its config with one
    deep stack of layers (8 or more) is measured from itself built with 2, 3 and 4 of them,
    where every count lies on one line through the three (the graph's notes say so); `whole`
    runs the whole model's step instead. Other arguments as for `trace` and `load`."""
    from fxviz.tracing.memory import MemorySetup, check_setup, fit_batch, with_memory
    from fxviz.tracing.memory_scaling import MemoryStep

    setup = MemorySetup(
        None if train == "auto" else train, batch, dtype, master_weights, kernels, scratch
    )
    check_setup(setup)
    budget = _budget(fit, batch)
    spec = model

    def built(count: int | None) -> torch.nn.Module | LoadedModel:
        return _runnable(
            spec,
            "; give the model (`fxviz memory resnet18`), or draw a graph saved by `fxviz "
            "memory -o graph.json` with `fxviz`",
            inputs=inputs,
            model_kwargs=model_kwargs,
            device=device,
            weights=weights,
            config=config,
            layers=count,
        )

    model = built(layers)
    graph = trace(model, inputs, kwargs=kwargs, tracer=tracer, name=name, expand=expand)
    if isinstance(model, LoadedModel) and model.program is not None:
        raise SpecError(
            f"{model.name}: a saved torch.export program cannot be run backward here; "
            "give the model's own file (`fxviz memory net.py:Net`)"
        )
    module, args, kw = _run_inputs(model, inputs, kwargs)
    if train == "auto" and graph.totals.params.trainable:
        setup = replace(setup, train="sgd")
    # Rebuilt smaller: a spec drawn from its config (weights would be loaded three more times).
    rebuilt = (
        not whole
        and weights is None
        and layers is None
        and isinstance(spec, str | Path)
        and _is_hf(str(spec))
    )
    step = MemoryStep(
        (module, args, kw),
        (lambda n: _run_inputs(built(n), inputs, kwargs)) if rebuilt else None,
    )
    if budget is not None:
        best = fit_batch(lambda b: step.estimate(replace(setup, batch=b))[0], budget)
        setup = replace(setup, batch=best.batch)
    estimate, shares = step.estimate(setup)
    graph = with_memory(
        _at_batch(graph, model, (args, kw), estimate.batch, tracer, expand), estimate, shares
    )
    if step.scaled and step.stack is not None:
        note = (
            f"memory: from this model built with 2, 3 and 4 layers in {step.stack.path} "
            f"instead of {step.stack.layers}, every count on one line through the three (the "
            f"{step.stack.layers}-layer step itself was not run)"
        )
        graph = replace(graph, notes=(*graph.notes, note))
    return graph


def _at_batch(
    graph: Graph,
    model: torch.nn.Module | LoadedModel,
    inputs: tuple[tuple[Any, ...], dict[str, Any]],
    batch: int | None,
    tracer: str,
    expand: Sequence[str],
) -> Graph:
    """`graph` traced again with its inputs at the batch its memory was estimated at, so its
    shapes are that step's: where the inputs are on meta, which costs nothing at any size;
    where they hold values (a trace at that batch would run the model), as it was, with a
    note saying so."""
    from fxviz.tracing.memory import batch_of, on_meta, resize_batch

    traced = batch_of(inputs)
    if batch is None or traced in (None, batch):
        return graph
    if not on_meta(inputs):
        note = (
            f"shapes: as traced, at batch {traced} (the memory is batch {batch}'s; the inputs "
            "are on a real device, where a trace at that batch would run the model)"
        )
        return replace(graph, notes=(*graph.notes, note))
    args, kwargs = resize_batch(inputs, batch)
    if isinstance(model, LoadedModel):
        text_only = None if model.text_only is None else resize_batch(model.text_only, batch)
        again = replace(model, args=tuple(args), kwargs=kwargs, text_only=text_only)
        return trace(again, tracer=tracer, name=graph.name, expand=expand)
    return trace(model, tuple(args), kwargs=kwargs, tracer=tracer, name=graph.name, expand=expand)


def _is_hf(spec: str) -> bool:
    from fxviz.specs import parse_model_spec

    return not is_saved_graph(spec) and parse_model_spec(spec).kind == "hf"


def _budget(fit: str | int | None, batch: int | None) -> int | None:
    if fit is not None and batch is not None:
        raise SpecError("--fit finds the batch size itself: give --fit or --batch, not both")
    return fit_bytes(fit)


def fit_bytes(fit: str | int | None) -> int | None:
    """`fit` in bytes: an int, or a size as written (24GiB, 80GB, 512m)."""
    from fxviz.humanize import parse_bytes

    if fit is None:
        return None
    size = fit if isinstance(fit, int) and not isinstance(fit, bool) else None
    if isinstance(fit, str):
        size = parse_bytes(fit)
    if size is None or size <= 0:
        raise SpecError(f"--fit {fit}: give the memory to fit in, such as 24GiB or 80GB")
    return size
