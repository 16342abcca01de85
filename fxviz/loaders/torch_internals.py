"""Every private torch and torchvision API fxviz relies on, each behind one small function.

torch does not promise to keep these: a release may rename a module, change a record's format
or drop an attribute. Each use lives here, once, and `tests/loaders/test_torch_internals.py`
checks each against the installed torch, so an upgrade that breaks one fails a test that names
it instead of drawing something wrong.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, TypeVar

import torch
from torch._subclasses.fake_tensor import (
    DataDependentOutputException,
    DynamicOutputShapeException,
    FakeTensorMode,
)
from torch.fx.immutable_collections import immutable_dict, immutable_list
from torch.utils._python_dispatch import TorchDispatchMode

# torch's pytree helpers (how fxviz walks nested inputs and outputs) have no public module yet.
from torch.utils._pytree import TreeSpec as TreeSpec
from torch.utils._pytree import keystr as keystr
from torch.utils._pytree import tree_flatten as tree_flatten
from torch.utils._pytree import tree_flatten_with_path as tree_flatten_with_path
from torch.utils._pytree import tree_map as tree_map
from torch.utils._pytree import tree_unflatten as tree_unflatten

_IMMUTABLE = (immutable_list, immutable_dict)


def mkldnn_enabled() -> bool:
    """Whether oneDNN (mkldnn) kernels are on: `torch.backends.mkldnn.flags()` would also
    set TF32 and warn about it."""
    return bool(torch._C._get_mkldnn_enabled())


def set_mkldnn_enabled(enabled: bool) -> None:
    torch._C._set_mkldnn_enabled(enabled)


def export_schema_major() -> int:
    """The major version of the torch.export serialization schema this torch reads."""
    from torch._export.serde.schema import SCHEMA_VERSION

    return int(SCHEMA_VERSION[0])


@contextlib.contextmanager
def torchvision_weights_only() -> Iterator[None]:
    """torchvision's builders fetch published weights through `torchvision.models._api`'s
    `load_state_dict_from_url`, whose default unpickles anything: make it weights_only."""
    from torchvision.models import _api

    original = _api.load_state_dict_from_url
    _api.load_state_dict_from_url = functools.partial(original, weights_only=True)
    try:
        yield
    finally:
        _api.load_state_dict_from_url = original


class StackEntry(NamedTuple):
    """One module of a node's `nn_module_stack`: the record's key (one per call: `fc`,
    `fc@1`), the module's path, and its class (a class, or its qualified name as a string)."""

    key: str
    path: str
    cls: Any


def module_stack(node: torch.fx.Node) -> list[StackEntry]:
    """The modules whose forwards were running when an fx or export node was made, outermost
    first, from the node's `nn_module_stack` record."""
    return [
        StackEntry(str(key), str(path), cls)
        for key, (path, cls) in (node.meta.get("nn_module_stack") or {}).items()
    ]


class Frame(NamedTuple):
    file: str
    line: int
    function: str
    code: str


# `File "/x/net.py", line 12, in forward\n    code`: the format of export's `stack_trace`.
_FRAME = re.compile(
    r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)\n(?P<code>[^\n]*)'
)


def stack_frames(node: torch.fx.Node) -> list[Frame]:
    """The Python frames an export node records (`meta["stack_trace"]`), outermost first."""
    return frames_in(node.meta.get("stack_trace") or "")


def frames_in(text: str) -> list[Frame]:
    """The frames a traceback-style text names (`File "/x/net.py", line 12, in forward` and
    its code line), in order."""
    return [
        Frame(m["file"], int(m["line"]), m["func"], m["code"].strip())
        for m in _FRAME.finditer(text)
    ]


def qualified_name(function: Any) -> str:
    """`torch.nn.functional.relu` for a function an fx node calls."""
    from torch.fx.node import _get_qualified_name

    return str(_get_qualified_name(function))


