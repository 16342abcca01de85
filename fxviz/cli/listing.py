"""`fxviz list [TEXT]`: the names fxviz can draw by name."""

from __future__ import annotations

from typing import Annotated

import typer

from fxviz.cli.app import app


@app.command("list")
def list_command(
    pattern: Annotated[
        str | None,
        typer.Argument(metavar="TEXT", help="Show only names containing this.", show_default=False),
    ] = None,
    hf: Annotated[
        bool,
        typer.Option(
            "--hf",
            help="List the Hugging Face model types (hf:TYPE) instead of torchvision names.",
            metavar="",
            show_default="off",
        ),
    ] = False,
) -> None:
    """List the model names fxviz can draw by name. Exit 1 when none matches, like grep."""
    if hf:
        from fxviz.loaders.hf_types import model_types

        names, what = [f"hf:{t}" for t in model_types()], "Hugging Face model type"
    else:
        from fxviz.loaders.torchvision import list_torchvision_models

        names, what = list_torchvision_models(), "torchvision model name"
    shown = [n for n in names if pattern is None or pattern.lower() in n.lower()]
    for name in shown:
        typer.echo(name)
    if not shown:
        from fxviz.errors import did_you_mean

        hint = did_you_mean(pattern or "", names, n=3)
        other = "" if hf else "; `fxviz list --hf` lists Hugging Face model types"
        typer.echo(f"no {what} contains {pattern!r}{'; ' + hint if hint else ''}{other}", err=True)
        raise typer.Exit(1)
