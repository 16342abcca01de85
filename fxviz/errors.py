"""Every failure a user can cause, as one hierarchy.

FxvizError            anything the user can fix; the CLI prints it in one line and exits 2
├── SpecError         a model spec, --input, --kwarg or option value that cannot be parsed
├── ModelNotFoundError  the spec parsed, but names no model we can find
├── ModelLoadError    the model exists but building it failed (import error, constructor raised)
├── DeviceError       the requested --device is not available
├── TraceError        no tracer could turn the model into a graph
├── CompileError      torch.compile could not run the model, or broke it more than allowed
├── MemoryEstimateError  the model could not be run to measure its memory, or nothing fits
├── ShapeError        shape propagation failed at a node (names the node and its input shapes)
├── RenderError       DOT could not become SVG/PNG/PDF (no renderer, renderer failed)
├── OutputError       an output path cannot be written (unknown suffix, missing folder, …)
└── SchemaError       a saved graph JSON is corrupt, not a graph, or from a newer fxviz
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable


class FxvizError(Exception):
    """A problem with what the user asked for; the message says what was wrong and what to try."""


class SpecError(FxvizError, ValueError):
    """A model spec, input spec or option value could not be parsed."""


class ModelNotFoundError(FxvizError, LookupError):
    """The spec names no model we can find."""


class ModelLoadError(FxvizError):
    """The model exists but could not be built."""


class DeviceError(FxvizError):
    """The requested device is not available."""


class TraceError(FxvizError):
    """No tracer could turn the model into a graph; `reason` is the cause alone, in one line."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


class CompileError(FxvizError):
    """torch.compile (TorchDynamo) could not run the model, or found more graph breaks than
    allowed (`fxviz compile --max-breaks`)."""


class MemoryEstimateError(FxvizError):
    """The model could not be run to measure the memory it needs (`fxviz memory`), it has
    nothing to train, or no batch fits in the memory given to `--fit`."""


class ShapeError(FxvizError):
    """Shape propagation failed at a node; `reason` is which node failed and why, without the
    advice the message adds."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


class RenderError(FxvizError):
    """DOT could not be rendered to the requested format."""


class LayoutTimeoutError(RenderError):
    """Graphviz took longer than allowed to lay out a picture."""


class OutputError(FxvizError):
    """An output file cannot be written."""


class WorkerError(FxvizError):
    """The processes that draw a gallery's entries cannot be started."""


class SchemaError(FxvizError, ValueError):
    """A saved graph is corrupt, not a graph, or written by a newer schema."""


def did_you_mean(
    word: str, choices: Iterable[str], *, n: int = 1, shown: Callable[[str], str] = str
) -> str:
    """`did you mean params?` for what a user misspelled, from the closed list it belongs
    to; "" when nothing is close. The one place such suggestions are made."""
    close = difflib.get_close_matches(word, list(choices), n=n)
    return f"did you mean {', '.join(map(shown, close))}?" if close else ""


def first_line(exc: BaseException, limit: int = 240) -> str:
    """The first line of an exception's message, at most `limit` characters: torch's errors
    run to many lines, and symbolic shapes to thousands of characters."""
    lines = str(exc).strip().splitlines()
    line = lines[0] if lines else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"
