"""`fxviz explain MODEL`: why each shape and parameter count is what it is."""

from __future__ import annotations

import typer

from fxviz.cli.app import app
from fxviz.cli.common import exit_on_error, graph_for, spinner
from fxviz.cli.options import (
    ConfigOpt,
    Debug,
    DeviceOpt,
    DimOpt,
    InputsOpt,
    KwargsOpt,
    LayersOpt,
    SavedOrModel,
    SymbolicOpt,
    TracerOpt,
)
from fxviz.specs import check_tracer


@app.command("explain")
def explain_command(
    model: SavedOrModel,
    inputs: InputsOpt = None,
    kwargs: KwargsOpt = None,
    config: ConfigOpt = None,
    layers: LayersOpt = None,
    device: DeviceOpt = None,
    tracer: TracerOpt = "auto",
    symbolic: SymbolicOpt = False,
    dim: DimOpt = None,
    debug: Debug = False,
) -> None:
    """Walk through MODEL layer by layer: why each shape and parameter count is what it is."""
    with exit_on_error(debug):
        from fxviz.explain import explain_lines

        check_tracer(tracer)
        with spinner(f"tracing {model}", False):
            graph = graph_for(
                model, inputs, kwargs, config, device, tracer, layers, symbolic=symbolic, dims=dim
            )
        typer.echo("\n".join(explain_lines(graph)))
