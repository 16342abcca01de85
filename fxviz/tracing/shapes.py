"""Shape propagation: run the fx graph once on its device, recording values and FLOPs per node.

Modelled on `torch.fx.passes.shape_prop.ShapeProp`: an Interpreter whose `run_node` lets the
interpreter work and stores what came out in `node.meta`. On meta, an op with no meta kernel
is re-run for that one node on CPU (zeros in, shapes out), and a note says so.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import fx
from torch.utils.flop_counter import FlopCounterMode

from fxviz.errors import ShapeError, first_line
from fxviz.graph import Value
from fxviz.humanize import format_shape
from fxviz.loaders.inputs import example_input
from fxviz.loaders.meta import is_meta_failure
from fxviz.loaders.torch_internals import (
    TreeSpec,
    is_immutable_container,
    keyword_order,
    mkldnn_enabled,
    set_mkldnn_enabled,
    tree_flatten,
    tree_map,
)
from fxviz.tracing.explain import mismatch
from fxviz.tracing.fx import raised_by_fxviz
from fxviz.tracing.keys import FLOPS, VALUE


class ShapePropagation(fx.Interpreter):
    """`in_spec`: an exported graph's input structure, whose placeholders are the leaves of
    the inputs (a dict of tensors is one placeholder per tensor)."""

    def __init__(
        self, module: fx.GraphModule, device: str, in_spec: TreeSpec | None = None
    ) -> None:
        super().__init__(module)
        self.in_spec = in_spec
        # Interpreter.run appends "While executing …" to any exception passing through,
        # ours included; a ShapeError already names the node.
        self.extra_traceback = False
        self.graph_module = module
        self.device = device
        self.notes: list[str] = []
        self._flops = FlopCounterMode(display=False)

    def propagate(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.in_spec is not None:
            flat = input_leaves(self.in_spec, args, kwargs)
        else:
            flat = _bind(self.graph_module, args, kwargs)
        with torch.no_grad(), counted_attention(self.device, self.module), self._flops:
            return self.run(*flat)

    def run_node(self, n: fx.Node) -> Any:
        before = self._flops.get_total_flops()
        try:
            result = super().run_node(n)
        except Exception as exc:  # the model rejected its input: report the node and shapes
            if raised_by_fxviz(exc):
                raise
            if self.device == "meta" and is_meta_failure(exc):
                result = self._run_on_cpu(n, exc)
            else:
                raise self._failure(n, exc) from exc
        n.meta[VALUE] = summarize(result)
        n.meta[FLOPS] = self._flops.get_total_flops() - before
        return result

    def fetch_args_kwargs_from_env(self, n: fx.Node) -> tuple[tuple[Any, ...], dict[str, Any]]:
        # fx hands constant lists over as immutable_list; user code (torchvision's swin3d
        # window helper) may mutate its arguments, as it can when called eagerly.
        args, kwargs = super().fetch_args_kwargs_from_env(n)
        return _mutable(args), _mutable(kwargs)

    def _run_on_cpu(self, n: fx.Node, exc: Exception) -> Any:
        args, kwargs = self.fetch_args_kwargs_from_env(n)
        args, kwargs = tree_map(_to_cpu, (args, kwargs))
        if n.op == "call_module":
            target: Any = copy.deepcopy(self.fetch_attr(str(n.target))).to_empty(device="cpu")
        elif n.op == "call_method":
            self_obj, *args = args
            target = getattr(self_obj, str(n.target))
        else:
            target = n.target
        try:
            result = target(*args, **kwargs)
        except Exception as cpu_exc:
            raise self._failure(n, cpu_exc) from cpu_exc
        self.notes.append(
            f"{n.name}: no meta kernel ({first_line(exc)}); its shapes were computed on cpu"
        )
        return tree_map(_to_meta, result)

    def _failure(self, n: fx.Node, exc: BaseException) -> ShapeError:
        shapes = ", ".join(
            format_shape(v.shape)
            for i in n.all_input_nodes
            for v in i.meta.get(VALUE, ())
            if v.shape is not None
        )
        if n.op == "call_module":
            what = f"{n.target} ({type(self.fetch_attr(str(n.target))).__name__})"
        else:
            what = str(n.target) if n.op == "call_method" else _callable_name(n.target)
        inputs = f" with input shapes {shapes}" if shapes else ""
        reason = f"node {n.name!r}, {what}, failed{inputs}: {first_line(exc)}"
        read = mismatch(n, self.graph_module)
        if read:
            return ShapeError(read, reason)
        return ShapeError(
            f"{reason}; check the --input shapes against what the model expects", reason
        )


@contextlib.contextmanager
def counted_attention(device: str, model: torch.nn.Module) -> Iterator[None]:
    """Run attention and RNNs through kernels `FlopCounterMode` can count, as meta always does.

    nn.MultiheadAttention's fused fast path, SDPA's CPU flash kernel and oneDNN's fused CPU
    LSTM/GRU have no FLOP formula: they would count as zero on cpu. The plain paths give the
    same shapes, and the same FLOPs on every device. oneDNN is turned off only for a model
    with an RNN: without it CPU convolutions run about 4× slower (ConvNeXt-T: 0.86 s)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    fastpath = torch.backends.mha.get_fastpath_enabled()
    mkldnn = mkldnn_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        if device == "cpu":
            if any(isinstance(m, torch.nn.RNNBase) for m in model.modules()):
                set_mkldnn_enabled(False)
            with sdpa_kernel([SDPBackend.MATH]):
                yield
        else:
            yield
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        set_mkldnn_enabled(mkldnn)


