"""How much memory a model needs to run and to train, from the lifetimes of its tensors.

The model runs for real, at the ATen level, under a `TorchDispatchMode` (`_Ledger`) that sees
every tensor an op makes and keeps a weak reference to its storage: a storage is allocated
when the first op makes it and freed when torch drops it, so views and in-place ops share
their base's bytes, and what autograd keeps for backward is exactly what stays alive — the
tensors each op's derivative formula saves, no heuristic. On meta (the default) nothing is
allocated: every storage has its size and none has memory behind it.

One training step is: forward, a loss (the sum of each float output), backward, and the
optimizer's step, after a first step on zero gradients has made the optimizer's state (the
steady state a real run is in from its second step on). Gradients are set to None before
each forward, as `zero_grad()` does. With fp32 master weights (mixed precision), the
optimizer steps fp32 copies of the weights, one parameter at a time, and the model's own
bf16/fp16 weights are copied back from them.

What a run sees per module (`_Scopes`): the bytes its ops saved for backward (each storage
once, for the innermost module that saved it, params and buffers left out: they are held
anyway), and the most activation bytes that were live while it ran (with its kernels'
scratch). In backward, the module running is the one whose saved tensors autograd unpacks.

On cpu, what a kernel takes of its own while it runs (oneDNN's reorders of a convolution's
input and output, its LSTM's buffers) is in no tensor: each such kernel is asked for it,
measured of the real kernel at a small batch (`fxviz.tracing.scratch`), and it is live for
that op alone, beside its inputs and outputs.
"""

from __future__ import annotations

import contextlib
import math
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from fxviz.errors import MemoryEstimateError, SpecError, first_line
from fxviz.graph import Graph, MemoryEstimate, ModuleMemory
from fxviz.humanize import format_bytes
from fxviz.loaders.torch_internals import (
    DispatchMode,
    as_exported,
    fake_failure,
    fake_weights,
    tree_flatten,
    tree_map,
    workspace_outputs,
)
from fxviz.tracing.scratch import SCRATCH_OPS, kernel_scratch, real_workspace

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

# What a storage holds, as the report splits the peak.
PARAMS, BUFFERS, GRADS, OPTIMIZER, ACTIVATIONS = (
    "params",
    "buffers",
    "grads",
    "optimizer",
    "activations",
)
# A meta stand-in for a tensor counted already (`_Optimizer.aliases`): in no total.
ALIAS = "alias"
# Phases of a run, as `peak_phase` names them.
FORWARD, BACKWARD, STEP = "forward", "backward", "optimizer step"


@dataclass(frozen=True, slots=True)
class MemorySetup:
    """What to estimate: inference (`train` None) or a training step with that optimizer, at
    `batch` (None: the inputs as given), the weights in `dtype` (None: as built), and for a
    training step in bf16/fp16 whether the optimizer keeps fp32 master weights. `kernels`
    is the device whose kernels the run takes (which ops run, so what they save); `scratch`
    whether the memory CPU kernels take of their own while they run is counted (measured of
    the real kernel: `fxviz.tracing.scratch`)."""

    train: str | None = None
    batch: int | None = None
    dtype: str | None = None
    master_weights: bool = False
    kernels: str = "cpu"
    # Count what CPU kernels take beyond their outputs while they run (`scratch`).
    scratch: bool = True


@dataclass(slots=True)
class _Storage:
    nbytes: int
    born: int
    phase: str
    died: int | None = None
    kind: str = ACTIVATIONS
    counted: bool = True  # in the ledger's `live` (all but what is held the whole run)
    # Its size is the real kernel's, not the fake storage's (a workspace, `_WORKSPACES`).
    sized: bool = False


@dataclass(slots=True)
class _Scopes:
    """Per module path: bytes saved for backward by its own ops, and the most activation
    bytes (and kernel scratch) live while it ran; the stack of modules running now."""

    saved: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    live: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    stack: list[str] = field(default_factory=list)
    backward_at: str = ""

    @property
    def current(self) -> str:
        return self.stack[-1] if self.stack else ""


@dataclass(frozen=True, slots=True)
class _Peak:
    """The highest point so far: its tick, the bytes live (scratch included), the module
    running, and the kernel scratch live then."""

    tick: int = 0
    live: int = 0
    at: str = ""
    scratch: int = 0