def schema_argument_names(target: Any) -> list[str] | None:
    """The argument names an ATen op's schema gives (`self, dim, index` for `aten.select`),
    or None for anything that is not an ATen op."""
    schema = getattr(target, "_schema", None)
    if schema is None or not hasattr(schema, "arguments"):
        return None
    return [str(argument.name) for argument in schema.arguments]


def method_schemas(name: str) -> list[list[tuple[str, str]]]:
    """For a Tensor method (`permute`), the (name, type) of each positional argument after
    `self` in each overload of the ATen op of that name (`[("dims", "int[]")]`), the
    default overload first; out= and Dimname overloads left out."""
    packet = getattr(torch.ops.aten, name, None)
    if packet is None:
        return []
    overloads = sorted(packet.overloads(), key=lambda o: o != "default")
    found = []
    for overload in overloads:
        # The schema as written (`aten::mean.dim(Tensor self, int[1]? dim, bool keepdim=False,
        # *, ScalarType? dtype=None) -> Tensor`): its Argument objects call a dtype an int.
        text = str(getattr(packet, overload)._schema)
        inside = text[text.index("(") + 1 : text.rindex(") ->")]
        typed = []
        for item in inside.split(", "):
            if item == "*":
                break
            kind, _, name = item.partition("=")[0].rpartition(" ")
            typed.append((name, re.sub(r"\([^)]*\)", "", kind)))
        if typed and typed[0] == ("self", "Tensor") and "out" not in overload:
            if not any("Dimname" in kind for _, kind in typed):
                found.append(typed[1:])
    return found


def torch_op_parameters(target: Any) -> list[inspect.Parameter]:
    """The parameters of a builtin torch function (`torch.flatten`), which has no Python
    signature: those of the first overload fx knows for it; none if it knows none."""
    from torch.fx.operator_schemas import get_signature_for_torch_op

    signatures = get_signature_for_torch_op(target)  # None for what is not a torch op
    return list(signatures[0].parameters.values()) if signatures else []


def aten_packet(target: Any) -> Any:
    """The overload packet of an ATen op (`aten.add` for `aten.add.Tensor`), else None."""
    return getattr(target, "_overloadpacket", None)


def is_immutable_container(value: Any) -> bool:
    """fx hands constant lists and dicts to the ops it runs as its own immutable types."""
    return isinstance(value, _IMMUTABLE)


def keyword_order(in_spec: Any) -> list[str] | None:
    """The keyword inputs' names in an exported program's `(args, kwargs)` input spec.
    (`TreeSpec.child` is new in torch 2.10; `children_specs` is deprecated there.)"""
    if in_spec.num_children != 2:
        return None
    child = in_spec.child(1) if hasattr(in_spec, "child") else in_spec.children_specs[1]
    return list(child.context or ())


