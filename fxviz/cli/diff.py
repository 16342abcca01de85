"""`fxviz diff A B`: what changed between two models or saved graphs."""

from __future__ import annotations

from typing import Annotated

import typer

from fxviz.cli.app import app
from fxviz.cli.common import checked, exit_on_error, graph_for, spinner
from fxviz.cli.options import (
    ConfigOpt,
    Debug,
    DeviceOpt,
    DimOpt,
    InputsOpt,
    KwargsOpt,
    LayersOpt,
    Outputs,
    Quiet,
    RankdirOpt,
    RendererOpt,
    SymbolicOpt,
    TracerOpt,
    complete_model,
)


@app.command("diff")
def diff_command(
    model_a: Annotated[
        str,
        typer.Argument(
            metavar="MODEL_A",
            help="A model spec or a saved graph.json.",
            show_default=False,
            autocompletion=complete_model,
        ),
    ],
    model_b: Annotated[
        str,
        typer.Argument(
            metavar="MODEL_B",
            help="The model to compare it with.",
            show_default=False,
            autocompletion=complete_model,
        ),
    ],
    output: Outputs = None,
    inputs: InputsOpt = None,
    inputs_b: Annotated[
        list[str] | None,
        typer.Option(
            "--input-b",
            metavar="SHAPE",
            help="Input shape for B only, if it differs.",
            show_default="--input's",
        ),
    ] = None,
    kwargs: KwargsOpt = None,
    config: ConfigOpt = None,
    layers: LayersOpt = None,
    config_b: Annotated[
        list[str] | None,
        typer.Option(
            "--config-b",
            metavar="KEY=VALUE",
            help="Config key=value for B only, after --config.",
            show_default="none",
        ),
    ] = None,
    device: DeviceOpt = None,
    tracer: TracerOpt = "auto",
    renderer: RendererOpt = "auto",
    rankdir: RankdirOpt = "TB",
    depth: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            help="Collapse both sides to N levels before matching (N >= 1).",
            show_default="every level",
        ),
    ] = None,
    every: Annotated[
        bool,
        typer.Option(
            "--all",
            help="List every change, the output shapes that follow from another included.",
            metavar="",
            show_default="off",
        ),
    ] = False,
    symbolic: SymbolicOpt = False,
    dim: DimOpt = None,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Compare two models or saved graphs. Exit 0 if identical, 1 if they differ, 2 on error."""
    with exit_on_error(debug):
        from fxviz.diff import diff, format_report
        from fxviz.exporters import save_diff

        paths, options = checked(output, tracer, depth=depth, rankdir=rankdir, renderer=renderer)
        sides = []
        for spec, side_inputs, side_config in (
            (model_a, inputs, config),
            (
                model_b,
                inputs_b if inputs_b is not None else inputs,
                [*(config or []), *(config_b or [])],
            ),
        ):
            with spinner(f"tracing {spec}", quiet):
                # With --symbolic, output shapes compare as expressions: a dim that grew
                # from L to L + 1 differs even where this call's numbers agree.
                sides.append(
                    graph_for(
                        spec,
                        side_inputs,
                        kwargs,
                        side_config,
                        device,
                        tracer,
                        layers,
                        symbolic=symbolic,
                        dims=dim,
                    )
                )
        a, b = sides
        if options.depth is not None:
            from fxviz.views import collapse

            a, b = collapse(a, options.depth), collapse(b, options.depth)
        result = diff(a, b)
        if paths:
            save_diff(a, b, result, paths, options.dot, options.renderer)
        if not quiet:
            typer.echo(format_report(result, every=every), nl=False)
            if paths:
                typer.echo(f"diff written to {', '.join(str(p) for p in paths)}", err=True)
    raise typer.Exit(0 if result.identical else 1)
