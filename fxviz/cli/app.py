"""The Typer application: `fxviz MODEL` draws, `--version`, mistyped commands."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup


class _DrawByDefault(TyperGroup):
    """`fxviz MODEL …` means `fxviz draw MODEL …`: no subcommand word needed."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        group_options = {"--help", "-h", "--version", "--install-completion", "--show-completion"}
        if args and args[0] not in self.commands and not set(args) & group_options:
            _not_a_command(args[0], list(self.commands))
            args = ["draw", *args]
        return super().parse_args(ctx, args)


def _not_a_command(word: str, commands: list[str]) -> None:
    """`fxviz help` or `fxviz lsit`: a word that is no model spec but close to a command is a
    mistyped command, said in one line (exit 2) rather than as a model that is not found."""
    from fxviz.errors import did_you_mean

    if not re.fullmatch(r"[a-z]+", word) or Path(word).exists():
        return
    hint = did_you_mean(word, commands, shown=lambda c: f"`fxviz {c}`")
    if word == "help" or hint:
        hint = "did you mean --help?" if word == "help" else hint
        typer.echo(f"error: no command or model named {word!r}; {hint}", err=True)
        raise typer.Exit(2)


app = typer.Typer(
    cls=_DrawByDefault,
    name="fxviz",
    help="Draw PyTorch models: `fxviz resnet18` writes resnet18.svg.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from fxviz import __version__

        typer.echo(f"fxviz {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="Show the version.",
            metavar="",
            show_default="off",
        ),
    ] = False,
) -> None:
    """Draw PyTorch models: `fxviz resnet18` writes resnet18.svg.

    MODEL is a torchvision name (resnet18), a Python file (net.py:Net), …; see `fxviz draw --help`.
    """
