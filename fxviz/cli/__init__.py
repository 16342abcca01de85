"""The `fxviz` command: parses options, calls the API, prints, maps errors to exit codes.

Exit codes: 0 success, 2 the input was wrong or the model could not be drawn (one line on
stderr; --debug adds the traceback). Torch is imported only by commands that trace.

One module per command; `app` (app.py) is the Typer application they register with, options.py
the options they share, common.py the helpers they share.
"""

import importlib

from fxviz.cli.app import app

# Each module registers its command with `app` when imported, in the order `fxviz --help` lists.
COMMANDS = (
    "draw",
    "diff",
    "gallery",
    "summary",
    "explain",
    "compile",
    "memory",
    "render",
    "listing",
)
for _module in COMMANDS:
    importlib.import_module(f"fxviz.cli.{_module}")

__all__ = ["COMMANDS", "app", "main"]


def main() -> None:
    # One name however it was started (`python -m fxviz` too): completion scripts name it.
    app(prog_name="fxviz")
