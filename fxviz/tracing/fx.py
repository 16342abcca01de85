"""torch.fx symbolic tracing that keeps leaf modules whole and remembers source lines."""

from __future__ import annotations

import contextlib
import functools
import inspect
import linecache
import os
import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

import torch
from torch import fx

from fxviz.errors import FxvizError, TraceError, first_line
from fxviz.graph import SourceLocation, parent_path
from fxviz.tracing.constants import assigned, factory_call, is_tracer_name, node_name

# With the separator: site-packages/torchvision must not match site-packages/torch.
_TORCH_DIR = str(Path(torch.__file__).parent) + os.sep
_FXVIZ_DIR = str(Path(__file__).parent.parent) + os.sep


class _Tracer(fx.Tracer):
    """fx's tracer, plus extra leaf types and a cheap source location per call node.

    fx's own `record_stack_traces` formats the whole stack for every node and keeps fx's
    frames in it; walking frames to the first one outside torch is cheaper and cleaner.
    """

    def __init__(
        self,
        leaf_types: tuple[type[torch.nn.Module], ...] = (),
        leaf_paths: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__()
        self.leaf_types = leaf_types
        self.leaf_paths = leaf_paths
        self._names: tuple[dict[int, str], dict[int, str], dict[int, str]] | None = None

    def is_leaf_module(self, m: torch.nn.Module, module_qualified_name: str) -> bool:
        return module_qualified_name in self.leaf_paths or is_leaf(
            m, module_qualified_name, self.leaf_types
        )

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Any]) -> Any:
        """fx's own rule, by a lookup: fx finds a parameter's or buffer's name by scanning
        `named_parameters()` at every attribute access, which made tracing ConvNeXt (whose
        blocks read `self.layer_scale`) quadratic in its parameter count."""
        if not isinstance(attr_val, torch.Tensor):
            return attr_val
        parameters, buffers = self._attribute_names()
        name = parameters.get(id(attr_val)) if isinstance(attr_val, torch.nn.Parameter) else None
        if name is None and self.proxy_buffer_attributes:
            name = buffers.get(id(attr_val))
        if name is None:
            return attr_val
        if name not in parameter_proxy_cache:  # (this tracer leaves param_shapes_constant off)
            parameter_proxy_cache[name] = self.create_proxy("get_attr", name, (), {})
        return parameter_proxy_cache[name]

    def _attribute_names(self) -> tuple[dict[int, str], dict[int, str]]:
        """The root's parameters' and buffers' names, by tensor id (one walk, `_index`)."""
        return self._index()[:2]

    def _bases(self) -> dict[int, str]:
        """Each parameter's and buffer's name by its own id and by the id of the tensor it
        views: a view of a buffer that is itself a view (`arange(49).view(7, 7)`) has that
        tensor, not the buffer, as its `_base`."""
        return self._index()[2]

    def _index(self) -> tuple[dict[int, str], dict[int, str], dict[int, str]]:
        if self._names is None:
            parameters = dict(self.root.named_parameters())
            buffers = dict(self.root.named_buffers())
            named = [*parameters.items(), *buffers.items()]
            viewed = {id(t._base): name for name, t in reversed(named) if t._base is not None}
            viewed.update((id(t), name) for name, t in reversed(named))
            self._names = (
                {id(p): name for name, p in parameters.items()},
                {id(b): name for name, b in buffers.items()},
                viewed,
            )
        return self._names

    def create_arg(self, a: Any) -> Any:
        """fx's own, but a tensor fx stores as a constant (`_tensor_constant12`) is named by
        what made it, and drawn in the module whose forward read it (`constants.py`)."""
        made = super().create_arg(a)
        if (
            isinstance(a, torch.Tensor)
            and isinstance(made, fx.Node)
            and made.op == "get_attr"
            and is_tracer_name(str(made.target))
        ):
            self._name_constant(made, a)
        return made

    def _name_constant(self, node: fx.Node, tensor: torch.Tensor) -> None:
        base = tensor._base
        viewed = None if base is None else self._bases().get(id(base))
        if viewed is not None:  # `self.relative_position_index.view(-1)`, run eagerly by fx
            target, scope = viewed, parent_path(viewed)
        else:
            scope = next(reversed(self.module_stack.values()))[0] if self.module_stack else ""
            target = made_by(sys._getframe(2), tensor)
        node.meta["fxviz_target"] = target
        node.meta["fxviz_scope"] = scope
        node.meta["fxviz_name"] = node_name(target)

    def create_node(self, kind: str, target: Any, *args: Any, **kwargs: Any) -> fx.Node:
        node = super().create_node(kind, target, *args, **kwargs)
        if kind.startswith("call_"):
            owner = (
                next(reversed(self.module_stack.values()))[1]
                if self.module_stack
                else type(self.root)
            )
            node.meta["fxviz_source"] = user_source(sys._getframe(1), owner)
        return node


_FX_TRACER = fx.Tracer()


