"""`fxviz render GRAPH_JSON`: a saved graph drawn again, without PyTorch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fxviz.cli.app import app
from fxviz.cli.common import checked, exit_on_error, fit_note, load_graph, report
from fxviz.cli.options import (
    AllOpsOpt,
    Debug,
    DepthOpt,
    ExpandOpt,
    FoldOpt,
    Outputs,
    Quiet,
    RankdirOpt,
    RendererOpt,
    ShowOpt,
)


@app.command("render")
def render_command(
    graph_file: Annotated[
        Path,
        typer.Argument(
            metavar="GRAPH_JSON", help="A graph saved with -o graph.json.", show_default=False
        ),
    ],
    output: Outputs = None,
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
    """Draw a saved graph JSON again, without PyTorch (the same picture `fxviz MODEL` draws)."""
    with exit_on_error(debug):
        from fxviz.drawing import save

        paths, options = checked(
            output or [graph_file.with_suffix(".svg")],
            "auto",
            depth=depth,
            fold=fold,
            all_ops=all_ops,
            expand=expand,
            show=show,
            rankdir=rankdir,
            renderer=renderer,
        )
        graph = load_graph(str(graph_file))
        save(graph, paths, options)
        if not quiet:
            if note := fit_note(graph, paths, options):
                typer.echo(f"note: {note}", err=True)
            report(graph, paths)