class _Ledger(DispatchMode):
    """Every storage an op makes, with the tick it was made and freed at (a tick per op), and
    the scratch a kernel takes while it runs, live only for that op (`scratch`: measure it)."""

    def __init__(self, scopes: _Scopes, scratch: bool = False) -> None:
        super().__init__()
        self.storages: list[_Storage] = []
        self.refs: dict[int, tuple[weakref.ref[Any], _Storage]] = {}
        self.tick = 0
        self.phase = FORWARD
        self.scopes = scopes
        self.live = 0  # bytes alive now, but for weights, buffers and optimizer state
        self.scratch = scratch
        # The highest point so far, and in each phase
        self.peak = _Peak()
        self.peaks: dict[str, _Peak] = {}

    def adopt(self, tensor: torch.Tensor, kind: str) -> None:
        """A tensor that exists before the run (a weight, an input, optimizer state)."""
        self._track(tensor.untyped_storage(), "before", kind)

    def held(self, tensor: torch.Tensor) -> _Storage | None:
        entry = self.refs.get(_storage_key(tensor.untyped_storage()))
        return entry[1] if entry is not None else None

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        out = func(*args, **(kwargs or {}))
        for item in tree_flatten(out)[0]:
            if isinstance(item, torch.Tensor):
                self._track(item.untyped_storage(), self.phase)
        workspace = out[_WORKSPACES[func]] if func in _WORKSPACES else None
        if isinstance(workspace, torch.Tensor):  # None where no gradient is needed
            record = self._track(workspace.untyped_storage(), self.phase)
            assert not kwargs
            grown = real_workspace(func, args, _WORKSPACES[func]) - record.nbytes
            record.nbytes += grown
            record.sized = True
            if record.counted:
                self._grow(grown)
        if self.scratch and func in SCRATCH_OPS:
            # Live while the kernel runs, beside its inputs and outputs, and freed as it ends.
            scratch = kernel_scratch(func, args)
            self._grow(scratch, scratch=scratch)
            self.live -= scratch
        return out

    def _track(self, storage: Any, phase: str, kind: str = ACTIVATIONS) -> _Storage:
        key = _storage_key(storage)
        size = int(storage.nbytes())
        known = self.refs.get(key)
        if known is not None and known[0]() is storage:
            record = known[1]
            if not record.sized and size != record.nbytes:  # an out= op resized it
                grown = size - record.nbytes
                record.nbytes += grown
                if record.counted:
                    self._grow(grown)
            return record
        self.tick += 1
        # Weights, buffers and optimizer state are held the whole run: not part of what rises
        # and falls.
        record = _Storage(storage.nbytes(), self.tick, phase, kind=kind)
        record.counted = kind == ACTIVATIONS
        self.storages.append(record)
        self.refs[key] = (weakref.ref(storage, self._freed(key, record)), record)
        if record.counted:
            self._grow(record.nbytes)
        return record

    def _grow(self, nbytes: int, scratch: int = 0) -> None:
        """`nbytes` more live, of which `scratch` is a kernel's own (live for its op alone)."""
        self.live += nbytes
        if self.phase == FORWARD:
            for path in self.scopes.stack:
                self.scopes.live[path] = max(self.scopes.live[path], self.live)
        if self.live > self.peaks.get(self.phase, _Peak()).live:
            at = self.scopes.current if self.phase == FORWARD else self.scopes.backward_at
            at = at if self.phase != STEP else ""
            self.peaks[self.phase] = _Peak(self.tick, self.live, at, scratch)
            if self.live > self.peak.live:
                self.peak = self.peaks[self.phase]

    def _freed(self, key: int, record: _Storage) -> Callable[[Any], None]:
        def freed(_: Any) -> None:
            self.tick += 1
            record.died = self.tick
            if record.counted:
                self.live -= record.nbytes
            if self.refs.get(key, (None, None))[1] is record:
                del self.refs[key]

        return freed


def _storage_key(storage: Any) -> int:
    return id(storage)


_WORKSPACES = workspace_outputs()


def estimate_memory(
    model: torch.nn.Module,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    setup: MemorySetup,
) -> tuple[MemoryEstimate, dict[str, ModuleMemory]]:
    estimate, shares, _ = estimate_phases(model, args, kwargs, setup)
    return estimate, shares