def made_by(frame: FrameType | None, tensor: torch.Tensor) -> str:
    """What made a tensor the model's code holds: the tensor-making call of the variable
    it is in (`torch.arange(49)` for `coords`), else of the line reading it, else the
    variable's name; "tensor" when the code says nothing."""
    while frame is not None and not is_outside_torch(frame.f_code.co_filename):
        frame = frame.f_back
    if frame is None:
        return "tensor"
    variable = next((k for k, v in frame.f_locals.items() if v is tensor), None)
    if variable is not None:
        return assigned(frame.f_code, variable) or variable
    line = linecache.getline(frame.f_code.co_filename, frame.f_lineno)
    return factory_call(line) or "tensor"


def is_leaf(
    module: torch.nn.Module,
    path: str,
    leaf_types: tuple[type[torch.nn.Module], ...] = (),
    expand: tuple[str, ...] = (),
) -> bool:
    """The one leaf rule of every tracer: fx's own (`Tracer.is_leaf_module`: torch.nn
    built-ins but Sequential), plus extra types, minus the classes the user asked to see
    inside (`--expand LSTM`)."""
    if type(module).__name__ in expand:
        return False
    return isinstance(module, leaf_types) or _FX_TRACER.is_leaf_module(module, path)


MAX_OPAQUE_SUBMODULES = 8


@dataclass(frozen=True)
class Traced:
    """fx's graph of `root`, whose modules and tensors its nodes name. Not a GraphModule: that
    would generate and compile Python code for the graph (a fifth of tracing DenseNet-121),
    and nothing runs that code; an `fx.Interpreter` runs the graph over `root`.

    `opaque`: each submodule fx could not follow (drawn as one box), with the reason."""

    root: torch.nn.Module
    graph: fx.Graph
    opaque: dict[str, str]


def symbolic_trace(
    module: torch.nn.Module, leaf_types: tuple[type[torch.nn.Module], ...] = ()
) -> Traced:
    """Trace `module` with fx. A submodule fx cannot follow becomes one box (a leaf, its shapes
    from running it) rather than losing fx for the whole model; `opaque` lists them with the
    reason. Failing in the root's own forward is a TraceError at the user's line."""
    opaque: dict[str, str] = {}
    paths = {m: path for path, m in module.named_modules() if path}
    while True:
        tracer = _Tracer(leaf_types, frozenset(opaque))
        try:
            graph = tracer.trace(module)
        except Exception as exc:  # fx raises TraceError, TypeError, RuntimeError, … from user code
            if raised_by_fxviz(exc):
                raise
            reason = f"{why_fx_failed(exc)}{failing_line(exc)}"
            culprit = _failing_submodule(exc, paths)
            if culprit is None or culprit in opaque or len(opaque) >= MAX_OPAQUE_SUBMODULES:
                raise TraceError(
                    f"torch.fx cannot trace {type(module).__name__}: {reason}; "
                    "try --tracer export (or auto, which tries it next)",
                    reason=reason,
                ) from exc
            opaque[culprit] = reason
            continue
        read_after_mutation(graph, tracer.root)
        return Traced(tracer.root, graph, opaque)


def read_after_mutation(graph: fx.Graph, root: torch.nn.Module) -> None:
    """`x.relu_()` changes `x`: whatever reads `x` after it reads the mutation's node, so the
    drawn edge carries the data that flowed (fx records the read of `x` itself). An in-place
    op returns the tensor it changed, so the graph computes the same."""
    order = {n: i for i, n in enumerate(graph.nodes)}
    modules = dict(root.named_modules(remove_duplicate=False))
    for n in list(graph.nodes):
        changed = mutated_input(n, modules)
        if changed is None:
            continue
        for user in list(changed.users):
            if user is not n and order[user] > order[n]:
                user.replace_input_with(changed, n)


def mutated_input(n: fx.Node, modules: Mapping[str, torch.nn.Module]) -> fx.Node | None:
    """The node an in-place op changes: `x.add_(y)`, `F.relu(x, inplace=True)`, `x += y` on
    a tensor, a module built with `inplace=True`; None for anything else."""
    first = n.args[0] if n.args else None
    if not isinstance(first, fx.Node):
        return None
    if n.op == "call_method":
        name = str(n.target)
        inplace = name.endswith("_") and not name.startswith("_")
    elif n.op == "call_function":
        name = getattr(n.target, "__name__", "")
        inplace = n.kwargs.get("inplace") is True or name in _INPLACE_OPERATORS
    elif n.op == "call_module":
        inplace = getattr(modules.get(str(n.target)), "inplace", False) is True
    else:
        inplace = False
    return first if inplace else None


# `x += y` traces to operator.iadd, which changes a tensor `x` in place.
_INPLACE_OPERATORS = frozenset(
    {"iadd", "isub", "imul", "itruediv", "ifloordiv", "imod", "ipow", "iand", "ior", "ixor"}
)


