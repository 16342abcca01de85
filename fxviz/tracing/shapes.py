"""Shape propagation: run the fx graph once on its device, recording values and FLOPs per node.

Modelled on `torch.fx.passes.shape_prop.ShapeProp`: an Interpreter whose `run_node` lets the
interpreter work and stores what came out in `node.meta`. On meta, an op with no meta kernel
is re-run for that one node on CPU (zeros in, shapes out), and a note says so.
"""

from __future__ import annotations

import contextlib
import copy
import operator
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import fx
from torch.utils.flop_counter import conv_flop_count

from fxviz.errors import ShapeError, first_line
from fxviz.graph import Value
from fxviz.humanize import format_shape
from fxviz.loaders.inputs import example_input
from fxviz.loaders.meta import is_meta_failure
from fxviz.loaders.torch_internals import (
    FlopCount,
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
        self,
        module: torch.nn.Module,
        device: str,
        in_spec: TreeSpec | None = None,
        graph: fx.Graph | None = None,
    ) -> None:
        super().__init__(module, graph=graph)  # no graph: a GraphModule's own
        self.in_spec = in_spec
        # Interpreter.run appends "While executing …" to any exception passing through,
        # ours included; a ShapeError already names the node.
        self.extra_traceback = False
        self.device = device
        self.notes: list[str] = []
        self._flops = FlopCount()

    def propagate(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.in_spec is not None:
            flat = input_leaves(self.in_spec, args, kwargs)
        else:
            flat = _bind(self.module, self.graph, args, kwargs)
        with torch.no_grad(), counted_attention(self.device, self.module):
            return self.run(*flat)

    def run_node(self, n: fx.Node) -> Any:
        before = self._flops.total
        module = self.submodules.get(str(n.target)) if n.op == "call_module" else None
        formula = flop_formula(n, module)
        if formula is None and counts_flops(n, module):
            counting: contextlib.AbstractContextManager[Any] = self._flops
        elif isinstance(module, torch.nn.MultiheadAttention):
            counting = _mha_fastpath()  # counted by its formula: its fused kernel may run
        else:
            counting = contextlib.nullcontext()
        with counting:
            try:
                result = super().run_node(n)
            except Exception as exc:  # the model rejected its input: report node and shapes
                if raised_by_fxviz(exc):
                    raise
                if self.device == "meta" and is_meta_failure(exc):
                    result = self._run_on_cpu(n, exc)
                else:
                    raise self._failure(n, exc) from exc
        n.meta[VALUE] = summarize(result)
        if formula is not None:
            n.meta[FLOPS] = formula(result)
        else:
            n.meta[FLOPS] = self._flops.total - before
        return result

    def fetch_args_kwargs_from_env(self, n: fx.Node) -> tuple[tuple[Any, ...], dict[str, Any]]:
        # fx hands constant lists over as immutable_list; user code (torchvision's swin3d
        # window helper) may mutate its arguments, as it can when called eagerly.
        args, kwargs = super().fetch_args_kwargs_from_env(n)
        return _mutable(args), _mutable(kwargs)

    def call_module(self, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return self.submodules[str(target)](*args, **kwargs)  # no attribute walk per call

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
        return tree_map(to_meta, result)

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
        read = mismatch(n, self.module)
        if read:
            return ShapeError(read, reason)
        return ShapeError(
            f"{reason}; check the --input shapes against what the model expects", reason
        )


def counts_flops(n: fx.Node, module: torch.nn.Module | None) -> bool:
    """Whether running `n` (calling `module`, for a module's node) can do work
    `FlopCounterMode` counts: matrix products, convolutions, attention. Only those nodes run
    under the counting dispatch mode, which costs every ATen op a trip through Python:
    elementwise ops, norms, pooling and views count zero FLOPs anyway, and a node that is none
    of the known ones is counted."""
    return counts_call(n.op, n.target, module)


def counts_call(op: str, target: Any, module: torch.nn.Module | None = None) -> bool:
    """`counts_flops` for a call as fx records it: (op, target), the module for a module's."""
    if op == "call_module":
        return not isinstance(module, _UNCOUNTED_MODULES)
    if op == "call_function":
        if getattr(target, "__name__", None) == "__get__":
            return False  # a tensor's attribute (`x.shape`, `x.T`): no work
        try:
            return target not in _UNCOUNTED_FUNCTIONS
        except TypeError:  # unhashable: a callable object
            return True
    if op == "call_method":
        return str(target) not in _UNCOUNTED_METHODS
    return False


def flop_formula(n: fx.Node, module: torch.nn.Module | None) -> Callable[[Any], int] | None:
    """The FLOPs of the commonest leaf modules from shapes alone, by `FlopCounterMode`'s own
    formulas, so that their node needs no dispatch mode at all: a function of the node's
    result, or None where the mode must count. Exact classes only: a subclass may compute
    something else. Tests check each against the mode, on cpu and meta."""
    exact = type(module) in (torch.nn.Linear, *_CONVS, torch.nn.MultiheadAttention)
    if not exact:
        return None
    if isinstance(module, torch.nn.Linear):
        in_features = module.in_features
        return lambda out: 2 * out.numel() * in_features  # mm: 2·rows·in·out, no bias
    if isinstance(module, torch.nn.modules.conv._ConvNd):
        weight = list(module.weight.shape)
        return lambda out: _conv_flops(weight, list(out.shape))
    if isinstance(module, torch.nn.MultiheadAttention):
        shapes = _argument_shapes(n, ("query", "key"))
        if shapes is not None:
            flops = _attention_flops(module, *shapes)
            return lambda out: flops
    return None


_CONVS = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)

CallFlops = Callable[[Sequence[Any], dict[str, Any], torch.Tensor], int]


def call_flop_formula(function: Any) -> CallFlops | None:
    """`flop_formula` for the functions those modules call (what a recorded run sees): a
    function of (args, kwargs, result), or None where the mode must count that call."""
    try:
        return _CALL_FORMULAS.get(function)
    except TypeError:  # an unhashable callable
        return None


def _argument(args: Sequence[Any], kwargs: dict[str, Any], index: int, name: str) -> Any:
    return args[index] if len(args) > index else kwargs.get(name)


def _linear_flops(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> int:
    weight = _argument(args, kwargs, 1, "weight")
    return 2 * out.numel() * int(weight.shape[-1])  # as nn.Linear's: 2·rows·in·out


def _addmm_flops(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> int:
    mat1 = _argument(args, kwargs, 1, "mat1")
    return 2 * out.numel() * int(mat1.shape[-1])  # mm's: the bias is not counted


def _conv_call_flops(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> int:
    weight = _argument(args, kwargs, 1, "weight")
    return _conv_flops(list(weight.shape), list(out.shape))


def _attention_call_flops(args: Sequence[Any], kwargs: dict[str, Any], out: torch.Tensor) -> int:
    """scaled_dot_product_attention's two matrix products, as torch's `sdpa_flop_count`
    (grouped-query attention included: each query head attends to all S keys)."""
    query = _argument(args, kwargs, 0, "query")
    key = _argument(args, kwargs, 1, "key")
    length, embed = int(query.shape[-2]), int(query.shape[-1])
    rows = int(query.numel()) // max(length * embed, 1)  # batch × query heads
    keys, value_embed = int(key.shape[-2]), int(out.shape[-1])
    return 2 * rows * length * keys * (embed + value_embed)


_CALL_FORMULAS: dict[Any, CallFlops] = {
    torch.nn.functional.scaled_dot_product_attention: _attention_call_flops,
    torch.nn.functional.linear: _linear_flops,
    torch.addmm: _addmm_flops,
    torch.conv1d: _conv_call_flops,
    torch.conv2d: _conv_call_flops,
    torch.conv3d: _conv_call_flops,
}


def _conv_flops(weight: list[int], out: list[int]) -> int:
    if len(out) < len(weight):  # unbatched: torch adds the batch dimension of 1
        out = [1, *out]
    # conv_flop_count reads its input's shape only for the batch size (for a convolution
    # that is not transposed), which the output has too.
    return int(conv_flop_count(out, weight, out))


def _attention_flops(
    mha: torch.nn.MultiheadAttention, query: tuple[int, ...], key: tuple[int, ...]
) -> int:
    """nn.MultiheadAttention's projections and attention as its unfused path counts them:
    q, k, v in (from kdim and vdim), the two attention matmuls over S keys (one more for a
    bias_k or a zero attention column each), the output projection."""
    if len(query) == 2:  # unbatched
        (length, embed), batch, keys = query, 1, key[0]
    elif mha.batch_first:
        (batch, length, embed), keys = query, key[1]
    else:
        (length, batch, embed), keys = query, key[0]
    kdim, vdim = int(mha.kdim), int(mha.vdim)
    projections = 2 * batch * (length * embed + keys * kdim + keys * vdim) * embed
    attended = keys + (mha.bias_k is not None) + bool(mha.add_zero_attn)
    return projections + 4 * batch * length * attended * embed + 2 * batch * length * embed**2


def _argument_shapes(n: fx.Node, names: tuple[str, ...]) -> list[tuple[int, ...]] | None:
    """The shapes of a call's first tensor arguments, positional or by keyword (`names`)."""
    found = []
    for i, name in enumerate(names):
        arg = n.args[i] if i < len(n.args) else n.kwargs.get(name)
        values = arg.meta.get(VALUE) if isinstance(arg, fx.Node) else None
        if not values or values[0].shape is None:
            return None
        found.append(values[0].shape)
    return found


@contextlib.contextmanager
def _mha_fastpath(enabled: bool = True) -> Iterator[None]:
    """nn.MultiheadAttention's fused fast path on or off, restored after."""
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(enabled)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


_nn = torch.nn
# Torch's own leaf modules whose forward runs no matrix product, convolution or attention.
_UNCOUNTED_MODULES: tuple[type[torch.nn.Module], ...] = (
    _nn.ReLU, _nn.ReLU6, _nn.GELU, _nn.SiLU, _nn.Sigmoid, _nn.Tanh, _nn.Hardswish,
    _nn.Hardsigmoid, _nn.LeakyReLU, _nn.ELU, _nn.Mish, _nn.Softmax, _nn.LogSoftmax,
    _nn.Dropout, _nn.Dropout1d, _nn.Dropout2d, _nn.Dropout3d, _nn.Identity, _nn.Flatten,
    _nn.Unflatten, _nn.modules.batchnorm._NormBase, _nn.LayerNorm, _nn.GroupNorm,
    _nn.RMSNorm, _nn.LocalResponseNorm, _nn.modules.pooling._MaxPoolNd,
    _nn.modules.pooling._AvgPoolNd, _nn.modules.pooling._AdaptiveAvgPoolNd,
    _nn.modules.pooling._AdaptiveMaxPoolNd, _nn.Embedding, _nn.modules.padding._ConstantPadNd,
    _nn.modules.padding._ReflectionPadNd, _nn.modules.padding._ReplicationPadNd,
    _nn.Upsample, _nn.PixelShuffle, _nn.PixelUnshuffle, _nn.ChannelShuffle,
)  # fmt: skip
_F = torch.nn.functional
_UNCOUNTED_FUNCTIONS: frozenset[Any] = frozenset(
    {
        getattr, operator.getitem, operator.add, operator.iadd, operator.sub, operator.isub,
        operator.mul, operator.imul, operator.truediv, operator.itruediv, operator.floordiv,
        operator.neg, operator.pow, operator.eq, operator.ne, operator.lt, operator.gt,
        torch.add, torch.sub, torch.mul, torch.div, torch.cat, torch.stack, torch.flatten,
        torch.reshape, torch.transpose, torch.permute, torch.relu, torch.sigmoid, torch.tanh,
        torch.softmax, torch.unsqueeze, torch.squeeze, torch.chunk, torch.split, torch.narrow,
        torch.mean, torch.sum, torch.exp, torch.rsqrt, torch.sqrt, torch.where, torch.arange,
        torch.zeros, torch.ones, torch.full, torch.roll, torch.clamp, torch.pow, torch.gather,
        torch.tril, torch.triu, torch.zeros_like, torch.ones_like, torch.full_like,
        torch.Tensor.split, operator.and_, operator.or_, operator.invert, operator.le,
        operator.ge, operator.mod,
        _F.relu, _F.relu6, _F.gelu, _F.silu, _F.sigmoid, _F.hardswish, _F.hardsigmoid,
        _F.softmax, _F.log_softmax, _F.dropout, _F.layer_norm, _F.group_norm, _F.batch_norm,
        _F.adaptive_avg_pool2d, _F.adaptive_avg_pool1d, _F.avg_pool2d, _F.max_pool2d,
        _F.interpolate, _F.pad, _F.normalize, _F.embedding,
    }
)  # fmt: skip
_UNCOUNTED_METHODS = frozenset(
    {
        "view", "reshape", "permute", "transpose", "contiguous", "flatten", "unflatten",
        "unsqueeze", "squeeze", "expand", "expand_as", "size", "dim", "chunk", "split",
        "unbind", "mean", "sum", "softmax", "sigmoid", "relu", "tanh", "add", "add_", "mul",
        "mul_", "div", "div_", "sub", "neg", "float", "half", "to", "type_as", "masked_fill",
        "masked_fill_", "clamp", "pow", "exp", "sqrt", "rsqrt", "repeat", "narrow", "roll",
        "bool", "long", "int", "detach", "clone", "new_ones", "new_zeros", "new_full",
        "new_empty", "gather", "tril", "triu",
    }
)  # fmt: skip


@contextlib.contextmanager
def counted_attention(device: str, model: torch.nn.Module, counting: bool = True) -> Iterator[None]:
    """Run attention and RNNs through kernels `FlopCounterMode` can count, as meta always does.

    nn.MultiheadAttention's fused fast path, SDPA's CPU flash kernel and oneDNN's fused CPU
    LSTM/GRU have no FLOP formula: they would count as zero on cpu. The plain paths give the
    same shapes, and the same FLOPs on every device. oneDNN is turned off only for a model
    with an RNN: without it CPU convolutions run about 4× slower (ConvNeXt-T: 0.86 s).
    Not `counting` (a run that counts no FLOPs), only the calls are kept the same (the fast
    path is another function); each op takes the kernel it would: SDPA's fused CPU kernel is
    one op where its plain path is a dozen, each computing its sizes as expressions."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    mkldnn = mkldnn_enabled()
    try:
        with _mha_fastpath(False):
            if device == "cpu" and counting:
                if any(isinstance(m, torch.nn.RNNBase) for m in model.modules()):
                    set_mkldnn_enabled(False)
                with sdpa_kernel([SDPBackend.MATH]):
                    yield
            else:
                yield
    finally:
        set_mkldnn_enabled(mkldnn)


def device_of(model: torch.nn.Module, args: Sequence[Any], kwargs: dict[str, Any]) -> str:
    """Where a model runs: meta if anything is on meta, else the first tensor's device."""
    devices = [t.device.type for t in (*model.parameters(), *tensors_in((args, kwargs)))]
    return "meta" if "meta" in devices else devices[0] if devices else "cpu"


def tensors_in(value: Any) -> list[torch.Tensor]:
    """Every tensor in a nested structure of inputs or outputs."""
    found: list[torch.Tensor] = []
    map_tensors(value, found.append)
    return found


# What holds no tensor: a walk stops at these without asking pytree.
_ATOMS = (
    int, float, complex, str, bytes, type(None), type(...), slice, torch.dtype, torch.device,
    torch.layout, torch.memory_format,
)  # fmt: skip


def map_tensors(value: Any, function: Callable[[torch.Tensor], Any]) -> Any:
    """`value` with `function` applied to each tensor in it, the structure kept: pytree's
    `tree_map` restricted to tensors, with the plain tuples, lists and dicts every op's
    arguments are made of walked directly (pytree's generic walk cost a recorded run of
    GPT-2 a third of its time); other containers (named tuples, a model's output classes)
    are pytree's."""
    if isinstance(value, torch.Tensor):
        return function(value)
    kind = type(value)
    if kind is tuple:
        return tuple(map_tensors(item, function) for item in value)
    if kind is list:
        return [map_tensors(item, function) for item in value]
    if kind is dict:
        return {key: map_tensors(item, function) for key, item in value.items()}
    if isinstance(value, _ATOMS):
        return value
    return tree_map(lambda x: function(x) if isinstance(x, torch.Tensor) else x, value)


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


def _bind(
    root: torch.nn.Module, graph: fx.Graph, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> list[Any]:
    """Placeholders in order: positional inputs, then keywords by name, then their defaults."""
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
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
            shape = example_input(root) if p is placeholders[0] else "SHAPE"
            raise ShapeError(
                f"forward's argument {name!r} has no input; add --input for it "
                f"(--input {name}={shape}) or give it in example_inputs()"
            )
    return values


def _mutable(value: Any) -> Any:
    if isinstance(value, torch.Tensor | int | float | str | None):
        return value
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


def to_meta(x: Any) -> Any:
    """A meta tensor of `x`'s shape and dtype (`x` itself if it is one); anything else as
    it is."""
    if not isinstance(x, torch.Tensor) or x.is_meta:
        return x
    return torch.empty_like(x, device="meta")


def summarize(
    value: Any,
    path: str = "",
    device: str | None = None,
    sizes: Callable[[Any], tuple[int, str]] | None = None,
) -> tuple[Value, ...]:
    """Flatten a node's result into Values: tensors, scalars, and tuples/dicts of them.
    `device`: the device to say tensors are on, for a run on meta that stands for another.
    `sizes`: for a run on symbolic shapes, each dim's (number in this call, expression)."""
    if isinstance(value, torch.Tensor):
        dims = [sizes(d) for d in value.shape] if sizes is not None else None
        return (
            Value(
                "tensor",
                path,
                shape=tuple(d[0] for d in dims) if dims else tuple(int(d) for d in value.shape),
                dtype=str(value.dtype).removeprefix("torch."),
                device=device or value.device.type,
                expr=tuple(d[1] for d in dims) if dims is not None else None,
            ),
        )
    if isinstance(value, torch.Size):
        return (Value("other", path, text=f"size({', '.join(map(str, value))})"),)
    if isinstance(value, tuple | list):
        return tuple(
            v
            for i, item in enumerate(value)
            for v in summarize(item, f"{path}[{i}]", device, sizes)
        )
    if isinstance(value, dict):
        return tuple(
            v for k, item in value.items() for v in summarize(item, f"{path}[{k!r}]", device, sizes)
        )
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