class FlopCount:
    """FLOPs counted as `torch.utils.flop_counter.FlopCounterMode` counts them (its formulas,
    its decompositions, its higher-order ops), without its attribution to modules.

    `FlopCounterMode` tracks every module call with global hooks to attribute FLOPs to module
    paths; fxviz counts per graph node, so those hooks were pure cost (about a fifth of a
    shape propagation's time on DenseNet-121). Its dispatch mode, private, is reused as it is:
    it calls back `_count_flops` and keeps `flop_counts` for `cond`'s branches."""

    def __init__(self) -> None:
        from torch.utils.flop_counter import flop_registry

        self.flop_registry = {**flop_registry, **_grouped_mm_formulas()}
        self.flop_counts: dict[str, dict[Any, int]] = defaultdict(lambda: defaultdict(int))
        self._modes: list[Any] = []
        self.formulas = 0  # FLOPs worked out from shapes, with no mode, added by `add`

    @property
    def total(self) -> int:
        return sum(self.flop_counts["Global"].values()) + self.formulas

    def add(self, flops: int) -> None:
        self.formulas += flops

    def _count_flops(self, packet: Any, out: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        formula = self.flop_registry.get(packet)
        if formula is not None:
            self.flop_counts["Global"][packet] += formula(*args, **kwargs, out_val=out)
        return out

    def __enter__(self) -> FlopCount:
        from torch.utils.flop_counter import _FlopCounterMode

        # It calls back only `_count_flops` and `flop_counts`, which this class has.
        mode: Any = _FlopCounterMode(self)  # type: ignore[arg-type]
        mode.__enter__()
        self._modes.append(mode)
        return self

    def __exit__(self, *exc: object) -> None:
        self._modes.pop().__exit__(*exc)


def _grouped_mm_flops(
    mat_a: Any, mat_b: Any, *args: Any, out_val: Any = None, **kwargs: Any
) -> int:
    """A grouped matrix product (a mixture of experts' `grouped_mm`: each group of rows of
    `mat_a` times its own matrix of `mat_b`), 2·M·N·K summed over the groups, as `mm`'s
    formula counts each. torch's flop counter has no formula for it, so every expert of a
    Mixtral or DeepSeek layer counted zero."""
    if mat_a.dim() == 2 and mat_b.dim() == 2:  # groups split K: out is (groups, M, N)
        return 2 * int(mat_a.shape[0]) * int(mat_a.shape[1]) * int(mat_b.shape[-1])
    return 2 * int(out_val.numel()) * int(mat_a.shape[-1])  # (S, K) x (E, K, N), or batched


def _grouped_mm_formulas() -> dict[Any, Any]:
    """FLOP formulas by op packet for torch's `_grouped_mm` and, where transformers has
    registered it, its float32 stand-in `transformers::grouped_mm_fallback` (what its
    experts run when `_grouped_mm` takes bfloat16 only)."""
    formulas: dict[Any, Any] = {torch.ops.aten._grouped_mm: _grouped_mm_flops}
    if torch._C._dispatch_has_kernel("transformers::grouped_mm_fallback"):
        formulas[torch.ops.transformers.grouped_mm_fallback] = _grouped_mm_flops
    return formulas


@contextlib.contextmanager
def fake_tensors(shape_env: Any = None) -> Iterator[Any]:
    """A FakeTensorMode (what torch.export traces with) that takes the model's weights as they
    are, meta or real: every op computes shapes only, and code that asks whether it is being
    traced (a Hugging Face mask that would read its values) is told that it is. Its logger's
    report of an op it cannot run is silenced: the caller reports the failure its own way.
    With a `shape_env`, sizes may be its symbols."""
    log = logging.getLogger("torch._subclasses.fake_tensor")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        with FakeTensorMode(allow_non_fake_inputs=True, shape_env=shape_env) as mode:
            yield mode
    finally:
        log.setLevel(level)


def fake_failure(exc: BaseException) -> str | None:
    """What a run on fake tensors could not do, in words, where the exception names only an
    op (`aten.nonzero.default`); None for any other failure."""
    if isinstance(exc, DynamicOutputShapeException):
        return f"the size of {exc.func}'s output depends on the values"
    if isinstance(exc, DataDependentOutputException):
        return f"{exc.func} reads a tensor's values"
    return None


def fake_inputs(mode: Any, value: Any) -> Any:
    """`value` with each tensor made a fake one of `mode`, on its own device."""
    return tree_map(lambda x: mode.from_tensor(x) if isinstance(x, torch.Tensor) else x, value)


@contextlib.contextmanager
def as_exported() -> Iterator[None]:
    """What torch.export's non-strict tracing tells a model while it runs it:
    `torch.compiler.is_compiling()` and `is_exporting()` are True. Code with a path for
    tracers takes it (a Hugging Face mask that would read its values to skip itself), so a
    run under this takes the path export would."""
    from torch._export.utils import _compiling_state_context

    with _compiling_state_context():
        yield


@contextlib.contextmanager
def weights_on_meta(model: torch.nn.Module) -> Iterator[None]:
    """The model's parameters and buffers swapped, for the `with` block, for meta tensors of
    their shapes and dtypes (`torch.func.functional_call`'s swap), and restored after: a run
    computes shapes only, allocates nothing, and the model is left as it was. Tied weights
    stay tied: one meta tensor stands for each tensor, whatever its names."""
    from torch.nn.utils.stateless import _reparametrize_module

    metas: dict[int, torch.Tensor] = {}

    def meta(tensor: torch.Tensor) -> torch.Tensor:
        if id(tensor) not in metas:
            empty = torch.empty_like(tensor, device="meta")
            if isinstance(tensor, torch.nn.Parameter):
                empty = torch.nn.Parameter(empty, requires_grad=tensor.requires_grad)
            metas[id(tensor)] = empty
        return metas[id(tensor)]

    named = [
        *model.named_parameters(remove_duplicate=False),
        *model.named_buffers(remove_duplicate=False),
    ]
    with _reparametrize_module(model, {name: meta(t) for name, t in named}):
        yield


@contextlib.contextmanager
def fake_weights(
    model: torch.nn.Module, device: str, dtype: torch.dtype | None = None
) -> Iterator[tuple[Any, Callable[[Any], Any]]]:
    """The model's parameters and buffers swapped, for the `with` block, for fake tensors that
    say they are on `device` (so every op takes the kernels that device would: CPU's oneDNN
    LSTM, its fused attention) with meta storages behind them: nothing is allocated, and the
    model is left as it was. Floating ones are made `dtype` where given. Yields the mode, and
    what makes a value's tensors fake the same way (inputs). Tied weights stay tied."""
    from torch.nn.utils.stateless import _reparametrize_module

    mode = FakeTensorMode(allow_non_fake_inputs=True)
    converter = mode.fake_tensor_converter
    target = torch.device(device)

    def fake(tensor: torch.Tensor) -> torch.Tensor:
        kind = dtype if dtype is not None and tensor.is_floating_point() else tensor.dtype
        meta = (
            torch.empty_strided(tensor.shape, tensor.stride(), dtype=kind, device="meta")
            if kind == tensor.dtype
            else torch.empty(tensor.shape, dtype=kind, device="meta")
        )
        made: torch.Tensor = converter.from_meta_and_device(mode, meta, target)
        return made

    fakes: dict[int, torch.Tensor] = {}

    def swapped(tensor: torch.Tensor) -> torch.Tensor:
        if id(tensor) not in fakes:
            made = fake(tensor)
            if isinstance(tensor, torch.nn.Parameter):
                made = torch.nn.Parameter(made, requires_grad=tensor.requires_grad)
            fakes[id(tensor)] = made
        return fakes[id(tensor)]

    def inputs(value: Any) -> Any:
        return tree_map(lambda x: fake(x) if isinstance(x, torch.Tensor) else x, value)

    named = [
        *model.named_parameters(remove_duplicate=False),
        *model.named_buffers(remove_duplicate=False),
    ]
    log = logging.getLogger("torch._subclasses.fake_tensor")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        with _reparametrize_module(model, {name: swapped(t) for name, t in named}):
            yield mode, inputs
    finally:
        log.setLevel(level)


class DispatchMode(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """torch's `TorchDispatchMode` (torch.utils._python_dispatch, private): a subclass sees
    every ATen op below autograd, in `__torch_dispatch__`."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)  # type: ignore[no-untyped-call]


@contextlib.contextmanager
def no_dispatch_modes() -> Iterator[None]:
    """Every TorchDispatchMode (a FakeTensorMode too) off for the block: ops run for real."""
    from torch.utils._python_dispatch import _disable_current_modes

    with _disable_current_modes():
        yield


def workspace_outputs() -> dict[Any, int]:
    """Ops whose meta kernel says its workspace output is empty while the real kernel's is
    not, each with that output's index: oneDNN's LSTM layer (CPU), whose size has no formula
    outside oneDNN (it pads and aligns every buffer)."""
    ops: dict[Any, int] = {}
    layer = getattr(torch.ops.aten, "mkldnn_rnn_layer", None)
    if layer is not None:
        ops[layer.default] = 3
    return ops


class ScratchOp(NamedTuple):
    """A CPU kernel that takes memory of its own while it runs: where its batch is ((argument,
    dim) for each tensor argument whose size grows with the batch), and whether its scratch is
    what it makes resident rather than what it asks torch's allocator for (`resident`: it asks
    for more than it touches)."""

    batch: tuple[tuple[int, int], ...]
    resident: bool = False


def scratch_ops() -> dict[Any, ScratchOp]:
    """CPU kernels that take memory of their own while they run, beyond the tensors they
    return. oneDNN's convolution reorders its input and output to and from its blocked layout
    (and its backward, the gradients), in buffers of torch's allocator; its LSTM layer keeps
    every step's gates and states (its input is time-major, so the batch is dim 1; the states'
    dim 0) in a workspace of which inference touches a quarter."""
    aten = torch.ops.aten
    ops: dict[Any, ScratchOp] = {
        aten.convolution.default: ScratchOp(((0, 0),)),
        aten.convolution_backward.default: ScratchOp(((0, 0), (1, 0))),
    }
    layer = getattr(aten, "mkldnn_rnn_layer", None)
    if layer is not None:
        ops[layer.default] = ScratchOp(((0, 1), (5, 0), (6, 0)), resident=True)
    return ops


_T = TypeVar("_T")


def profiling() -> bool:
    """Whether torch's profiler is recording in this process (a user's own session: a second
    one inside it would end it)."""
    return bool(torch._C._autograd._profiler_enabled())


def allocated_peak(call: Callable[[], _T]) -> tuple[_T, int]:
    """What `call()` returns, and the most bytes torch's CPU allocator held at once during it
    above what it held before (its outputs included), from the profiler's memory events.
    Kineto, which records them, is told to write no log lines (one on each start and stop
    otherwise) unless the process set `KINETO_LOG_LEVEL` itself."""
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")
    with torch.autograd.profiler.profile(profile_memory=True) as profiled:
        result = call()
    events = [
        e
        for e in profiled.kineto_results.events()
        if e.name() == "[memory]" and e.device_type() == torch._C._autograd.DeviceType.CPU
    ]
    held = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        held += event.nbytes()
        peak = max(peak, held)
    return result, peak


class BreakRecord(NamedTuple):
    """A graph break as TorchDynamo records it on the graph it ended: its reason text and the
    user's frames (file, line, function, code), outermost first."""

    reason: str
    frames: list[Frame]


