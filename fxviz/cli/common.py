"""What the commands share: errors as exit codes, spinners, checked options, graphs."""

from __future__ import annotations

import contextlib
import re
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from fxviz.errors import FxvizError, SpecError
from fxviz.humanize import format_params
from fxviz.specs import check_tracer


def fit_note(graph: Any, paths: list[Path], options: Any) -> str:
    """How the picture was chosen to fit a screen, when a fitted picture was written (a
    page to explore holds every level, and JSON the graph itself: neither is fitted, and
    neither asks for the layouts fitting measures)."""
    from fxviz.drawing import fitted
    from fxviz.exporters import output_format

    if all(output_format(p) in ("json", "html") for p in paths):
        return ""
    return fitted(graph, options)[1]


def default_output(stem: str, suffix: str) -> list[Path]:
    from fxviz.exporters import check_outputs

    paths = [Path(f"{stem}.{suffix}")]
    check_outputs(paths)
    return paths


def report(graph: Any, paths: list[Path]) -> None:
    totals = graph.totals
    typer.echo(
        f"{graph.name}: {len(graph.nodes)} nodes, {format_params(totals.params.total)} "
        f"params, traced with {graph.tracer} on {graph.device} -> "
        f"{', '.join(str(p) for p in paths)}",
        err=True,
    )


def no_model_options(spec: str, *given: object) -> None:
    """Options that build or trace a model mean nothing for a saved graph: say so."""
    if any(given):
        raise SpecError(
            f"{spec} is a saved graph, drawn as it was traced; --input, --kwarg, --config, "
            "--layers, --device and --weights apply only to models"
        )


def check_symbolic(spec: str, symbolic: bool, memory: str = "") -> None:
    """--symbolic runs the model, for every size: refused with a saved graph (no model to
    run), and beside a memory estimate (`memory`: the option that asked for one), which is
    one step's bytes at this call's sizes."""
    if not symbolic:
        return
    if memory:
        raise SpecError(
            f"--symbolic gives shapes for every size, {memory} one step's bytes at this "
            "call's sizes: give one of them"
        )
    if is_saved_graph(spec):
        raise SpecError(
            f"{spec}: a saved graph holds no model to run with symbolic shapes; give the "
            "model, or a graph saved with `fxviz MODEL --symbolic -o graph.json`"
        )


def graph_for(
    spec: str,
    inputs: list[str] | None,
    kwargs: list[str] | None,
    config: list[str] | None,
    device: str | None,
    tracer: str,
    layers: int | None = None,
    memory: bool = False,
    symbolic: bool = False,
    dims: list[str] | None = None,
) -> Any:
    """A saved graph (.json, read without torch) or a model traced now (with a memory
    estimate of a training step, or of inference where nothing is trainable; or with its
    shapes as expressions of named input dims)."""
    symbolic = symbolic or bool(dims)
    check_symbolic(spec, symbolic, "--memory" if memory else "")
    if is_saved_graph(spec):
        no_model_options(spec, inputs, kwargs, config, device, layers)
        return load_graph(spec)
    from fxviz import api

    loaded = api.load(
        spec,
        inputs=inputs or (),
        model_kwargs=kwargs or (),
        device=device,
        config=config or (),
        layers=layers,
    )
    if memory:
        return api.memory(loaded, train="auto", tracer=tracer)
    return api.trace(loaded, tracer=tracer, symbolic=symbolic, dims=dims or ())


def checked(output: list[Path] | None, tracer: str, **drawing: Any) -> tuple[list[Path], Any]:
    """The output paths and the drawing path's one options object (`drawing` as the command
    line spells them: depth, fold, show, …), every option checked before any slow work."""
    from fxviz.drawing import cli_spelling, draw_options
    from fxviz.exporters import check_outputs

    check_tracer(tracer)
    paths = list(output or [])
    check_outputs(paths)
    depth = drawing.get("depth")
    if isinstance(depth, str) and depth.strip().lstrip("-").isdigit():
        drawing["depth"] = int(depth)  # the command line gives every value as text
    return paths, draw_options(cli_spelling, **drawing)


def is_saved_graph(spec: str) -> bool:
    from fxviz.api import is_saved_graph

    return is_saved_graph(spec)


def load_graph(spec: str) -> Any:
    from fxviz.graph import Graph

    return Graph.load(spec)


def file_stem(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("._") or "model"


@contextlib.contextmanager
def exit_on_error(debug: bool) -> Iterator[None]:
    """FxvizError -> one line on stderr and exit 2; --debug shows the traceback too."""
    try:
        yield
    except FxvizError as exc:
        if debug:
            traceback.print_exc()
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@contextlib.contextmanager
def spinner(message: str, quiet: bool) -> Iterator[None]:
    """A spinner on a terminal; nothing in pipes and CI."""
    if quiet or not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield
