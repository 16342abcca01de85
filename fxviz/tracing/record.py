"""The recording tracer: run the model once and record what executes.

For models neither fx nor torch.export can follow (torchvision's detection models iterate over
images and keep data-dependent box counts; a `forward` may branch on a tensor's value). Leaf
module calls are seen through global forward hooks and torch functions through a
`TorchFunctionMode`, both installed only for the run and always removed; each is appended to
a module-level fx graph, which the converter every tracer shares turns into Nodes. The graph
shows the path this one input took; another input could take another.
"""

from __future__ import annotations

import contextlib
import copy
import operator
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import torch
from torch import fx
from torch.overrides import TorchFunctionMode

from fxviz.errors import TraceError, first_line
from fxviz.graph import Dim, Node, within
from fxviz.humanize import format_bytes
from fxviz.loaders.torch_internals import (
    FlopCount,
    as_exported,
    fake_failure,
    fake_inputs,
    fake_tensors,
    tree_flatten,
    tree_map,
    weights_on_meta,
)
from fxviz.tracing.annotate import Undrawn, fx_nodes
from fxviz.tracing.export import LeafCalls, forward_argument_names, leaf_call_hooks
from fxviz.tracing.fx import (
    failing_line,
    is_leaf,
    raised_by_an_op,
    raised_by_fxviz,
    user_source,
)
from fxviz.tracing.keys import FLOPS, VALUE
from fxviz.tracing.shapes import (
    CallFlops,
    call_flop_formula,
    counted_attention,
    counts_call,
    device_of,
    map_tensors,
    summarize,
    tensors_in,
    to_meta,
)
from fxviz.tracing.symbolic import Symbols, make_symbols, symbolic_value

# What a recorded run runs on: the tensors given ("real", values read freely; "device",
# ended at the first value read), meta tensors or fake tensors.
Run = Literal["real", "device", "meta", "fake"]

RECORD_NOTE = "recorded from one run: another input could take another path through the model"


