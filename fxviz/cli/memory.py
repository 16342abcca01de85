"""`fxviz memory MODEL`: the memory one inference or training step needs at its peak, split
into weights, gradients, optimizer state and activations, the largest batch that fits, and
(with -o) a picture of what each module keeps."""

from __future__ import annotations

import contextlib
import sys
from typing import Annotated

import typer

from fxviz.cli.app import app
from fxviz.cli.common import checked, exit_on_error, fit_note, spinner
from fxviz.cli.options import (
    AllOpsOpt,
    ConfigOpt,
    Debug,
    DepthOpt,
    DeviceOpt,
    ExpandOpt,
    FoldOpt,
    InputsOpt,
    KwargsOpt,
    LayersOpt,
    MemoryOutputs,
    Quiet,
    RankdirOpt,
    RendererOpt,
    ShowOpt,
    TracerOpt,
    complete_model,
)
from fxviz.errors import SpecError


@app.command("memory")
def memory_command(
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL",
            help="resnet18 | path/net.py:Net | hf:gpt2 | …: the specs `fxviz draw` takes",
            show_default=False,
            autocompletion=complete_model,
        ),
    ],
    train: Annotated[
        str | None,
        typer.Option(
            metavar="sgd|momentum|adam|adamw",
            help="A training step with this optimizer: forward, backward and its step.",
            show_default="inference",
        ),
    ] = None,
    batch: Annotated[
        str | None,
        typer.Option(
            metavar="N",
            help="The batch size: the first dim of every input.",
            show_default="the inputs'",
        ),
    ] = None,
    fit: Annotated[
        str | None,
        typer.Option(
            metavar="SIZE",
            help="Find the largest batch whose peak fits in SIZE (24GiB, 80GB).",
            show_default="off",
        ),
    ] = None,
    dtype: Annotated[
        str | None,
        typer.Option(
            metavar="fp32|bf16|fp16",
            help="The weights' dtype (and float inputs').",
            show_default="as built",
        ),
    ] = None,
    master_weights: Annotated[
        bool,
        typer.Option(
            "--master-weights",
            help="Mixed precision: the optimizer keeps an fp32 copy of bf16/fp16 weights.",
            metavar="",
            show_default="off",
        ),
    ] = False,
    kernels: Annotated[
        str,
        typer.Option(
            metavar="cpu|cuda",
            help="The device whose kernels the step takes (cuda needs a GPU present).",
        ),
    ] = "cpu",
    scratch: Annotated[
        bool,
        typer.Option(
            "--scratch/--no-scratch",
            help="Count the memory CPU kernels take of their own while they run (oneDNN's "
            "reorders and buffers; no tensor holds it), measured of each real kernel at a "
            "small batch. --no-scratch: tensors alone.",
        ),
    ] = True,
    fmt: Annotated[
        str,
        typer.Option("--format", "-f", metavar="table|json", help="The report on stdout."),
    ] = "table",
    whole: Annotated[
        bool,
        typer.Option(
            "--whole",
            help="Run the whole model's step, even where a deep stack of layers could be "
            "measured from the model built with 2, 3 and 4 of them.",
            metavar="",
            show_default="off",
        ),
    ] = False,
    output: MemoryOutputs = None,
    inputs: InputsOpt = None,
    kwargs: KwargsOpt = None,
    device: DeviceOpt = None,
    config: ConfigOpt = None,
    layers: LayersOpt = None,
    tracer: TracerOpt = "auto",
    renderer: RendererOpt = "auto",
    rankdir: RankdirOpt = "TB",
    depth: DepthOpt = None,
    fold: FoldOpt = True,
    show: ShowOpt = None,
    all_ops: AllOpsOpt = False,
    expand: ExpandOpt = None,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Estimate the memory of one step of MODEL from the lifetimes of its tensors (on fake
    tensors: nothing is allocated, for any size), print it split by what it holds, and with
    -o draw each module's bytes saved for backward on a heat scale."""
    with exit_on_error(debug):
        from fxviz import api
        from fxviz.drawing import save
        from fxviz.memory_report import check_format, headline, render

        check_format(fmt)
        size = _batch(batch)
        paths, options = checked(
            output,
            tracer,
            depth=depth,
            fold=fold,
            all_ops=all_ops,
            expand=expand,
            show=f"memory,{show}" if show else "memory",
            rankdir=rankdir,
            renderer=renderer,
            color="memory",
        )
        if api.is_saved_graph(model):
            raise SpecError(
                f"{model}: give the model, not a saved graph (its step is run); `fxviz "
                "render` draws a graph saved by `fxviz memory -o graph.json`"
            )
        # The model's own print()s would mix with a report on stdout.
        with spinner(f"measuring {model}", quiet), contextlib.redirect_stdout(sys.stderr):
            graph = api.memory(
                model,
                inputs or (),
                train=train,
                batch=size,
                dtype=dtype,
                master_weights=master_weights,
                fit=fit,
                kernels=kernels,
                scratch=scratch,
                device=device,
                config=config or (),
                layers=layers,
                tracer=tracer,
                expand=options.expand,
                model_kwargs=kwargs or (),
                whole=whole,
            )
        if paths:
            with spinner("drawing", quiet):
                save(graph, paths, options)
        budget = api.fit_bytes(fit)
        typer.echo(render(graph, fmt, budget), nl=False)
        if not quiet:
            for note in (*graph.notes, fit_note(graph, paths, options) if paths else ""):
                if note:
                    typer.echo(f"note: {note}", err=True)
            if paths:
                typer.echo(f"{headline(graph)} -> {', '.join(map(str, paths))}", err=True)


def _batch(text: str | None) -> int | None:
    """--batch as given: a whole number of 1 or more."""
    if text is None:
        return None
    if not text.strip().isdigit() or int(text) < 1:
        raise SpecError(f"--batch {text}: give a batch size, a whole number of 1 or more")
    return int(text)
