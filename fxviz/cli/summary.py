"""`fxviz summary MODEL`: the module tree as a table."""

from __future__ import annotations

import sys
from typing import Annotated, Any

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
from fxviz.errors import SpecError
from fxviz.specs import check_tracer


@app.command("summary")
def summary_command(
    model: SavedOrModel,
    inputs: InputsOpt = None,
    kwargs: KwargsOpt = None,
    config: ConfigOpt = None,
    layers: LayersOpt = None,
    device: DeviceOpt = None,
    tracer: TracerOpt = "auto",
    symbolic: SymbolicOpt = False,
    dim: DimOpt = None,
    depth: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            help="Show modules down to N path components (0: totals).",
            show_default="every level",
        ),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            metavar="table|csv|markdown|json",
            help="table for a terminal; csv, markdown and json keep every name whole.",
        ),
    ] = "table",
    memory: Annotated[
        bool,
        typer.Option(
            "--memory",
            help="Add each module's bytes saved for backward and live while it runs (a memory "
            "estimate of one SGD step; a graph saved by `fxviz memory` has them already).",
            metavar="",
            show_default="off",
        ),
    ] = False,
    debug: Debug = False,
) -> None:
    """A table of the module tree: class, input and output shapes, parameters, FLOPs."""
    with exit_on_error(debug):
        from fxviz.summary import FORMATS, render_rows, summary_rows

        check_tracer(tracer)
        if fmt not in FORMATS:
            from fxviz.errors import did_you_mean

            hint = did_you_mean(fmt, FORMATS) or f"use {', '.join(FORMATS)}"
            raise SpecError(f"--format {fmt!r}: {hint}")
        if depth is not None and depth < 0:
            raise SpecError(f"--depth {depth}: give 0 (totals only) or more")
        with spinner(f"tracing {model}", False):
            if memory and model.lower().endswith(".json"):
                raise SpecError(
                    f"--memory runs the model; {model} is a saved graph (a graph saved by "
                    "`fxviz memory -o graph.json` shows its memory without it)"
                )
            graph = graph_for(
                model, inputs, kwargs, config, device, tracer, layers, memory, symbolic, dim
            )
        rows = summary_rows(graph, depth)
        if fmt != "table":
            typer.echo(render_rows(graph, rows, fmt), nl=False)
            return
        _print_table(graph, rows)


def _print_table(graph: Any, rows: list[Any]) -> None:
    """The summary as a terminal table; piped, it is as wide as its longest row (nothing
    cut), unless COLUMNS says otherwise."""
    import os

    from rich.console import Console
    from rich.table import Table

    from fxviz.humanize import format_bytes
    from fxviz.summary import columns

    table = Table(title=f"{graph.name} · traced with {graph.tracer} on {graph.device}")
    shown = columns(rows)
    for column in shown:
        numeric = column in ("params", "trainable", "FLOPs", "saved", "live")
        table.add_column(column, justify="right" if numeric else "left", no_wrap=True)
    for row in rows:
        name = "  " * max(row.depth - 1, 0) + (
            row.path.rpartition(".")[2] if row.path else "(total)"
        )
        table.add_row(
            name,
            row.class_name,
            row.input,
            row.output,
            f"{row.params.total:,}",
            f"{row.params.trainable:,}",
            f"{row.flops:,}",
            *(
                [format_bytes(row.saved or 0), format_bytes(row.live or 0)]
                if "saved" in shown
                else []
            ),
            *([row.shared] if "shared" in shown else []),
            end_section=not row.path,
        )
    terminal = sys.stdout.isatty() or "COLUMNS" in os.environ
    width = max(100, Console().width) if terminal else 10_000
    Console(width=width).print(table, crop=False)
    if graph.symbolic is not None:
        from fxviz.exporters.dot import symbols_summary

        typer.echo(symbols_summary(graph.symbolic))