def estimate_phases(
    model: torch.nn.Module,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    setup: MemorySetup,
) -> tuple[MemoryEstimate, dict[str, ModuleMemory], dict[str, MemoryEstimate]]:
    """The peak of one inference or training step of `model` on `args`/`kwargs`, split by
    what the bytes hold, each module's share, and the peak of each phase (forward,
    backward, optimizer step) split the same way. The run is on fake tensors that take
    `setup.kernels`' kernels, whatever device the model is on (meta included): nothing is
    allocated, and the model is left as it was."""
    check_setup(setup)
    dtype = DTYPES[setup.dtype] if setup.dtype is not None else None
    paths = _module_paths(model)
    was_training = model.training
    model.train(setup.train is not None)
    try:
        with fake_weights(model, setup.kernels, dtype) as (mode, fake):
            with mode:
                args, kwargs = resize_batch(fake((tuple(args), kwargs)), setup.batch)
            ledger, scopes = _run(model, tuple(args), kwargs, setup, mode)
            batch = batch_of((args, kwargs))
            estimate = _estimate(ledger, setup, batch, model)
            phases = {p: _estimate(ledger, setup, batch, model, p) for p in ledger.peaks}
    finally:
        model.train(was_training)
    return estimate, _per_module(scopes, paths), phases


def _run(
    model: torch.nn.Module,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    setup: MemorySetup,
    mode: Any,
) -> tuple[_Ledger, _Scopes]:
    paths = _module_paths(model)
    scopes = _Scopes()
    ledger = _Ledger(scopes, scratch=setup.scratch and setup.kernels == "cpu")
    trainable = [p for p in _unique(model.parameters()) if p.requires_grad]
    optimizer = _optimizer(trainable, setup) if setup.train is not None else None
    for p in _unique(model.parameters()):
        ledger.adopt(p, PARAMS)
    for b in _unique(model.buffers()):
        ledger.adopt(b, BUFFERS)
    for t in tree_flatten((args, kwargs))[0]:
        if isinstance(t, torch.Tensor):
            ledger.adopt(t, ACTIVATIONS)
    if optimizer is not None:
        for t in optimizer.state():
            ledger.adopt(t, OPTIMIZER)
        for t in optimizer.aliases:
            ledger.adopt(t, ALIAS)
    try:
        # The model runs as torch.export would run it (a Hugging Face mask takes its path for
        # tracers, reading no value); the optimizer not: told it is compiled, it would keep
        # its step counts as tensors and compute with them.
        with ledger, _module_scopes(model, paths, scopes, ledger):
            if setup.train is None:
                with mode, as_exported(), torch.no_grad():
                    output = model(*args, **kwargs)
                del output
            else:
                with mode, as_exported(), _saved_scopes(scopes, ledger):
                    output = model(*args, **kwargs)
                    loss = training_loss(output)
                    del output
                    ledger.phase = BACKWARD
                    loss.backward()  # type: ignore[no-untyped-call]
                    del loss
                for p in trainable:
                    held = ledger.held(p.grad) if p.grad is not None else None
                    if held is not None:
                        held.kind = GRADS
                ledger.phase = STEP
                assert optimizer is not None
                optimizer.step()
    except (MemoryEstimateError, SpecError):
        raise
    except Exception as exc:
        reason = fake_failure(exc) or first_line(exc)
        raise MemoryEstimateError(
            f"running {type(model).__name__} to measure its memory failed: {reason}"
        ) from exc
    finally:
        for p in trainable:
            p.grad = None
    return ledger, scopes


def _estimate(
    ledger: _Ledger,
    setup: MemorySetup,
    batch: int | None,
    model: torch.nn.Module,
    phase: str | None = None,
) -> MemoryEstimate:
    """The split of what is held at the run's peak (or at the peak of one `phase`)."""
    peak = ledger.peaks[phase] if phase is not None else ledger.peak
    tick = peak.tick
    split: dict[str, int] = defaultdict(int)
    for record in ledger.storages:
        if record.born <= tick and (record.died is None or record.died > tick):
            split[record.kind] += record.nbytes
    split.pop(ALIAS, None)
    saved = sum(ledger.scopes.saved.values())
    phase = phase or _phase_at(ledger, tick)
    dtype = setup.dtype or _dtype_name(model)
    return MemoryEstimate(
        mode=setup.train or "inference",
        dtype=dtype,
        batch=batch,
        master_weights=setup.master_weights,
        peak=sum(split.values()) + peak.scratch,
        params=split[PARAMS],
        buffers=split[BUFFERS],
        grads=split[GRADS],
        optimizer=split[OPTIMIZER],
        activations=split[ACTIVATIONS],
        saved=saved,
        peak_at=peak.at,
        peak_phase=phase,
        scratch=peak.scratch,
    )


def _phase_at(ledger: _Ledger, tick: int) -> str:
    if ledger.peak.live == 0:
        return FORWARD
    born = [r.phase for r in ledger.storages if r.born == tick]
    return born[-1] if born and born[-1] != "before" else FORWARD


def _per_module(scopes: _Scopes, paths: dict[int, str]) -> dict[str, ModuleMemory]:
    """Each module's saved bytes, its submodules' included, and its live peak."""
    saved: dict[str, int] = defaultdict(int)
    for path, nbytes in scopes.saved.items():
        parts = path.split(".") if path else []
        for depth in range(len(parts) + 1):
            saved[".".join(parts[:depth])] += nbytes
    every = set(paths.values())
    return {
        path: ModuleMemory(saved=saved.get(path, 0), live=scopes.live.get(path, 0))
        for path in sorted(every)
        if path in saved or path in scopes.live
    }


def check_setup(setup: MemorySetup) -> None:
    if setup.train is not None and setup.train not in OPTIMIZERS:
        raise SpecError(
            f"--train {setup.train}: not an optimizer fxviz models; give one of "
            f"{', '.join(OPTIMIZERS)}"
        )
    if setup.batch is not None and setup.batch < 1:
        raise SpecError(f"--batch {setup.batch}: give a batch size of 1 or more")
    if setup.dtype is not None and setup.dtype not in DTYPES:
        raise SpecError(f"--dtype {setup.dtype}: give one of {', '.join(DTYPES)}")
    if setup.kernels not in ("cpu", "cuda"):
        raise SpecError(f"--kernels {setup.kernels}: give cpu or cuda")
    if setup.kernels == "cuda" and not torch.cuda.is_available():
        raise SpecError(
            "--kernels cuda: torch sees no CUDA device here, and asks one which kernels to "
            "run; estimate with --kernels cpu, or run it where a GPU is"
        )
    if setup.master_weights and (setup.train is None or setup.dtype in (None, "fp32")):
        raise SpecError(
            "--master-weights keeps fp32 copies of bf16/fp16 weights for training: give it "
            "with --train and --dtype bf16 or fp16"
        )


def training_loss(output: Any) -> torch.Tensor:
    """The loss a step backpropagates: the sum of every float output that needs a gradient,
    in its own dtype (a real loss, cross-entropy on logits, costs about as little)."""
    leaves = [
        t
        for t in tree_flatten(_plain(output))[0]
        if isinstance(t, torch.Tensor) and t.requires_grad and t.is_floating_point()
    ]
    if not leaves:
        raise MemoryEstimateError(
            "no output of the model needs a gradient (are all its parameters frozen?); "
            "nothing to train: leave out --train to see what inference needs"
        )
    loss = leaves[0].sum()
    for t in leaves[1:]:
        loss = loss + t.sum()
    return loss


def _plain(output: Any) -> Any:
    """A model's output as pytree containers (a Hugging Face ModelOutput is a dict)."""
    if hasattr(output, "to_tuple") and callable(output.to_tuple):
        return output.to_tuple()
    return output


def resize_batch(value: Any, batch: int | None) -> Any:
    """`value` with every tensor whose first dim is the inputs' batch made `batch` long (its
    rows repeated), so masks and token ids stay what they were."""
    if batch is None:
        return value
    first = batch_of(value)
    if first is None:
        raise MemoryEstimateError(
            f"--batch {batch}: the model's inputs have no batch dim to set; give --input "
            "shapes with the batch size you want"
        )

    def resized(t: Any) -> Any:
        if not isinstance(t, torch.Tensor) or not t.ndim or t.shape[0] != first:
            return t
        copies = math.ceil(batch / first)
        return t.repeat(copies, *([1] * (t.ndim - 1)))[:batch].contiguous()

    return tree_map(resized, value)


def batch_of(value: Any) -> int | None:
    """The batch of inputs `value`: its first tensor's first dim (None: no such tensor)."""
    tensors = [t for t in tree_flatten(value)[0] if isinstance(t, torch.Tensor) and t.ndim]
    return int(tensors[0].shape[0]) if tensors else None


