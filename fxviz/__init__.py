"""fxviz: draw PyTorch models — shapes, modules and parameters, from a model name to an SVG."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fxviz.api import compiled, draw, load, memory, trace
from fxviz.diff import Change, GraphDiff, diff
from fxviz.drawing import DrawOptions
from fxviz.errors import (
    CompileError,
    DeviceError,
    FxvizError,
    MemoryEstimateError,
    ModelLoadError,
    ModelNotFoundError,
    OutputError,
    RenderError,
    SchemaError,
    ShapeError,
    SpecError,
    TraceError,
)
from fxviz.graph import (
    SCHEMA_VERSION,
    Compilation,
    CompiledGraph,
    Graph,
    GraphBreak,
    MemoryEstimate,
    Module,
    ModuleMemory,
    Node,
    ParamCount,
    Recompile,
    SourceLocation,
    Value,
)

try:
    __version__ = version("fxviz")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = [
    "Change",
    "Compilation",
    "CompileError",
    "CompiledGraph",
    "DeviceError",
    "DrawOptions",
    "FxvizError",
    "Graph",
    "GraphBreak",
    "GraphDiff",
    "MemoryEstimate",
    "MemoryEstimateError",
    "ModelLoadError",
    "ModelNotFoundError",
    "Module",
    "ModuleMemory",
    "Node",
    "OutputError",
    "ParamCount",
    "Recompile",
    "RenderError",
    "SCHEMA_VERSION",
    "SchemaError",
    "ShapeError",
    "SourceLocation",
    "SpecError",
    "TraceError",
    "Value",
    "__version__",
    "compiled",
    "diff",
    "draw",
    "load",
    "memory",
    "trace",
]
