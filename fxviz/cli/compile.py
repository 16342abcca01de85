"""`fxviz compile MODEL`: where torch.compile breaks the graph, drawn on the model, and a
report of its graphs, breaks and recompiles."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from fxviz.cli.app import app
from fxviz.cli.common import (
    checked,
    default_output,
    exit_on_error,
    file_stem,
    fit_note,
    spinner,
)
from fxviz.cli.options import (
    AllOpsOpt,
    CompileOutputs,
    ConfigOpt,
    Debug,
    DepthOpt,
    DeviceOpt,
    ExpandOpt,
    FoldOpt,
    InputsOpt,
    KwargsOpt,
    LayersOpt,
    Quiet,
    RankdirOpt,
    RendererOpt,
    ShowOpt,
    TracerOpt,
    complete_model,
)
from fxviz.errors import SpecError


@app.command("compile")
def compile_command(
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL",
            help="resnet18 | path/net.py:Net | hf:gpt2 | …: the specs `fxviz draw` takes",
            show_default=False,
            autocompletion=complete_model,
        ),
    ],
    output: CompileOutputs = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            metavar="table|json|md",
            help="The report on stdout: table for a terminal, json, md for a PR comment.",
        ),
    ] = "table",
    draw: Annotated[
        bool,
        typer.Option(
            "--draw/--no-draw",
            help="Write the picture (MODEL.compile.svg unless -o names files).",
        ),
    ] = True,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Exit 1 when there are more graph breaks than --max-breaks (0).",
            metavar="",
            show_default="off",
        ),
    ] = False,
    max_breaks: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            help="The most graph breaks allowed; implies --check.",
            show_default="0 with --check",
        ),
    ] = None,
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
    """Run MODEL through torch.compile (capturing only: no code is generated) and draw its
    graphs in colour, each graph break in red at its line; print graphs, breaks by reason,
    recompiles and the share of FLOPs compiled."""
    with exit_on_error(debug):
        from fxviz import api
        from fxviz.compile_report import check_format, headline, render
        from fxviz.drawing import save

        check_format(fmt)
        if max_breaks is not None and max_breaks < 0:
            raise SpecError(f"--max-breaks {max_breaks}: give 0 or more")
        if output and not draw:
            raise SpecError("--no-draw writes no picture: leave out -o, or --no-draw")
        paths, options = checked(
            output,
            tracer,
            depth=depth,
            fold=fold,
            all_ops=all_ops,
            expand=expand,
            show=show,
            rankdir=rankdir,
            renderer=renderer,
        )
        if api.is_saved_graph(model):
            raise SpecError(
                f"{model}: give the model, not a saved graph (torch.compile runs its code); "
                "`fxviz render` draws a graph saved by `fxviz compile -o graph.json`"
            )
        # The model's own print()s would mix with a report on stdout.
        with spinner(f"compiling {model}", quiet), contextlib.redirect_stdout(sys.stderr):
            graph = api.compiled(
                model,
                inputs or (),
                device=device,
                config=config or (),
                layers=layers,
                tracer=tracer,
                expand=options.expand,
                model_kwargs=kwargs or (),
            )
        if draw:
            paths = paths or default_output(f"{file_stem(graph.name)}.compile", "svg")
            with spinner("drawing", quiet):
                save(graph, [Path(p) for p in paths], options)
        typer.echo(render(graph, fmt), nl=False)
        if not quiet:
            for note in (*graph.notes, fit_note(graph, paths, options) if draw else ""):
                if note:
                    typer.echo(f"note: {note}", err=True)
            if draw:
                typer.echo(f"{headline(graph)} -> {', '.join(map(str, paths))}", err=True)
        assert graph.compilation is not None
        allowed = max_breaks if max_breaks is not None else 0
        found = len(graph.compilation.breaks)
        if (check or max_breaks is not None) and found > allowed:
            typer.echo(
                f"check: {found} graph break{'s' * (found != 1)}, more than the {allowed} "
                "allowed (--max-breaks)",
                err=True,
            )
            raise typer.Exit(1)