def on_meta(value: Any) -> bool:
    """Whether every tensor in `value` is on meta: shapes without values, free at any size."""
    return all(
        t.device.type == "meta" for t in tree_flatten(value)[0] if isinstance(t, torch.Tensor)
    )


def _in_dtype(
    model: torch.nn.Module, value: Any, dtype: torch.dtype
) -> tuple[torch.nn.Module, tuple[Any, ...], dict[str, Any]]:
    """The model's float weights and the float inputs in `dtype` (a model on meta: free)."""
    model = model.to(dtype)

    def cast(t: Any) -> Any:
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            return t.to(dtype)
        return t

    args, kwargs = tree_map(cast, value)
    return model, args, kwargs


def _dtype_name(model: torch.nn.Module) -> str:
    for p in model.parameters():
        if p.is_floating_point():
            return {v: k for k, v in DTYPES.items()}.get(
                p.dtype, str(p.dtype).removeprefix("torch.")
            )
    return "fp32"


def _unique(tensors: Iterator[torch.Tensor]) -> list[torch.Tensor]:
    seen: set[int] = set()
    kept = []
    for t in tensors:
        if id(t) not in seen:
            seen.add(id(t))
            kept.append(t)
    return kept


def _module_paths(model: torch.nn.Module) -> dict[int, str]:
    paths: dict[int, str] = {}
    for path, module in model.named_modules(remove_duplicate=False):
        paths.setdefault(id(module), path)
    return paths