def raised_by_fxviz(exc: BaseException) -> bool:
    """The failure started in fxviz's own code (source lookup, the recorder, a hook) and is
    not an FxvizError: a bug to report as it is, never a reason to try another tracer."""
    frames = traceback.extract_tb(exc.__traceback__)
    return (
        not isinstance(exc, FxvizError)
        and not getattr(exc, _RAISED_BY_AN_OP, False)
        and bool(frames)
        and frames[-1].filename.startswith(_FXVIZ_DIR)
    )


_RAISED_BY_AN_OP = "_fxviz_raised_by_an_op"


def raised_by_an_op(exc: BaseException) -> None:
    """Mark a failure of a torch op that fxviz called for the model (the recorder runs each
    of the model's calls): a C++ op leaves no frame of its own, so the innermost frame is
    fxviz's, but the failure is the model's."""
    with contextlib.suppress(AttributeError, TypeError):  # an exception with no __dict__
        setattr(exc, _RAISED_BY_AN_OP, True)


def why_fx_failed(exc: BaseException) -> str:
    """What fx could not follow, in a user's words; fx's own message where it is clear."""
    text = first_line(exc)
    if "co_varnames is too small" in text:
        return (
            "its forward takes *args or **kwargs (itself or through a decorator), "
            "which fx cannot make graph inputs of"
        )
    if "does not support item assignment" in text:
        return "the code writes into a traced value (`x[i] = …`), which fx cannot record"
    if "cannot be iterated" in text or "cannot be used as inputs to control flow" in text:
        return "Python control flow depends on a tensor (a loop over it, or an `if` on its value)"
    return text


def _failing_submodule(exc: BaseException, paths: dict[torch.nn.Module, str]) -> str | None:
    """The innermost submodule (not the root) whose own method was running when fx failed."""
    tb, found = exc.__traceback__, None
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        if isinstance(owner, torch.nn.Module) and owner in paths:
            found = paths[owner]
        tb = tb.tb_next
    return found


def user_source(frame: FrameType | None, owner: Any = None) -> SourceLocation | None:
    """The line in the code of `owner` (the module class whose forward is running) that led
    to this frame; else the innermost frame outside torch and fxviz."""
    code = own_code(owner) if isinstance(owner, type) else frozenset()
    innermost: FrameType | None = None
    while frame is not None:
        key = _code_key(frame.f_code)
        if key is not None:
            if key in code:
                innermost = frame
                break
            innermost = innermost or frame
        frame = frame.f_back
    if innermost is None:
        return None
    code_ = innermost.f_code
    module_name = innermost.f_globals.get("__name__", "")
    return _location(code_.co_filename, innermost.f_lineno, code_.co_name, module_name)


@functools.cache
def _location(filename: str, lineno: int, function: str, module_name: str) -> SourceLocation:
    """One line's location, made once: a layer's ops repeat the same lines every layer."""
    return SourceLocation(
        file=relative_file(filename, module_name),
        line=lineno,
        function=function,
        code=linecache.getline(filename, lineno).strip(),
    )


@functools.cache
def _code_key(code: CodeType) -> tuple[str, str] | None:
    """(file, function name) of a frame's code outside torch and fxviz, else None; cached,
    as every traced op walks a dozen frames or more."""
    return (code.co_filename, code.co_name) if is_outside_torch(code.co_filename) else None


@functools.cache
def own_code(cls: type) -> frozenset[tuple[str, str]]:
    """(file, function name) of every method a module class defines or inherits, below
    `nn.Module`: a line in one of them is a line of that module's forward, helpers included."""
    found: set[tuple[str, str]] = set()
    for klass in cls.__mro__:
        if klass in (torch.nn.Module, object):
            continue
        for value in vars(klass).values():
            function = getattr(value, "__func__", value)  # staticmethod, classmethod
            # A decorated forward (transformers' `@check_model_inputs`) runs the decorator's
            # `wrapper` first: the module's line is in the function it wraps.
            function = inspect.unwrap(function) if callable(function) else function
            code = getattr(function, "__code__", None)
            if code is not None:
                found.add((code.co_filename, code.co_name))
    return frozenset(found)


def is_outside_torch(filename: str) -> bool:
    """A frame of the user's (or a model library's) code, not torch's or fxviz's own."""
    return not filename.startswith((_TORCH_DIR, _FXVIZ_DIR, "<"))


def relative_file(filename: str, module_name: str) -> str:
    """`torchvision/models/resnet.py` for a module's file: never an absolute path."""
    path = Path(filename)
    if module_name and module_name != "__main__":
        parts = module_name.split(".")
        if path.name == "__init__.py":
            parts.append("__init__")
        return "/".join(parts[:-1] + [path.name])
    return path.name


def failing_line(exc: BaseException) -> str:
    """` at net.py:12 `code``: the deepest frame of the user's code in a traceback."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if is_outside_torch(f.filename)]
    if not frames:
        return ""
    last = frames[-1]
    return f" at {Path(last.filename).name}:{last.lineno} `{(last.line or '').strip()}`"
