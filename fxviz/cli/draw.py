"""`fxviz draw MODEL` (also `fxviz MODEL`): one diagram."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fxviz.cli.app import app
from fxviz.cli.common import (
    check_symbolic,
    checked,
    default_output,
    exit_on_error,
    file_stem,
    fit_note,
    is_saved_graph,
    load_graph,
    no_model_options,
    report,
    spinner,
)
from fxviz.cli.options import (
    AllOpsOpt,
    ColorOpt,
    ConfigOpt,
    Debug,
    DepthOpt,
    DeviceOpt,
    DimOpt,
    ExpandOpt,
    FoldOpt,
    InputsOpt,
    KwargsOpt,
    LayersOpt,
    Outputs,
    Quiet,
    RankdirOpt,
    RendererOpt,
    ShowOpt,
    SymbolicOpt,
    TracerOpt,
    complete_model,
)


@app.command("draw")
def draw_command(
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL",
            help="resnet18 | torchvision:resnet18 | path/net.py:Net | hf:bert | hf:org/name "
            "| hf:./folder | program.pt2 (a saved torch.export program) | graph.json (a saved "
            "graph, drawn without tracing)",
            show_default=False,
            autocompletion=complete_model,
        ),
    ],
    output: Outputs = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            metavar="svg|png|pdf|dot|json|mmd|md",
            help="Format when no -o is given.",
            show_default="svg",
        ),
    ] = None,
    inputs: InputsOpt = None,
    kwargs: KwargsOpt = None,
    device: DeviceOpt = None,
    weights: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="Load published weights: torchvision DEFAULT or a weights name; for Hugging "
            "Face any value loads the hub id's or folder's weights.",
            show_default="none: built from the config, nothing downloaded",
        ),
    ] = None,
    config: ConfigOpt = None,
    layers: LayersOpt = None,
    tracer: TracerOpt = "auto",
    renderer: RendererOpt = "auto",
    rankdir: RankdirOpt = "TB",
    depth: DepthOpt = None,
    fold: FoldOpt = True,
    show: ShowOpt = None,
    color: ColorOpt = None,
    all_ops: AllOpsOpt = False,
    title: Annotated[
        str | None,
        typer.Option(
            metavar="TEXT", help="The diagram's heading.", show_default="the model's name"
        ),
    ] = None,
    expand: ExpandOpt = None,
    symbolic: SymbolicOpt = False,
    dim: DimOpt = None,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Draw MODEL as a diagram with the shape of every tensor (default: MODEL.svg)."""
    with exit_on_error(debug):
        from fxviz.drawing import save

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
            title=title,
            color=color,
        )
        suffix = (fmt or "svg").lower()
        symbolic = symbolic or bool(dim)
        memory = "memory" in options.show or options.color == "memory"
        check_symbolic(model, symbolic, "--show/--color memory" if memory else "")
        if is_saved_graph(model):
            no_model_options(model, inputs, kwargs, config, device, weights, layers)
            graph = load_graph(model)
            paths = paths or default_output(Path(model).stem, suffix)
        else:
            from fxviz import api

            with spinner(f"loading {model}", quiet):
                loaded = api.load(
                    model,
                    inputs=inputs or (),
                    model_kwargs=kwargs or (),
                    device=device,
                    weights=weights,
                    config=config or (),
                    layers=layers,
                )
            paths = paths or default_output(file_stem(loaded.name), suffix)
            with spinner(f"tracing {loaded.name} on {loaded.device}", quiet):
                if memory:
                    graph = api.memory(loaded, train="auto", tracer=tracer, expand=options.expand)
                else:
                    graph = api.trace(
                        loaded,
                        tracer=tracer,
                        expand=options.expand,
                        symbolic=symbolic,
                        dims=dim or (),
                    )
        with spinner("drawing", quiet):
            save(graph, paths, options)
        if not quiet:
            for note in (*graph.notes, fit_note(graph, paths, options)):
                if note:
                    typer.echo(f"note: {note}", err=True)
            report(graph, paths)