@contextlib.contextmanager
def _module_scopes(
    model: torch.nn.Module, paths: dict[int, str], scopes: _Scopes, ledger: _Ledger
) -> Iterator[None]:
    """The stack of modules whose forwards are running, through global hooks removed after."""
    from torch.nn.modules import module as nn_module

    def pre(module: torch.nn.Module, _: Any) -> None:
        path = paths.get(id(module))
        if path is not None:
            scopes.stack.append(path)
            if ledger.phase == FORWARD:  # what is live as it starts counts, if it makes nothing
                scopes.live[path] = max(scopes.live[path], ledger.live)

    def post(module: torch.nn.Module, _: Any, __: Any) -> None:
        path = paths.get(id(module))
        if path is not None and scopes.stack and scopes.stack[-1] == path:
            scopes.stack.pop()

    handles = [
        nn_module.register_module_forward_pre_hook(pre),
        nn_module.register_module_forward_hook(post, always_call=True),
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        scopes.stack.clear()


@contextlib.contextmanager
def _saved_scopes(scopes: _Scopes, ledger: _Ledger) -> Iterator[None]:
    """What autograd saves, counted for the module saving it (each storage once, weights and
    buffers left out); in backward, the module whose saved tensors are unpacked is running."""
    counted: set[int] = set()

    def pack(tensor: torch.Tensor) -> tuple[torch.Tensor, str]:
        path = scopes.current
        record = ledger.held(tensor)
        if record is not None and record.kind == ACTIVATIONS and id(record) not in counted:
            counted.add(id(record))
            scopes.saved[path] += record.nbytes
        return tensor, path

    def unpack(packed: tuple[torch.Tensor, str]) -> torch.Tensor:
        scopes.backward_at = packed[1]
        return packed[0]

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        yield


@dataclass(slots=True)
class _Optimizer:
    """One optimizer step, run on meta tensors (an optimizer's kernels are the same on every
    device, and meta ones cost a fraction of fake ones): `step`, the optimizer's own tensors
    (`state`: its moments, fp32 master weights) and the meta stand-ins for the model's
    weights and gradients (`aliases`: their bytes are counted where the fake ones live)."""

    step: Callable[[], None]
    state: Callable[[], list[torch.Tensor]]
    aliases: list[torch.Tensor]


def _optimizer(trainable: list[torch.Tensor], setup: MemorySetup) -> _Optimizer:
    """The optimizer's step, its state made by a first step on zero gradients. With master
    weights, fp32 copies are what it steps, one parameter at a time: each gradient is made
    fp32 and its bf16/fp16 one freed, then the copy back into the weight is in place."""
    assert setup.train is not None
    if not trainable:
        raise MemoryEstimateError(
            "every parameter is frozen (requires_grad=False): nothing to train; leave out "
            "--train to see what inference needs"
        )
    if not setup.master_weights:
        shadows = [_meta_like(p) for p in trainable]
        grads = [_meta_like(p) for p in trainable]
        optimizer = _build_optimizer(setup.train, shadows)
        _first_step(optimizer, shadows)

        def step() -> None:
            for param, shadow, grad in zip(trainable, shadows, grads, strict=True):
                shadow.grad = grad if param.grad is not None else None
            optimizer.step()
            for shadow in shadows:
                shadow.grad = None

        return _Optimizer(step, lambda: _state_tensors(optimizer), [*shadows, *grads])
    masters = [_meta_like(p, torch.float32) for p in trainable]
    optimizer = _build_optimizer(setup.train, masters)
    _first_step(optimizer, masters)
    group = optimizer.param_groups[0]

    def step_each() -> None:
        # One optimizer, its group narrowed to one master at a time: its state is keyed by
        # tensor, so each step finds its own moments (one optimizer per parameter costs a
        # first step each).
        try:
            for param, master in zip(trainable, masters, strict=True):
                if param.grad is None:
                    continue
                master.grad = _meta_like(param, torch.float32)  # param.grad.float()
                param.grad = None
                group["params"] = [master]
                optimizer.step()
                master.grad = None
        finally:
            group["params"] = masters

    def state() -> list[torch.Tensor]:
        return [*masters, *_state_tensors(optimizer)]

    return _Optimizer(step_each, state, [])


def _meta_like(tensor: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    return torch.empty(tensor.shape, dtype=dtype or tensor.dtype, device="meta")


def _build_optimizer(name: str, params: list[torch.Tensor]) -> torch.optim.Optimizer:
    # foreach off, as torch picks for CPU tensors; a CUDA run's foreach kernels would add
    # temporaries the size of all parameters at once.
    if name == "sgd":
        return torch.optim.SGD(params, lr=1e-3, foreach=False)
    if name == "momentum":
        return torch.optim.SGD(params, lr=1e-3, momentum=0.9, foreach=False)
    if name == "adam":
        return torch.optim.Adam(params, lr=1e-3, foreach=False)
    return torch.optim.AdamW(params, lr=1e-3, foreach=False)


def _first_step(optimizer: torch.optim.Optimizer, params: list[torch.Tensor]) -> None:
    for p in params:
        p.grad = torch.zeros_like(p)
    optimizer.step()
    for p in params:
        p.grad = None


def _state_tensors(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [
        t
        for state in optimizer.state.values()
        for t in state.values()
        if isinstance(t, torch.Tensor)
    ]


def with_memory(graph: Graph, estimate: MemoryEstimate, shares: dict[str, ModuleMemory]) -> Graph:
    """`graph` carrying the estimate, and each module in its tree its share."""
    modules = tuple(replace(m, memory=shares.get(m.path)) for m in graph.modules)
    return replace(graph, memory=estimate, modules=modules)


def fit_batch(
    run: Callable[[int], MemoryEstimate], budget: int, most: int = 1 << 20
) -> MemoryEstimate:
    """The estimate at the largest batch whose peak is within `budget` bytes. Two runs give
    the bytes per sample; the batch they predict, and the one after it, are checked; where
    peaks do not grow in a straight line (padding, workspaces), bisection closes the bounds."""
    known: dict[int, MemoryEstimate] = {}

    def fits(batch: int) -> bool:
        if batch not in known:
            known[batch] = run(batch)
        return known[batch].peak <= budget

    if not fits(1):
        raise MemoryEstimateError(
            f"even a batch of 1 needs {format_bytes(known[1].peak)} at its peak, more than "
            f"the {format_bytes(budget)} given to --fit ({_split_words(known[1])})"
        )
    if not fits(2):
        return known[1]
    per_sample = known[2].peak - known[1].peak
    guess = most if per_sample <= 0 else 2 + (budget - known[2].peak) // per_sample
    low, high = 2, None  # the largest batch known to fit, the smallest known not to
    while high is None:
        guess = min(max(guess, low + 1), most)
        if not fits(guess):
            high = guess
        elif guess == most:
            return known[most]
        elif not fits(guess + 1):
            return known[guess]
        else:
            low, guess = guess + 1, 2 * guess
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return known[low]


def _split_words(estimate: MemoryEstimate) -> str:
    parts = [
        ("weights", estimate.params + estimate.buffers),
        ("gradients", estimate.grads),
        ("optimizer state", estimate.optimizer),
        ("activations", estimate.activations),
        ("kernel scratch", estimate.scratch),
    ]
    return ", ".join(f"{name} {format_bytes(n)}" for name, n in parts if n)
