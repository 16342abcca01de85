"""torch.export tracing, lifted back to module level so it draws like an fx graph.

An exported graph is ATen-level: one `nn.Linear` call becomes `aten.linear` plus its weight and
bias. `lift_export_graph` is a pass from that graph to a module-level fx graph: the ops of
each call of a leaf module (found through the `nn_module_stack` export records on every node)
become one `call_module` node, the functional ops between them stay, and parameters that only
module calls read are folded into them.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import io
import logging
import sys
import warnings
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import fx
from torch.nn.modules import module as module_hooks

from fxviz.errors import TraceError, first_line
from fxviz.graph import (
    Module,
    Node,
    SourceLocation,
    Value,
    indexed,
    parent_path,
)
from fxviz.loaders.torch_internals import (
    StackEntry,
    aten_packet,
    keystr,
    keyword_order,
    module_stack,
    stack_frames,
    tree_flatten_with_path,
    tree_unflatten,
)
from fxviz.tracing.annotate import (
    Canonical,
    Undrawn,
    attribute_counts,
    fetch_attr,
    module_counts,
)
from fxviz.tracing.constants import clip, factory_call, is_tracer_name, node_name
from fxviz.tracing.fx import (
    failing_line,
    is_leaf,
    is_outside_torch,
    own_code,
    raised_by_fxviz,
    relative_file,
)
from fxviz.tracing.keys import FLOPS, VALUE
from fxviz.tracing.shapes import summarize


@dataclass
class Exported:
    """An exported program, with what each leaf module call returned while export ran it:
    path -> one summary per call, in call order. The ATen graph keeps only the results
    something reads (an LSTM's `out`, not its `(h, c)`); a module call's node shows all."""

    program: torch.export.ExportedProgram
    call_outputs: dict[str, list[tuple[Value, ...]]] = field(default_factory=dict)


def export_module(
    model: torch.nn.Module,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    leaf_types: tuple[type, ...] = (),
) -> Exported:
    """torch.export (non-strict), a failure becoming a TraceError with the user's line."""
    calls = _CallOutputs(model, leaf_types)
    try:
        # Export warns about its own internals (nn.LSTM's _flat_weights, …): nothing a user
        # drawing a diagram can act on.
        with warnings.catch_warnings(), _quiet_torch_logs(), leaf_call_hooks(calls):
            warnings.simplefilter("ignore")
            program = torch.export.export(model, tuple(args), kwargs, strict=False)
        return Exported(program, dict(calls.found))
    except Exception as exc:  # export raises many types, from the model or from torch
        if raised_by_fxviz(exc):
            raise
        reason = f"{first_line(exc)}{failing_line(exc)}"
        raise TraceError(
            f"torch.export cannot trace {type(model).__name__}: {reason}", reason=reason
        ) from exc


class LeafCalls:
    """Forward hooks' view of a run: which module calls are outermost leaf calls (what a
    leaf's own submodules run stays inside its box). Subclasses act on `leaf_call`,
    `leaf_return`, `enter` and `leave`; `leaf_call_hooks` installs one for a run."""

    def __init__(self, model: torch.nn.Module, leaf_types: tuple[type, ...]) -> None:
        self.paths = {m: path for path, m in model.named_modules()}
        self.leaf_types = leaf_types
        self.depth = 0  # > 0 while inside a leaf call

    def before(self, module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        path = self.paths.get(module)
        if path is None:
            return
        if self.depth or is_leaf(module, path, self.leaf_types):
            self.depth += 1
            if self.depth == 1:
                self.leaf_call(path, args)
        else:
            self.enter(path)

    def after(self, module: torch.nn.Module, args: tuple[Any, ...], output: Any) -> None:
        path = self.paths.get(module)
        if path is None:
            return
        if self.depth:
            self.depth -= 1
            if not self.depth:
                self.leaf_return(path, output)
        else:
            self.leave(path)

    def leaf_call(self, path: str, args: tuple[Any, ...]) -> None:
        """An outermost leaf module call starts."""

    def leaf_return(self, path: str, output: Any) -> None:
        """An outermost leaf module call returned `output`."""

    def enter(self, path: str) -> None:
        """A module with submodules starts its forward."""

    def leave(self, path: str) -> None:
        """A module with submodules returned."""


class _CallOutputs(LeafCalls):
    """The whole result of each outermost leaf module call, by path, in call order."""

    def __init__(self, model: torch.nn.Module, leaf_types: tuple[type, ...]) -> None:
        super().__init__(model, leaf_types)
        self.found: dict[str, list[tuple[Value, ...]]] = defaultdict(list)

    def leaf_return(self, path: str, output: Any) -> None:
        self.found[path].append(summarize(output))


@contextlib.contextmanager
def leaf_call_hooks(calls: LeafCalls) -> Iterator[None]:
    """Global module hooks calling `calls.before` and `calls.after` for one run; always removed."""
    pre = module_hooks.register_module_forward_pre_hook(calls.before)
    post = module_hooks.register_module_forward_hook(calls.after)
    try:
        yield
    finally:
        pre.remove()
        post.remove()


@contextlib.contextmanager
def _quiet_torch_logs() -> Iterator[None]:
    """A failing export logs, then prints, its whole partial graph to stderr (torch/export/
    _trace.py prints `e.partial_fx_graph`); the TraceError already says what matters.

    Filters, not levels: torch's logging setup runs lazily inside export and resets levels;
    and a logger's filters do not reach its children, so each emitting logger is named."""
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    drop = _DropAll()
    for logger in loggers:
        logger.addFilter(drop)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        for logger in loggers:
            logger.removeFilter(drop)


class _DropAll(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


_NOISY_LOGGERS = (
    "torch.fx.experimental.symbolic_shapes",
    "torch.export._trace",
    "torch._subclasses.fake_tensor",
)


def name_outputs(
    nodes: tuple[Node, ...], program: torch.export.ExportedProgram
) -> tuple[Node, ...]:
    """Give the output node's values the paths of the model's real output structure
    (`['last_hidden_state']` rather than `[0]`), from the program's output tree spec."""
    output = nodes[-1]
    spec = program.call_spec.out_spec
    if output.kind != "output" or spec is None or spec.num_leaves != len(output.outputs):
        return nodes
    try:
        leaves, _ = tree_flatten_with_path(tree_unflatten(list(range(spec.num_leaves)), spec))
    except (TypeError, ValueError):  # an output class pytree cannot rebuild from placeholders
        return nodes
    paths = {index: keystr(path) for path, index in leaves}
    values = tuple(replace(v, path=paths.get(i, v.path)) for i, v in enumerate(output.outputs))
    return (*nodes[:-1], replace(output, outputs=values))


def is_leaf_entry(
    entry: StackEntry,
    modules: dict[str, torch.nn.Module],
    leaf_types: tuple[type, ...] = (),
    expand: tuple[str, ...] = (),
) -> bool:
    """The leaf rule (`fx.is_leaf`) for a module an export record names: asked of the module
    itself; a saved program keeps no modules (only stand-ins holding their parameters) and
    records class names, read by fx's rule."""
    module = modules.get(entry.path)
    if module is not None and type(module) is entry.cls:
        return is_leaf(module, entry.path, leaf_types, expand)
    name = entry.cls if isinstance(entry.cls, str) else getattr(entry.cls, "__module__", "")
    qualified = name if isinstance(entry.cls, str) else f"{name}.{_class_name(entry.cls)}"
    if _class_name(entry.cls) in expand or ".container." in qualified:
        return False
    return qualified.startswith(("torch.nn.", "torch.ao.nn."))


@dataclass(eq=False)
class _Call:
    """One call of a leaf module: the ATen nodes it ran."""

    key: str
    path: str
    cls_name: str
    members: list[fx.Node] = field(default_factory=list)


def lift_export_graph(
    gm: fx.GraphModule,
    model: torch.nn.Module,
    leaf_types: tuple[type, ...] = (),
    expand: tuple[str, ...] = (),
    call_outputs: dict[str, list[tuple[Value, ...]]] | None = None,
    arguments: list[tuple[str, list[str]]] | None = None,
) -> fx.Graph:
    """The module-level graph of a shape-propagated, unlifted exported graph (`ep.module()`):
    each leaf module call's ATen nodes replaced by one `call_module` node, parameters only
    module calls read folded into them, and what remains kept as it is, all named the way
    fx names them. `call_outputs` (from `export_module`) gives each module call its whole
    result; `arguments` (from `argument_leaves`) makes one input per forward argument."""
    call_outputs = call_outputs or {}
    calls: dict[str, _Call] = {}
    call_of: dict[fx.Node, _Call] = {}
    # nn_module_stack names the path the code used (`self.head`), fx and a recorded run the
    # module's first one (`proj`): one name each, whichever tracer ran.
    canonical = Canonical(model)
    named = dict(model.named_modules(remove_duplicate=False))
    for n in gm.graph.nodes:
        if n.op != "call_function":
            continue
        for entry in module_stack(n):
            key, path, cls = entry
            if is_leaf_entry(entry, named, leaf_types, expand):
                call = calls.setdefault(key, _Call(key, canonical.module(path), _class_name(cls)))
                call.members.append(n)
                call_of[n] = call
                break
    for n in gm.graph.nodes:
        # Parameters that only module calls read vanish into them, as in fx: a module called
        # twice, or a weight tied between an embedding and a head, draws no parameter node.
        if n.op == "get_attr" and n.users:
            owners = [call_of[user] for user in n.users if user in call_of]
            if len(owners) == len(n.users):
                call_of[n] = owners[0]

    lifted = fx.Graph()
    new: dict[fx.Node, fx.Node] = {}
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if arguments and sum(len(paths) for _, paths in arguments) == len(placeholders):
        leaves = iter(placeholders)
        for name, paths in arguments:
            group = [next(leaves) for _ in paths]
            node = lifted.placeholder(name)
            node.meta[VALUE] = tuple(
                replace(v, path=path + v.path)
                for p, path in zip(group, paths, strict=True)
                for v in p.meta.get(VALUE, ())
            )
            new.update((p, node) for p in group)
    seen_calls: dict[str, int] = defaultdict(int)
    for n in gm.graph.nodes:
        if n in new:  # an argument's leaves, already its one input
            continue
        owner = call_of.get(n)
        if owner is not None:
            if n.op == "call_function" and n is owner.members[0]:
                node = _call_module(lifted, owner, call_of, new)
                returned = call_outputs.get(owner.path, [])
                if seen_calls[owner.path] < len(returned):
                    node.meta[VALUE] = returned[seen_calls[owner.path]]
                seen_calls[owner.path] += 1
                new.update((member, node) for member in owner.members)
            continue
        if _draws_nothing(n, gm):
            continue
        if _changes_nothing(n) and n.args[0] in new:
            new[n] = new[n.args[0]]  # its readers read what it was given
            continue
        new[n] = _kept(lifted, n, new, gm, type(model), canonical)
    return lifted


def _call_module(
    lifted: fx.Graph, call: _Call, call_of: dict[fx.Node, _Call], new: dict[fx.Node, fx.Node]
) -> fx.Node:
    """One module call in place of the ATen nodes it ran, reading what they read outside."""
    members = set(call.members)
    inputs: dict[fx.Node, None] = {}
    for member in call.members:
        for source in member.all_input_nodes:
            if source not in members and call_of.get(source) is not call and source in new:
                inputs[new[source]] = None
    node = lifted.create_node(
        "call_module", call.path, tuple(inputs), name=call.path.replace(".", "_") or "module"
    )
    produced = [m for m in call.members if any(u not in members for u in m.users)]
    node.meta[VALUE] = indexed([m.meta.get(VALUE, ()) for m in produced]) if produced else ()
    node.meta[FLOPS] = sum(int(m.meta.get(FLOPS, 0)) for m in call.members)
    node.meta["fxviz_source"] = source_of(call.members[0])
    node.meta["fxviz_class"] = call.cls_name
    return node


def _kept(
    lifted: fx.Graph,
    n: fx.Node,
    new: dict[fx.Node, fx.Node],
    gm: fx.GraphModule,
    root: type,
    canonical: Canonical,
) -> fx.Node:
    """An exported node that stays as it is: an input, a parameter an op reads, an ATen op
    between module calls, the output; its arguments read the lifted graph's nodes."""

    def lifted_arg(x: fx.Node) -> Any:
        return new.get(x, Undrawn())

    args = fx.node.map_arg(n.args, lifted_arg)
    kwargs = fx.node.map_arg(n.kwargs, lifted_arg)
    if n.op == "get_attr":
        target = canonical.tensor(str(n.target))
        node = lifted.create_node("get_attr", target, name=target.replace(".", "_"))
        # Export may hold constants the model has no attribute for: count them from its graph.
        node.meta["fxviz_counts"] = attribute_counts(fetch_attr(gm, str(n.target)))
        if is_tracer_name(target):  # `lifted_tensor_0`: named by the line that made it
            made = _made_by(n, root)
            node.meta["fxviz_target"] = made
            node.meta["fxviz_scope"] = parent_path(target)
            node.meta["fxviz_name"] = node_name(made)
    elif n.op == "call_function":
        stack = module_stack(n)
        node = lifted.create_node("call_function", n.target, args, kwargs, name=n.name)
        node.meta["fxviz_target"] = _op_name(n.target)
        node.meta["fxviz_scope"] = canonical.module(_deepest(stack))
        node.meta["fxviz_source"] = source_of(n, _owner_class(stack, root))
    elif n.op == "output":
        node = lifted.output(args[0] if args else None)
    else:
        node = lifted.create_node(n.op, n.target, args, kwargs, name=n.name)
    node.meta[VALUE] = n.meta.get(VALUE, ())
    node.meta[FLOPS] = n.meta.get(FLOPS, 0)
    return node


def argument_leaves(
    model: torch.nn.Module, args: Sequence[Any], kwargs: dict[str, Any], in_spec: Any
) -> list[tuple[str, list[str]]] | None:
    """Each forward argument's name and the paths of its tensors (`['image']`, `[1][0]`), in
    the exported graph's placeholder order: export flattens a dict or list argument into one
    placeholder per tensor, fx and a recorded run keep one input per argument."""
    names = forward_argument_names(model, len(args))
    found = [(name, value) for name, value in zip(names, args, strict=True)]
    order = keyword_order(in_spec) or list(kwargs)
    found += [(key, kwargs[key]) for key in order if key in kwargs]
    arguments = [
        (name, [keystr(path) for path, _ in tree_flatten_with_path(value)[0]])
        for name, value in found
    ]
    return arguments


def forward_argument_names(model: torch.nn.Module, count: int) -> list[str]:
    """The names of `forward`'s first `count` positional parameters (`arg2` past them)."""
    try:
        parameters = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    names = [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return [names[i] if i < len(names) else f"arg{i}" for i in range(count)]


def program_module_tree(gm: fx.GraphModule) -> tuple[Module, ...]:
    """The module tree of a saved program: paths and parameter counts from its graph module,
    classes from the `nn_module_stack` records (the classes themselves are not saved)."""
    classes: dict[str, str] = {}
    for n in gm.graph.nodes:
        for _, path, cls in module_stack(n):
            classes.setdefault(
                path, cls if isinstance(cls, str) else f"{cls.__module__}.{cls.__qualname__}"
            )
    classes.setdefault("", "")
    owned = dict(gm.named_modules())
    tree = []
    for path in sorted(set(classes) | set(owned), key=lambda p: (p.count("."), p)):
        qualname = classes.get(path) or ""
        sub = owned.get(path)
        params, buffers = module_counts(sub)
        tree.append(
            Module(
                path=path,
                class_name=qualname.rpartition(".")[2] or type(sub).__name__,
                qualname=qualname or "torch.nn.Module",
                params=params,
                buffers=buffers,
            )
        )
    return tuple(tree)


def _draws_nothing(n: fx.Node, gm: fx.GraphModule) -> bool:
    """Export's runtime asserts and guard calls, buffers no op reads, and the bodies of
    higher-order ops (`wrap_with_set_grad_enabled`'s `submod_1`): code, not data."""
    if n.op == "get_attr":
        return not n.users or isinstance(fetch_attr(gm, str(n.target)), fx.GraphModule)
    if n.op in ("call_function", "call_module"):
        return not n.users and n.meta.get(VALUE, ()) in ((), (Value("none"),))
    return False


def _changes_nothing(n: fx.Node) -> bool:
    """A `.to()` that keeps dtype, device and shape returns its input itself: drawing it
    would only give later readers of that tensor a detour through it."""
    if n.op != "call_function" or aten_packet(n.target) is not torch.ops.aten.to:
        return False
    source = n.args[0] if n.args else None
    return isinstance(source, fx.Node) and source.meta.get(VALUE) == n.meta.get(VALUE)


def _owner_class(stack: list[StackEntry], root: type) -> Any:
    """The class of the module whose forward made a node (the model's own at the root)."""
    return stack[-1].cls if stack else root


def _deepest(stack: list[StackEntry]) -> str:
    return stack[-1].path if stack else ""


def _op_name(target: Any) -> str:
    """`aten.add.Tensor` reads `aten.add`: the overload is noise on a diagram."""
    packet = aten_packet(target)
    if packet is not None:
        return f"aten.{packet.__name__}"
    return getattr(target, "__qualname__", None) or str(target)


def _class_name(cls: Any) -> str:
    return cls.__name__ if isinstance(cls, type) else str(cls).rpartition(".")[2]


def _made_by(constant: fx.Node, root: type) -> str:
    """The tensor-making call on the line of the first op that reads `constant`
    (`torch.tensor([1.0, 2.0])`), else that line's code; "tensor" when no line is known."""
    for user in constant.users:
        source = source_of(user, _owner_class(module_stack(user), root))
        if source is not None:
            return factory_call(source.code) or clip(source.code)
    return "tensor"


def source_of(node: fx.Node, owner: Any = None) -> SourceLocation | None:
    """The line of `owner`'s code (the module class whose forward ran the op) in the stack an
    export node records; else the innermost frame outside torch: the user's line."""
    frames = [f for f in stack_frames(node) if is_outside_torch(f.file)]
    if not frames:
        return None
    code = own_code(owner) if isinstance(owner, type) else frozenset()
    mine = [f for f in frames if (f.file, f.function) in code]
    last = mine[-1] if mine else frames[-1]
    return SourceLocation(
        file=relative_file(last.file, module_name_of(last.file)),
        line=last.line,
        function=last.function,
        code=last.code,
    )


@functools.lru_cache(maxsize=256)
def module_name_of(filename: str) -> str:
    for name, module in list(sys.modules.items()):
        if getattr(module, "__file__", None) == filename:
            return name
    return ""