class _Recorder(LeafCalls, TorchFunctionMode):
    """Appends to a module-level fx graph as the model runs: leaf module calls, torch
    functions, the parameters functions read; tensors are tracked by identity (kept alive)."""

    def __init__(
        self,
        model: torch.nn.Module,
        leaf_types: tuple[type, ...],
        device: str,
        *,
        reads: bool = True,
        symbols: Symbols | None = None,
    ) -> None:
        LeafCalls.__init__(self, model, leaf_types)
        # A run on symbolic shapes: each value's dims are read as expressions, the guards
        # each op records are kept by node, and no FLOPs are counted (they would be
        # expressions too, and the numbers come from the plain trace).
        self.symbols = symbols
        self.guards: list[tuple[str, Any]] = []
        self._seen_guards = 0
        self.device = device  # what values are said to be on (a run on meta stands for it)
        # Without `reads`, the first call that reads a tensor's values ends the run: its
        # path could depend on them, and a run on shapes alone would take another.
        self.reads = reads
        self.read: str | None = None
        TorchFunctionMode.__init__(self)
        self.classes = {path: type(m) for m, path in self.paths.items()}
        # Parameters and buffers a function reads become get_attr nodes, as in fx.
        self.attributes = {
            id(t): path for path, t in [*model.named_parameters(), *model.named_buffers()]
        }
        self.graph = fx.Graph()
        self.producer: dict[int, fx.Node] = {}
        self.alive: list[Any] = []
        self.scope: list[str] = []
        self.pending: list[tuple[list[fx.Node], int, Any]] = []
        self.flops = FlopCount()
        self.calls: dict[Any, _Call] = {}

    def add(
        self,
        op: str,
        target: Any,
        inputs: Sequence[Any],
        name: str,
        value: Any,
        kwargs: dict[str, Any] | None = None,
    ) -> fx.Node:
        node = self.graph.create_node(op, target, tuple(inputs), kwargs, name=name or "op")
        node.meta["fxviz_name"] = name or "op"  # fx's namespace would rename `and`, `max`
        sizes = self.symbols.value if self.symbols is not None else None
        node.meta[VALUE] = summarize(value, device=self.device, sizes=sizes)
        self.track(value, node)
        if self.symbols is not None:
            made = self.symbols.env.guards[self._seen_guards :]
            self._seen_guards += len(made)
            self.guards += [(node.meta["fxviz_name"], g.expr) for g in made]
        return node

    def track(self, value: Any, node: fx.Node) -> None:
        def visit(x: torch.Tensor) -> None:
            self.producer[id(x)] = node
            self.alive.append(x)

        map_tensors(value, visit)

    def sources(self, value: Any) -> list[fx.Node]:
        found: dict[fx.Node, None] = {}

        def visit(x: torch.Tensor) -> None:
            if id(x) not in self.producer:
                self.add_constant(x)
            if id(x) in self.producer:
                found[self.producer[id(x)]] = None

        map_tensors(value, visit)
        return list(found)

    def add_constant(self, tensor: torch.Tensor) -> None:
        """The model's own parameter or buffer, at its first read; other tensors the model
        makes from nothing (anchors, aranges) are not data flow."""
        path = self.attributes.get(id(tensor))
        if path is not None:
            self.add("get_attr", path, (), path.replace(".", "_"), tensor)

    def add_input(self, name: str, value: Any) -> None:
        self.add("placeholder", name, (), name, value)

    def leaf_call(self, path: str, args: tuple[Any, ...]) -> None:
        self.pending.append((self.sources(args), self.flops.total, sys._getframe(1)))

    def leaf_return(self, path: str, output: Any) -> None:
        inputs, flops_before, frame = self.pending.pop()
        node = self.add("call_module", path, inputs, path.replace(".", "_"), output)
        node.meta[FLOPS] = self.flops.total - flops_before
        node.meta["fxviz_source"] = user_source(frame)

    def enter(self, path: str) -> None:
        self.scope.append(path)

    def leave(self, path: str) -> None:
        if self.scope and self.scope[-1] == path:
            self.scope.pop()

    def __torch_function__(
        self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        name, op, target, counted, formula, sizes = self.call(func)
        if not self.reads and _reads_values(name, args, kwargs):
            self.read = self.read or name
            raise TraceError(f"the model reads a tensor's values ({name})")
        before = self.flops.total
        if self.symbols is not None:
            counted, formula = False, None
        # Only calls that can do counted work (matrix products, convolutions, attention)
        # run under the counting dispatch mode, which costs each ATen op a trip through
        # Python, and the commonest are counted from shapes with none; inside a leaf
        # module's box, its own calls are counted the same way.
        shaped = sizes if self.symbols is not None else None
        try:
            if shaped is not None:
                result = shaped(*args, **kwargs)
            else:
                with self.flops if counted and formula is None else contextlib.nullcontext():
                    result = func(*args, **kwargs)
        except Exception as exc:
            raised_by_an_op(exc)
            raise
        if formula is not None:
            self.flops.add(formula(args, kwargs, result))
        # `boxes[idx] = pooled` returns nothing but changes `boxes`: its new value is what
        # this op made, and whatever reads `boxes` next reads it from here.
        produced = _mutated(name, args) if result is None else result
        if self.depth or not tensors_in(produced):
            return result
        if not self.sources((args, kwargs)):
            return result  # a constant the model makes (anchors, aranges): not data flow
        scope = self.scope[-1] if self.scope else ""
        linked_args, linked_kwargs = self.linked(tuple(args)), self.linked(kwargs)
        node = self.add(op, target, linked_args, name.strip("_"), produced, linked_kwargs)
        node.meta[FLOPS] = self.flops.total - before
        if op == "call_function" and target is func:
            node.meta["fxviz_target"] = _qualified(func)
        node.meta["fxviz_scope"] = scope
        node.meta["fxviz_source"] = user_source(sys._getframe(1), self.classes.get(scope))
        return result

    def call(self, func: Any) -> _Call:
        """(name, op, target, counted, formula, sizes) of a function the model calls: the
        call as fx would record it, so every tracer draws it the same (`x[:, t]` as getitem,
        `x.view(…)` as a method), whether it can do work the FLOP counter counts, its FLOPs'
        formula where it has one, and what makes its output from its inputs' sizes where a
        run on symbolic shapes need not run it (`_SIZES_ONLY`). Worked out once per
        function."""
        try:
            return self.calls[func]
        except KeyError:
            described = self.calls[func] = _described(func)
            return described
        except TypeError:  # an unhashable callable
            return _described(func)

    def linked(self, value: Any) -> Any:
        """`value` with each tensor replaced by the node that made it, or by Undrawn (an
        anchor, an arange: made from nothing, not data flow). A size of a run on symbolic
        shapes is its expression (`B`, `L·12`)."""
        linked = map_tensors(value, lambda x: self.producer.get(id(x)) or Undrawn())
        if self.symbols is None:
            return linked
        symbols = self.symbols
        return tree_map(
            lambda x: _Expression(symbols.value(x)[1]) if isinstance(x, torch.SymInt) else x,
            linked,
        )


class _Expression:
    """A size in a recorded call's arguments, written as its expression."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


_Call = tuple[str, str, Any, bool, CallFlops | None, Callable[..., Any] | None]


def _attention_sizes(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *args: Any, **kwargs: Any
) -> Any:
    """What scaled_dot_product_attention returns, as its plain path makes it (the softmax of
    `query @ keyᵀ`, times `value`), made without running it: a run on symbolic shapes spent
    most of its time in that path's dozen ops (masking, safe softmax, two batched products),
    each computing its sizes and strides as expressions (T5, two layers: 2 of 3.2 s). Its
    dims are the inputs' own, so they are the same expressions; what it checks is checked.
    Grouped-query attention (`enable_gqa`) takes the real call."""
    if kwargs.get("enable_gqa") or min(query.dim(), key.dim(), value.dim()) < 2:
        return torch.nn.functional.scaled_dot_product_attention(query, key, value, *args, **kwargs)
    torch._check(query.shape[-1] == key.shape[-1], lambda: "query and key differ in size")
    torch._check(key.shape[-2] == value.shape[-2], lambda: "key and value differ in length")
    batch = torch.broadcast_shapes(  # type: ignore[no-untyped-call]
        query.shape[:-2], key.shape[:-2], value.shape[:-2]
    )
    return query.new_empty((*batch, query.shape[-2], value.shape[-1]))


def _linear_sizes(
    input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """What F.linear returns (`input`'s dims but the last, then the weight's rows), made
    without running it: its plain path on symbolic shapes folds the leading dims into one,
    multiplies and unfolds them (ConvNeXt's 4-dim inputs: 0.4 s of 1.2). The check it makes
    on the input's last dim is made, so a size the model fixes there is still a guard
    (LeNet's `16·⌊…⌋ = 400`)."""
    if input.dim() == 0 or weight.dim() != 2:
        return torch.nn.functional.linear(input, weight, bias)
    torch._check(
        input.shape[-1] == weight.shape[-1], lambda: "the input's last dim is not the weight's"
    )
    return input.new_empty((*input.shape[:-1], weight.shape[0]))


def _layer_norm_sizes(
    input: torch.Tensor, normalized_shape: Sequence[int], *args: Any, **kwargs: Any
) -> torch.Tensor:
    """What F.layer_norm returns, a tensor of its input's size, made without running it: its
    plain path on symbolic shapes is a mean, a variance and four elementwise ops, each
    computing its sizes and strides (ConvNeXt: 0.5 s of 1.2). The check that the last dims
    are `normalized_shape` is made."""
    dims = tuple(normalized_shape) if not isinstance(normalized_shape, int) else (normalized_shape,)
    if not dims or len(dims) > input.dim():
        return torch.nn.functional.layer_norm(input, normalized_shape, *args, **kwargs)
    for have, want in zip(input.shape[-len(dims) :], dims, strict=True):
        torch._check(have == want, lambda: "the input's last dims are not normalized_shape")
    return input.new_empty(input.shape)


# Calls a run on symbolic shapes makes by their sizes alone: nothing is computed there, and
# each one's output dims are its inputs' own (so the same expressions as the op's path
# makes). Each is compared with its op on symbolic shapes in tests/tracing/test_symbolic.py.
_SIZES_ONLY: dict[Any, Callable[..., Any]] = {
    torch.nn.functional.scaled_dot_product_attention: _attention_sizes,
    torch.nn.functional.linear: _linear_sizes,
    torch.nn.functional.layer_norm: _layer_norm_sizes,
}


def _described(func: Any) -> _Call:
    name = getattr(func, "__name__", None) or str(func)
    op, target = _as_fx_call(func, name)
    sizes = next((rule for f, rule in _SIZES_ONLY.items() if f is func), None)
    return name, op, target, counts_call(op, target), call_flop_formula(func), sizes


# Calls whose result is a tensor's values, or whose output's shape depends on them.
_VALUE_READS = frozenset(
    {
        "__bool__", "__int__", "__float__", "__index__", "__complex__", "item", "tolist",
        "numpy", "__array__", "nonzero", "argwhere", "unique", "unique_consecutive",
        "masked_select", "bincount", "histc", "histogram", "equal", "allclose",
    }
)  # fmt: skip


def _reads_values(name: str, args: Sequence[Any], kwargs: dict[str, Any]) -> bool:
    """Whether a call reads values: `if x.sum() > 0`, `x.item()`, `x[mask]`, `x.nonzero()`,
    `torch.where(mask)`, repeats given as a tensor."""
    if name in _VALUE_READS:
        return True
    if name == "__getitem__" and len(args) > 1:
        index = args[1] if isinstance(args[1], tuple) else (args[1],)
        return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in index)
    if name == "where":
        return len(args) + len(kwargs) == 1
    if name == "repeat_interleave":
        return isinstance(args[1] if len(args) > 1 else kwargs.get("repeats"), torch.Tensor)
    return False


def _mutated(name: str, args: Sequence[Any]) -> Any:
    """The tensor an op that returns nothing changed in place (`__setitem__`), else None."""
    target = args[0] if args else None
    if isinstance(target, torch.Tensor) and (name == "__setitem__" or name.endswith("_")):
        return target
    return None


# `x * 2` reaches a recorder as the method it calls, `Tensor.mul`, as `x.mul(2)` would:
# these are drawn as the operators people write far more often (as fx records them).
_OPERATOR_METHODS = {
    name: getattr(operator, fx_name)
    for name, fx_name in {
        "add": "add",
        "sub": "sub",
        "mul": "mul",
        "div": "truediv",
        "matmul": "matmul",
        "pow": "pow",
        "neg": "neg",
        "eq": "eq",
        "ne": "ne",
        "gt": "gt",
        "ge": "ge",
        "lt": "lt",
        "le": "le",
    }.items()
}


def _as_fx_call(func: Any, name: str) -> tuple[str, Any]:
    """The (op, target) fx records for a call: `Tensor.__getitem__` and the operators are
    `operator.getitem`, `operator.mul`, …; another Tensor method is `call_method` by name;
    the rest, the function itself."""
    if _owner(func) is not torch.Tensor:
        return "call_function", func
    operation = _OPERATOR_METHODS.get(name) or getattr(operator, name, None)
    if operation is not None and (name in _OPERATOR_METHODS or name.startswith("__")):
        return "call_function", operation
    if name.startswith("__"):
        return "call_function", func  # `3 - x` (__rsub__): no operator of its own
    return "call_method", name


def _owner(func: Any) -> Any:
    """The class a method belongs to: torch.Tensor for its own and its C base's methods."""
    owner = getattr(func, "__objclass__", None) or getattr(func, "__self__", None)
    if isinstance(owner, torch.Tensor):
        return torch.Tensor
    if isinstance(owner, type) and owner is not object and issubclass(torch.Tensor, owner):
        return torch.Tensor
    return owner


def _qualified(func: Any) -> str:
    name = getattr(func, "__name__", str(func))
    if _owner(func) is torch.Tensor:
        return f"Tensor.{name}"
    module = getattr(func, "__module__", None) or "torch"
    return f"{module}.{name}"


def record_module(
    model: torch.nn.Module,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    leaf_types: tuple[type, ...] = (),
    *,
    values: bool = False,
) -> tuple[tuple[Node, ...], str, list[str]]:
    """(nodes, device the run used, notes).

    Without `values`, the run reads no value (`_READING_NO_VALUE`): the same graph
    on every device, and no weight is allocated. With `values`, it reads them, for models
    whose code does (a detection model's box counts): a meta model then runs on a CPU copy,
    if the machine can hold one."""
    notes = [RECORD_NOTE]
    device = device_of(model, args, kwargs)
    if not values:
        runs = _READING_NO_VALUE[device == "meta"]
        return _record(model, args, kwargs, leaf_types, device, runs), device, notes
    if device != "meta":
        notes.append("recorded on real values: the model reads them (data-dependent ops)")
        return _record(model, args, kwargs, leaf_types, device, ("real",)), device, notes
    check_room_for(model)
    notes.append("recorded on cpu: the model needs real values (data-dependent ops)")
    model, args, kwargs = materialize_on_cpu(model, args, kwargs)
    return _record(model, args, kwargs, leaf_types, "cpu", ("real",)), "cpu", notes


# The runs that read no value, in the order they are tried, for a model on meta and for
# one elsewhere. Each is told what torch.export's non-strict tracing tells a model
# (`as_exported`), so it takes the path export would. A model on cpu or cuda runs first on
# its own tensors, ended at the first value it reads (a small input's real kernels cost less
# than meta's, many of which are Python); then, as a meta model does, on meta tensors, the
# weights swapped for meta ones for the run (nothing allocated); where that fails (an op with
# no meta kernel, a CPU tensor kept beside the weights, a value read), on fake tensors, which
# run some of those and say best what they cannot.
_READING_NO_VALUE: dict[bool, tuple[Run, ...]] = {
    True: ("meta", "fake"),
    False: ("device", "meta", "fake"),
}


def _record(
    model: torch.nn.Module,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    leaf_types: tuple[type, ...],
    device: str,
    runs: Sequence[Run],
) -> tuple[Node, ...]:
    """Record the first of `runs` that goes through; the last one's failure is raised.
    "real" runs on the tensors given; "device" on them too, ended at the first value read
    (see `_Recorder`); "meta" on meta tensors; "fake" on fake tensors. Values are said to
    be on `device`, where the model is."""
    for attempt, run in enumerate(runs, 1):
        try:
            with _tensors_for(run, model) as convert:
                recorder = _Recorder(model, leaf_types, device, reads=run != "device")
                args_, kwargs_ = convert((tuple(args), kwargs))
                for name, value in _named_inputs(model, args_, kwargs_):
                    recorder.add_input(name, value)
                on = "meta" if run == "meta" else device
                result = _run(recorder, model, args_, kwargs_, on)
                if recorder.read:  # the model caught what ended the run and went on
                    raise TraceError(f"the model reads a tensor's values ({recorder.read})")
                output = recorder.graph.output(tuple(recorder.sources(result)))
                output.meta[VALUE] = summarize(result, device=device)
        except Exception as exc:
            if attempt == len(runs) or raised_by_fxviz(exc):
                raise
            continue
        return fx_nodes(recorder.graph, model)
    raise AssertionError("no run to record")  # `runs` is never empty


def record_symbolic(
    model: torch.nn.Module,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    dims: Sequence[Dim],
    leaf_types: tuple[type, ...] = (),
    other: frozenset[str] = frozenset(),
) -> tuple[tuple[Node, ...], Symbols, list[tuple[str, Any]]]:
    """A run on fake tensors whose `dims` are symbols: (nodes whose values carry each dim's
    expression, the symbols, the guards recorded by node id). Nothing is allocated. Of
    blocks alike (`_Twins`), each kind runs once per input: the others copy its nodes."""
    device = device_of(model, args, kwargs)
    symbols, where = make_symbols(dims, other)
    with as_exported(), fake_tensors(symbols.env) as mode:
        # Its cache would cost more than it saves here: each hit rebuilds its output's sizes
        # and strides as expressions, and checking an entry, more (ConvNeXt-T 2.1 → 1.2 s).
        mode.cache_enabled = False
        args_, kwargs_ = tree_map(
            lambda x: mode.from_tensor(x, static_shapes=True) if isinstance(x, torch.Tensor) else x,
            (tuple(args), kwargs),
        )
        names = forward_argument_names(model, len(args_))
        args_ = tuple(symbolic_value(a, n, where) for a, n in zip(args_, names, strict=True))
        kwargs_ = {k: symbolic_value(v, k, where) for k, v in kwargs_.items()}
        recorder = _Recorder(model, leaf_types, device, symbols=symbols)
        for name, value in _named_inputs(model, args_, kwargs_):
            recorder.add_input(name, value)
        twins = _Twins(model, recorder, leaf_types)
        with twins:
            result = _run(recorder, model, args_, kwargs_, device, counting=False)
        output = recorder.graph.output(tuple(recorder.sources(result)))
        output.meta[VALUE] = summarize(result, device=device, sizes=symbols.value)
        nodes = twins.copied(fx_nodes(recorder.graph, model))
        return nodes, symbols, recorder.guards


class _Twins:
    """Blocks alike, run once: a module with submodules whose structure (classes, settings,
    parameter and buffer shapes, plain attributes) another one shares, called with inputs of
    the same expressions as that one was, does not run. Its outputs are new fake tensors of
    the first one's sizes (or its own inputs, where the first one returned its inputs), and
    after the run its nodes are the first one's, renamed. A transformer's 12 layers run one;
    ConvNeXt's 18 blocks, four (one per stage, the first of each differing)."""

    def __init__(
        self, model: torch.nn.Module, recorder: _Recorder, leaf_types: tuple[type, ...]
    ) -> None:
        self.recorder = recorder
        self.paths = {m: path for path, m in model.named_modules() if path}
        kinds: dict[Any, list[torch.nn.Module]] = {}
        for module, path in self.paths.items():
            if any(True for _ in module.children()) and not is_leaf(module, path, leaf_types):
                kinds.setdefault(_structure(module), []).append(module)
        self.kind = {m: k for k, ms in kinds.items() if len(ms) > 1 for m in ms}
        self.seen: dict[tuple[Any, ...], tuple[str, list[Any], Any]] = {}
        self.copies: list[tuple[str, str, str]] = []  # (first, twin, the twin's copy node)
        self.calls: dict[str, int] = {}

    def __enter__(self) -> _Twins:
        for module in self.kind:
            original = module.forward
            module.__dict__["forward"] = self._forward(module, original)
        return self

    def __exit__(self, *exc: object) -> None:
        for module in self.kind:
            module.__dict__.pop("forward", None)

    def _forward(self, module: torch.nn.Module, original: Callable[..., Any]) -> Any:
        path = self.paths[module]

        def forward(*args: Any, **kwargs: Any) -> Any:
            self.calls[path] = self.calls.get(path, 0) + 1
            key = (self.kind[module], _call_signature((args, kwargs)))
            known = self.seen.get(key)
            if known is None or known[0] == path or _nested(known[0], path):
                result = original(*args, **kwargs)
                if known is None:
                    leaves = list(tree_flatten((args, kwargs))[0])
                    self.seen[key] = (path, leaves, result)
                return result
            first, first_inputs, first_result = known
            mine = tree_flatten((args, kwargs))[0]
            by_id = {id(x): i for i, x in enumerate(first_inputs) if isinstance(x, torch.Tensor)}

            def made(t: torch.Tensor) -> torch.Tensor:
                if id(t) in by_id:
                    same: torch.Tensor = mine[by_id[id(t)]]
                    return same
                return torch.empty_strided(t.size(), t.stride(), dtype=t.dtype, device=t.device)

            result = tree_map(lambda x: made(x) if isinstance(x, torch.Tensor) else x, first_result)
            name = f"{path.replace('.', '_')}_as_{first.replace('.', '_')}"
            self.recorder.add(
                "call_function", _same_as, self.recorder.linked(tuple(mine)), name, result
            )
            self.copies.append((first, path, name))
            return result

        return forward

    def copied(self, nodes: tuple[Node, ...]) -> tuple[Node, ...]:
        """`nodes` with each twin's copy node replaced by the first one's nodes, renamed."""
        from dataclasses import replace

        if not self.copies:
            return nodes
        at = {name: (first, twin) for first, twin, name in self.copies}
        out: list[Node] = []
        for node in nodes:
            if node.id not in at:
                out.append(node)
                continue
            first, twin = at[node.id]
            if self.calls.get(first, 0) != 1:
                continue  # a block run more than once: which call's nodes is unclear
            for n in nodes:
                named = n.kind in ("module", "constant")  # a target that is a path in the model
                inside = within(n.owner, first) or (named and within(n.target, first))
                if not inside or n.id in at:
                    continue
                target = _moved(n.target, first, twin) if named else n.target
                out.append(
                    replace(
                        n, id=f"{n.id}@{twin}", target=target, scope=_moved(n.scope, first, twin)
                    )
                )
        return tuple(out)


def _same_as(*inputs: Any) -> None:
    """What a twin block's copy node calls: never called, it names the node."""


def _moved(path: str, first: str, twin: str) -> str:
    return twin + path[len(first) :] if within(path, first) else path


def _nested(a: str, b: str) -> bool:
    return within(a, b) or within(b, a)


def _structure(module: torch.nn.Module) -> tuple[Any, ...]:
    """What a module's shapes can depend on besides its inputs: each submodule's class,
    settings (`extra_repr`) and plain attributes, and each parameter's and buffer's shape
    and dtype, by relative path."""
    parts: list[Any] = []
    for path, sub in module.named_modules():
        plain = tuple(
            (k, v)
            for k, v in sorted(vars(sub).items())
            if not k.startswith("_") and isinstance(v, int | float | bool | str | type(None))
        )
        parts.append((path, type(sub).__qualname__, sub.extra_repr(), plain))
    for path, t in [*module.named_parameters(), *module.named_buffers()]:
        parts.append((path, tuple(t.shape), t.dtype, t.requires_grad))
    return tuple(parts)


def _call_signature(value: Any) -> tuple[Any, ...]:
    """A call's inputs as far as shapes go: each tensor's dims (expressions), dtype and
    device; each number, string or None itself; anything else, the object (by identity)."""
    out: list[Any] = []
    for x in tree_flatten(value)[0]:
        if isinstance(x, torch.Tensor):
            dims = tuple(
                str(d.node.expr) if isinstance(d, torch.SymInt) else int(d) for d in x.shape
            )
            out.append((dims, x.dtype, x.device.type))
        elif isinstance(x, int | float | bool | str | type(None)):
            out.append((type(x).__name__, x))
        else:
            out.append(("object", id(x)))
    return tuple(out)


@contextlib.contextmanager
def _tensors_for(run: Run, model: torch.nn.Module) -> Iterator[Callable[[Any], Any]]:
    """The run's setting, and what makes the inputs' tensors its kind."""
    if run == "real":
        yield lambda value: value
        return
    with contextlib.ExitStack() as stack:
        stack.enter_context(as_exported())
        if run == "device":
            yield lambda value: value
            return
        if run == "fake":
            mode = stack.enter_context(fake_tensors())
            yield lambda value: fake_inputs(mode, value)
            return
        if any(not t.is_meta for t in (*model.parameters(), *model.buffers())):
            stack.enter_context(weights_on_meta(model))
        yield lambda value: map_tensors(value, to_meta)


def _run(
    recorder: _Recorder,
    model: torch.nn.Module,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    device: str,
    counting: bool = True,
) -> Any:
    try:
        with (
            torch.no_grad(),
            counted_attention(device, model, counting),
            leaf_call_hooks(recorder),
            recorder,
        ):
            return model(*args, **kwargs)
    except Exception as exc:  # the model's own failure on this input
        if raised_by_fxviz(exc):
            raise
        reason = f"{fake_failure(exc) or first_line(exc)}{failing_line(exc)}"
        raise TraceError(
            f"running {type(model).__name__} to record it failed: {reason}", reason=reason
        ) from exc


def _named_inputs(
    model: torch.nn.Module, args: Sequence[Any], kwargs: dict[str, Any]
) -> list[tuple[str, Any]]:
    """Each forward argument that holds tensors or is a number, a bool or a string, by its
    parameter name: one input per argument, a dict or list of tensors included (as fx and
    lifted export graphs have; a number is drawn with its value)."""
    named = [*zip(forward_argument_names(model, len(args)), args, strict=True), *kwargs.items()]
    return [(name, value) for name, value in named if tensors_in(value) or _scalar(value)]


def _scalar(value: Any) -> bool:
    return isinstance(value, int | float | bool | str)


def _fill(value: Any, generator: torch.Generator) -> Any:
    if not isinstance(value, torch.Tensor) or not value.is_meta:
        return value
    if value.is_floating_point():
        return (torch.randn(value.shape, generator=generator) * 0.02).to(value.dtype)
    return torch.zeros(value.shape, dtype=value.dtype)


# Of the memory the system says is available, the share a CPU copy of the weights may take.
MEMORY_SHARE = 0.8


def check_room_for(model: torch.nn.Module) -> None:
    """Refuse, before allocating anything, a CPU copy of a meta model's weights that the
    machine cannot hold: the kernel's out-of-memory killer would end the process after
    minutes of swapping (Fuyu's default config: 36 GB of float32), freezing a laptop first."""
    tensors = [*model.parameters(), *model.buffers()]
    needed = sum(t.numel() * t.element_size() for t in tensors)
    # Filling one tensor makes two temporaries of its size (randn, then the scaled copy).
    needed += 2 * max((t.numel() * t.element_size() for t in tensors), default=0)
    available = available_memory()
    if available is not None and needed > MEMORY_SHARE * available:
        raise TraceError(
            f"{type(model).__name__} must run on real values to be recorded (no tracer "
            f"could follow it on fake tensors), and a CPU copy of its weights needs "
            f"{format_bytes(needed)}, more than this machine has free "
            f"({format_bytes(available)}); draw a smaller config (--layers 2, --config …)",
            reason=f"a CPU copy of the weights needs {format_bytes(needed)}, "
            f"{format_bytes(available)} is free",
        )


def available_memory() -> int | None:
    """Bytes the system can give without swapping (Linux's MemAvailable), or None where it
    does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def materialize_on_cpu(
    model: torch.nn.Module, args: Sequence[Any], kwargs: dict[str, Any]
) -> tuple[torch.nn.Module, tuple[Any, ...], dict[str, Any]]:
    """A CPU copy of a meta model with small deterministic weights, and CPU inputs.

    Weights are N(0, 0.02) and normalisation statistics neutral (mean 0, var 1), so
    activations stay finite and data-dependent code (box counts) runs as with real weights."""
    generator = torch.Generator().manual_seed(0)
    copy_ = copy.deepcopy(model).to_empty(device="cpu")
    with torch.no_grad():
        for name, tensor in [*copy_.named_parameters(), *copy_.named_buffers()]:
            if not tensor.is_floating_point():
                tensor.zero_()
            elif name.endswith(("running_var", ".weight")) and tensor.dim() == 1:
                tensor.fill_(1.0)
            elif name.endswith(("running_mean", ".bias")):
                tensor.zero_()
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.02)
        # Tensors kept as plain attributes (torchvision's AnchorGenerator.cell_anchors) are
        # neither parameters nor buffers, so to_empty leaves them on meta.
        for sub in copy_.modules():
            for attr, value in list(vars(sub).items()):
                if not attr.startswith("_") and tensors_in(value):
                    setattr(sub, attr, tree_map(lambda t: _fill(t, generator), value))

    def to_cpu(x: Any) -> Any:
        if not isinstance(x, torch.Tensor):
            return x
        if x.is_floating_point():
            return torch.rand(x.shape, generator=generator).to(x.dtype)
        return torch.zeros(x.shape, dtype=x.dtype) if x.is_meta else x.cpu()

    return copy_, tree_map(to_cpu, tuple(args)), tree_map(to_cpu, kwargs)