def graph_break_of(gm: torch.fx.GraphModule) -> BreakRecord | None:
    """The break that ended a graph TorchDynamo hands its backend (`compile_subgraph_reason`,
    what `torch._dynamo.explain` reads), or None when the graph ended with its frame."""
    reason = getattr(gm, "compile_subgraph_reason", None)
    if reason is None or not reason.graph_break:
        return None
    frames = [
        Frame(f.filename, int(f.lineno or 0), f.name, (f.line or "").strip())
        for f in reason.user_stack or ()
    ]
    return BreakRecord(str(reason.reason), frames)


def guard_failures() -> list[str]:
    """Every guard failure TorchDynamo recorded since its last reset, as it writes them
    (`0/0: self.calls == 0  # self.calls += 1  # net.py:12 in forward (HINT: …)`)."""
    from torch._dynamo.utils import guard_failures as failures

    return [str(text) for texts in list(failures.values()) for text in texts]


def dynamo_reset() -> None:
    """Forget every compiled frame and cache: each capture starts from nothing."""
    torch._dynamo.reset()


@contextlib.contextmanager
def dynamo_quiet() -> Iterator[None]:
    """TorchDynamo's warnings (`Graph break from Tensor.item()…`) off while fxviz captures:
    fxviz reports each break itself."""
    logger = logging.getLogger("torch._dynamo")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