def device_of(model: torch.nn.Module, args: Sequence[Any], kwargs: dict[str, Any]) -> str:
    """Where a model runs: meta if anything is on meta, else the first tensor's device."""
    devices = [t.device.type for t in (*model.parameters(), *tensors_in((args, kwargs)))]
    return "meta" if "meta" in devices else devices[0] if devices else "cpu"


def tensors_in(value: Any) -> list[torch.Tensor]:
    """Every tensor in a nested structure of inputs or outputs."""
    found: list[torch.Tensor] = []
    tree_map(lambda x: found.append(x) if isinstance(x, torch.Tensor) else None, value)
    return found


def input_leaves(in_spec: TreeSpec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    """The inputs' leaves in an exported graph's placeholder order (its `in_spec`)."""
    order = keyword_order(in_spec)
    if order is not None and set(order) == set(kwargs):
        kwargs = {key: kwargs[key] for key in order}
    leaves, spec = tree_flatten((tuple(args), kwargs))
    if spec != in_spec:
        raise ShapeError(
            "the inputs do not have the structure the program was exported with: "
            f"{spec} is not {in_spec}"
        )
    return leaves


def _bind(gm: fx.GraphModule, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    """Placeholders in order: positional inputs, then keywords by name, then their defaults."""
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if len(args) > len(placeholders):
        raise ShapeError(
            f"{len(args)} inputs given, but forward takes {len(placeholders)} "
            f"({', '.join(str(p.target) for p in placeholders)})"
        )
    values: list[Any] = list(args)
    unknown = set(kwargs) - {str(p.target).lstrip("*") for p in placeholders}
    if unknown:
        raise ShapeError(
            f"forward has no argument named {sorted(unknown)[0]!r}; "
            f"it takes {', '.join(str(p.target) for p in placeholders)}"
        )
    for p in placeholders[len(args) :]:
        name = str(p.target)
        if name in kwargs:
            values.append(kwargs[name])
        elif p.args:
            values.append(p.args[0])
        else:
            shape = example_input(gm) if p is placeholders[0] else "SHAPE"
            raise ShapeError(
                f"forward's argument {name!r} has no input; add --input for it "
                f"(--input {name}={shape}) or give it in example_inputs()"
            )
    return values


def _mutable(value: Any) -> Any:
    if is_immutable_container(value):
        return (
            {k: _mutable(v) for k, v in value.items()}
            if isinstance(value, dict)
            else [_mutable(v) for v in value]
        )
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_mutable(v) for v in value)
    if isinstance(value, dict):
        return {k: _mutable(v) for k, v in value.items()}
    return value


def _to_cpu(x: Any) -> Any:
    if isinstance(x, torch.Tensor) and x.is_meta:
        return torch.zeros(x.shape, dtype=x.dtype)
    return x


def _to_meta(x: Any) -> Any:
    return torch.empty_like(x, device="meta") if isinstance(x, torch.Tensor) else x


def summarize(value: Any, path: str = "") -> tuple[Value, ...]:
    """Flatten a node's result into Values: tensors, scalars, and tuples/dicts of them."""
    if isinstance(value, torch.Tensor):
        return (
            Value(
                "tensor",
                path,
                shape=tuple(int(d) for d in value.shape),
                dtype=str(value.dtype).removeprefix("torch."),
                device=value.device.type,
            ),
        )
    if isinstance(value, torch.Size):
        return (Value("other", path, text=f"size({', '.join(map(str, value))})"),)
    if isinstance(value, tuple | list):
        return tuple(v for i, item in enumerate(value) for v in summarize(item, f"{path}[{i}]"))
    if isinstance(value, dict):
        return tuple(v for k, item in value.items() for v in summarize(item, f"{path}[{k!r}]"))
    if value is None:
        return (Value("none", path),)
    if isinstance(value, bool):
        return (Value("bool", path, text=repr(value)),)
    if isinstance(value, int):
        return (Value("int", path, text=repr(value)),)
    if isinstance(value, float):
        return (Value("float", path, text=repr(value)),)
    if isinstance(value, str):
        return (Value("str", path, text=value[:80]),)
    return (Value("other", path, text=type(value).__name__),)


def _callable_name(target: Any) -> str:
    return getattr(target, "__name__", None) or str(target)
