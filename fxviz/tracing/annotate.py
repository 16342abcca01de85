"""Turn a shape-propagated fx GraphModule into the typed Graph: params, buffers, scopes."""

from __future__ import annotations

import functools
import inspect
import operator
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import torch
from torch import fx

from fxviz.graph import (
    Call,
    Graph,
    Module,
    Node,
    NodeKind,
    ParamCount,
    Totals,
    Value,
    parent_path,
    split_hparams,
    unique_id,
)
from fxviz.loaders.torch_internals import (
    method_schemas,
    module_stack,
    qualified_name,
    schema_argument_names,
    torch_op_parameters,
)
from fxviz.tracing.explain import why
from fxviz.tracing.keys import FLOPS, VALUE

_KINDS: dict[str, NodeKind] = {
    "placeholder": "input",
    "call_module": "module",
    "call_function": "function",
    "call_method": "method",
    "get_attr": "constant",
    "output": "output",
}


def fx_nodes(graph: fx.Graph, root: torch.nn.Module) -> tuple[Node, ...]:
    """The one converter: the typed Nodes of a module-level fx graph, whichever tracer made
    it (fx natively, export lifted to module calls, a recorded run), without its input checks
    and its shape arithmetic (whose readers show the numbers it made).

    `root` holds the modules and tensors the graph's `call_module` and `get_attr` nodes name.
    Each node carries `VALUE` and `FLOPS` in its meta, and may carry `fxviz_source`, and, where
    its op alone does not say, `fxviz_target` (the name drawn), `fxviz_scope` and
    `fxviz_class`."""
    checks = _only_checks(graph)
    sizes = shape_arithmetic(graph)
    kept = [n for n in graph.nodes if n not in checks and n not in sizes]
    taken: set[str] = set()
    ids = {n: unique_id(_id_base(n), taken) for n in kept}
    modules = dict(root.named_modules(remove_duplicate=False))
    return tuple(_node(root, modules, n, sizes, ids) for n in kept)


def _id_base(n: fx.Node) -> str:
    """A node's id before it is made unique: a module call's or a parameter's path
    (`layer1.0.conv1` -> `layer1_0_conv1`, its second call `layer1_0_conv1_1`), an input's
    name, else the op's name (fx's, or the one a tracer chose in `fxviz_name`)."""
    if n.op == "call_module" or (n.op == "get_attr" and "fxviz_name" not in n.meta):
        base = str(n.target).replace(".", "_") or "module"
        return f"_{base}" if base[0].isdigit() else base  # `_0` for a Sequential's `0`, as fx
    if n.op == "placeholder":
        return str(n.target).lstrip("*")
    return str(n.meta.get("fxviz_name", n.name))


# Reading these gives a tensor's metadata, never its values.
_METADATA_ATTRIBUTES = frozenset({"shape", "dtype", "device", "ndim", "is_cuda", "layout"})
_METADATA_METHODS = frozenset({"size", "dim", "ndimension", "numel", "nelement", "get_device"})


def shape_arithmetic(graph: fx.Graph) -> dict[fx.Node, str]:
    """Nodes that compute only with tensors' shapes (`n, c, h, w = x.shape`, `x.size(0) // 2`),
    with the value each made. torch.export specializes them into constants and a recorded run
    never sees them: they are not data flow, and a reader shows the number instead (fx alone
    would draw an edge from `x` into everything sized by it)."""
    found: dict[fx.Node, str] = {}
    for n in graph.nodes:
        values = n.meta.get(VALUE, ())
        if n.op not in ("call_function", "call_method") or not values:
            continue
        if any(v.is_tensor for v in values):
            continue
        reads = n.all_input_nodes
        if _reads_metadata(n) or (reads and all(r in found for r in reads)):
            found[n] = _value_text(values)
    return found


def _reads_metadata(n: fx.Node) -> bool:
    if n.op == "call_method":
        return str(n.target) in _METADATA_METHODS
    if n.target is getattr:
        return len(n.args) > 1 and n.args[1] in _METADATA_ATTRIBUTES
    return n.target is len


def _value_text(values: tuple[Value, ...]) -> str:
    texts = [v.text or v.kind for v in values]
    if len(values) == 1 and not values[0].path:
        return texts[0]
    return f"({', '.join(texts)})"


_CHECKS = (torch._assert,)


def _only_checks(graph: fx.Graph) -> set[fx.Node]:
    """`torch._assert(h == self.image_size, …)` and what only it reads: an input check, no
    data flow (torch.export drops its own runtime asserts the same way)."""
    checks: set[fx.Node] = set()
    for n in reversed(graph.nodes):
        if n.op == "call_function" and n.target in _CHECKS and not n.users:
            checks.add(n)
        elif n.op in ("call_function", "call_method") and n.users and set(n.users) <= checks:
            checks.add(n)
    return checks


def assemble_graph(
    model: torch.nn.Module,
    nodes: tuple[Node, ...],
    name: str,
    source: str,
    tracer: str,
    device: str,
    notes: tuple[str, ...] = (),
) -> Graph:
    """The Graph for any tracer's nodes: module tree and totals come from the model, and each
    module's parameters and buffers are drawn once, on its first call."""
    modules = module_tree(model)
    read = {source for node in nodes for source in node.inputs}
    # (A number or flag fx bakes into the ops it sets is read, though no edge says so.)
    unread = [n.target for n in nodes if n.id not in read and _unread_tensor_input(n)]
    if unread:
        notes = (*notes, f"the model never reads {', '.join(unread)}: not drawn")
    return Graph(
        name=name,
        source=source,
        tracer=tracer,
        device=device,
        nodes=_owned_once(nodes, {m.path: m for m in modules}),
        modules=modules,
        totals=Totals(
            params=count_params(model.parameters()),
            buffers=count_buffers(model),
            flops=sum(n.flops for n in nodes),
        ),
        notes=notes,
    )


def _unread_tensor_input(node: Node) -> bool:
    return node.kind == "input" and bool(node.outputs) and all(v.is_tensor for v in node.outputs)


def _owned_once(nodes: tuple[Node, ...], tree: dict[str, Module]) -> tuple[Node, ...]:
    """A module's first call carries its parameters and buffers (each tensor counted once, at
    the module holding it first: a weight tied to another module's is that module's); later
    calls of the same module carry none, so the boxes add up to the model's totals."""
    count = Counter(n.target for n in nodes if n.kind == "module" and n.target in tree)
    called: Counter[str] = Counter()
    owned = []
    for node in nodes:
        module = tree.get(node.target) if node.kind == "module" else None
        if module is not None:
            called[node.target] += 1
            first = called[node.target] == 1
            node = replace(
                node,
                params=module.params if first else ParamCount(),
                buffers=module.buffers if first else 0,
                call=Call(called[node.target], count[node.target])
                if count[node.target] > 1
                else None,
            )
        owned.append(node)
    return tuple(owned)


class Canonical:
    """A model's one name for what it holds under several: a module registered at two paths
    (`self.head = self.proj`), a weight tied between an embedding and a head. The first name
    torch lists is the one, as `named_modules()` and `named_parameters()` give by default."""

    def __init__(self, model: torch.nn.Module) -> None:
        first: dict[Any, str] = {}
        self.modules = {
            path: first.setdefault(m, path)
            for path, m in model.named_modules(remove_duplicate=False)
        }
        tensors = [
            *model.named_parameters(remove_duplicate=False),
            *model.named_buffers(remove_duplicate=False),
        ]
        self.tensors = {name: first.setdefault(id(t), name) for name, t in tensors}

    def module(self, path: str) -> str:
        return self.modules.get(path, path)

    def tensor(self, name: str) -> str:
        return self.tensors.get(name, name)


def count_params(params: Any) -> ParamCount:
    trainable = frozen = 0
    for p in params:
        if p.requires_grad:
            trainable += p.numel()
        else:
            frozen += p.numel()
    return ParamCount(trainable, frozen)


def count_buffers(module: torch.nn.Module) -> int:
    return sum(b.numel() for b in module.buffers())


def module_counts(module: torch.nn.Module | None) -> tuple[ParamCount, int]:
    """Parameters (trainable and frozen) and buffer elements of a module with its submodules;
    nothing for a module the graph no longer holds (a saved program's)."""
    if module is None:
        return ParamCount(), 0
    return count_params(module.parameters()), count_buffers(module)


def attribute_counts(attr: object) -> tuple[ParamCount, int]:
    """What a fetched attribute (a `get_attr` node's) counts as: a parameter's elements,
    trainable or frozen, or a buffer's elements; nothing for anything else."""
    if isinstance(attr, torch.nn.Parameter):
        return count_params([attr]), 0
    if isinstance(attr, torch.Tensor):
        return ParamCount(), attr.numel()
    return ParamCount(), 0


def module_tree(model: torch.nn.Module) -> tuple[Module, ...]:
    """Every module once, by its first path; each parameter and buffer counted once, in the
    module that holds it first (a tied weight belongs to the embedding, not the head)."""
    params = _by_module(model.named_parameters())
    buffers = _by_module(model.named_buffers())
    aliases, tied = _sharing(model)
    modules = []
    for path, m in model.named_modules():
        extra_repr = m.extra_repr()
        modules.append(
            Module(
                path=path,
                class_name=type(m).__name__,
                qualname=f"{type(m).__module__}.{type(m).__qualname__}",
                params=count_params(params[path].values()),
                buffers=sum(b.numel() for b in buffers[path].values()),
                extra_repr=extra_repr,
                hparams=_hparams(_cache_key(m), extra_repr),
                aliases=tuple(aliases.get(path, ())),
                tied=tuple(sorted(tied.get(path, {}).items())),
            )
        )
    return tuple(modules)


def _sharing(model: torch.nn.Module) -> tuple[dict[str, list[str]], dict[str, dict[str, str]]]:
    """What a module tree walked once hides: each module's other paths (by its first), and
    each module's parameters held first by another module (local name -> that path)."""
    first: dict[int, str] = {}
    aliases: dict[str, list[str]] = defaultdict(list)
    for path, m in model.named_modules(remove_duplicate=False):
        if id(m) in first:
            aliases[first[id(m)]].append(path)
        else:
            first[id(m)] = path
    canonical = set(first.values())
    held: dict[int, str] = {}
    tied: dict[str, dict[str, str]] = defaultdict(dict)
    for name, p in model.named_parameters(remove_duplicate=False):
        owner, _, local = name.rpartition(".")
        if id(p) not in held:
            held[id(p)] = name
        elif owner in canonical and parent_path(held[id(p)]) != owner:
            tied[owner][local] = held[id(p)]
    return aliases, tied


def _by_module(named: Iterator[tuple[str, torch.Tensor]]) -> dict[str, dict[int, torch.Tensor]]:
    """Each module path's tensors, its submodules' included: one pass instead of a
    `parameters()` walk per module."""
    found: dict[str, dict[int, torch.Tensor]] = defaultdict(dict)
    for name, tensor in named:
        parts = name.split(".")[:-1]
        for k in range(len(parts) + 1):
            found[".".join(parts[:k])][id(tensor)] = tensor
    return found


def hparams(module: torch.nn.Module) -> str:
    """`extra_repr()` without the arguments left at their defaults, tuples compacted:
    Conv2d(64, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False) reads
    `64, 64, kernel_size=3, padding=1, bias=False`."""
    return _hparams(_cache_key(module), module.extra_repr())


def _cache_key(module: torch.nn.Module) -> object:
    return type(module)  # a class is hashable, whatever nn.Module's typing says


@functools.lru_cache(maxsize=4096)
def _hparams(module_class: object, extra_repr: str) -> str:
    """`hparams` by class and `extra_repr()`: a model repeats a few layer shapes many times."""
    defaults = _defaults(module_class)
    kept = []
    for item in split_hparams(extra_repr.replace("\n", " ")):
        item = re.sub(r"\((-?[\w.]+)(?:, \1)+\)", r"\1", item)
        key, eq, value = item.partition("=")
        if eq and key in defaults and value == _compact_default(defaults[key]):
            continue
        kept.append(item)
    return ", ".join(kept)


def _compact_default(value: Any) -> str:
    if isinstance(value, tuple) and value and all(v == value[0] for v in value):
        value = value[0]
    return repr(value)


def _node(
    root: torch.nn.Module,
    modules: dict[str, torch.nn.Module],
    n: fx.Node,
    sizes: dict[fx.Node, str],
    ids: dict[fx.Node, str],
) -> Node:
    kind = _KINDS[n.op]
    params, buffers, module_class = ParamCount(), 0, None
    # None for a program saved without its source (a `.pt2`), whose module calls are known
    # by path and class only.
    module = modules.get(str(n.target)) if n.op == "call_module" else None
    if n.op == "call_module":
        # Its parameters and buffers come from the module tree (`_owned_once`).
        module_class = n.meta.get("fxviz_class") or type(module).__name__
    elif n.op == "get_attr":
        params, buffers = n.meta.get("fxviz_counts") or attribute_counts(
            fetch_attr(root, str(n.target))
        )
    return Node(
        id=ids[n],
        kind=kind,
        target=_target(n),
        scope=_scope(n),
        module_class=module_class,
        inputs=tuple(ids[i] for i in n.all_input_nodes if i in ids),
        arguments=constant_arguments(n, sizes),
        outputs=n.meta.get(VALUE, ()),
        params=params,
        buffers=buffers,
        flops=int(n.meta.get(FLOPS, 0)),
        source=n.meta.get("fxviz_source"),
        why=why(n, module),
    )


def _target(n: fx.Node) -> str:
    if "fxviz_target" in n.meta:
        return str(n.meta["fxviz_target"])
    if n.op == "call_function":
        if n.target is operator.getitem:
            return "getitem"
        try:
            name = qualified_name(n.target)
            # operator.add reports its C module: show the name people import.
            return name.replace("_operator.", "operator.", 1)
        except (AttributeError, RuntimeError):
            return getattr(n.target, "__name__", str(n.target))
    if n.op == "output":
        return "output"
    return str(n.target)


def _scope(n: fx.Node) -> str:
    """The module whose forward made this node; a module call's scope is its parent."""
    if "fxviz_scope" in n.meta:
        return str(n.meta["fxviz_scope"])
    if n.op == "get_attr":  # a parameter or buffer belongs to the module that holds it
        return parent_path(str(n.target))
    paths = [entry.path for entry in module_stack(n)]
    if n.op == "call_module" and paths and paths[-1] == n.target:
        paths = paths[:-1]
    elif n.op == "call_module":
        return parent_path(str(n.target))
    return str(paths[-1]) if paths else ""


def constant_arguments(n: fx.Node, sizes: dict[fx.Node, str] | None = None) -> str:
    """The constant (non-tensor) arguments, named where the function's signature or the
    op's schema names them: `start_dim=1` for `torch.flatten(x, 1)`, `dim=1, index=0` for
    `aten.select`; an argument made by shape arithmetic (`sizes`) shows the number it was.
    A method's are named by its ATen op's schema, a method's several sizes as the one list
    the schema takes (`x.permute(0, 2, 1)`: `dims=[0, 2, 1]`, as export draws it).

    Arguments equal to the function's defaults are left out: fx records every keyword of
    wrapped functions such as F.log_softmax (`_stacklevel=3, dtype=None`)."""
    if n.op not in ("call_function", "call_method"):
        return ""
    known = sizes or {}

    def number(x: fx.Node) -> Any:
        return _Literal(known[x]) if x in known else x

    def literal(value: Any) -> Any:
        return fx.node.map_arg(value, number)

    args = [literal(a) for a in (n.args[1:] if n.op == "call_method" else n.args)]
    kwargs = {k: literal(v) for k, v in n.kwargs.items()}
    defaults = _defaults(n.target) if n.op == "call_function" else {}
    if n.op == "call_function":
        names = argument_names(n.target)
    else:
        args, names = _method_arguments(str(n.target), args)
    shown = []
    for position, value in enumerate(args):
        if _has_node(value) or _is_placement(value):
            continue
        name = names[position] if position < len(names) else None
        if name is None:
            shown.append(_show(value))
        elif name not in _PLACEMENT_KEYWORDS and not _is_default(defaults, name, value):
            shown.append(f"{name}={_show(value)}")
    shown += [
        f"{k}={_show(v)}"
        for k, v in kwargs.items()
        if not _has_node(v)
        and not k.startswith("_")
        and k not in _PLACEMENT_KEYWORDS
        and not _is_placement(v)
        and not _is_default(defaults, k, v)
    ]
    return ", ".join(shown)


def _method_arguments(name: str, args: list[Any]) -> tuple[list[Any], list[str | None]]:
    """A Tensor method's positional arguments and their names, from the first overload of
    its ATen op whose types they fit; several sizes passed one by one (`x.view(1, 16, 64)`)
    become the one list the schema takes. Unnamed when no overload fits."""
    schemas = method_schemas(name)
    for typed in schemas:
        if typed and _is_sizes(typed[0][1]) and len(args) > 1 and all(map(_is_int, args)):
            return [list(args)], [typed[0][0]]
    # An int fits an int first (`x.split(64)`: split_size), a list of ints only then.
    for lenient in (False, True):
        for typed in schemas:
            if len(args) <= len(typed) and all(
                _fits(value, kind, lenient) for value, (_, kind) in zip(args, typed, strict=False)
            ):
                return args, [arg for arg, _ in typed]
    return args, []


def _is_sizes(kind: str) -> bool:
    return kind.removesuffix("?").startswith(("int[", "SymInt["))


def _is_int(value: Any) -> bool:
    return isinstance(value, int | _Literal | fx.Node) and not isinstance(value, bool)


def _fits(value: Any, kind: str, lenient: bool) -> bool:
    """Whether a value can be an argument of the schema type `kind` (`int`, `SymInt[]`, …)."""
    if isinstance(value, fx.Node):
        return True  # a tensor, or a size computed from one
    if value is None:
        return kind.endswith("?")
    base = kind.removesuffix("?")
    if isinstance(value, bool):
        return base == "bool"
    if _is_int(value):
        return base in ("int", "SymInt", "Scalar", "float") or (lenient and _is_sizes(base))
    if isinstance(value, float):
        return base in ("float", "Scalar")
    if isinstance(value, list | tuple):
        return base.endswith("]")
    if isinstance(value, str):
        return base == "str"
    if isinstance(value, torch.dtype):
        return base == "ScalarType"
    if isinstance(value, torch.device):
        return base == "Device"
    return False


class _Literal:
    """A value shown as written: the number a shape computation made."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


# Where a tensor lives, not what the op computes; a device would also make meta and cpu
# graphs of the same model differ.
_PLACEMENT_KEYWORDS = frozenset({"device", "pin_memory", "layout", "memory_format", "non_blocking"})


def _is_placement(value: Any) -> bool:
    return isinstance(value, torch.device | torch.layout | torch.memory_format)


@functools.cache
def argument_names(target: Any) -> list[str | None]:
    """The name of each positional argument a function takes, None where it has none to give
    (positional-only, as `operator.add`'s), from its Python signature or the op's schema."""
    names = schema_argument_names(target)
    if names is not None:
        return list(names)
    parameters = _parameters(target) or torch_op_parameters(target)
    return [
        p.name if p.kind is p.POSITIONAL_OR_KEYWORD else None
        for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]


@functools.cache
def _defaults(target: Any) -> dict[str, Any]:
    """The arguments a function or a class's constructor gives defaults to (read-only)."""
    return {p.name: p.default for p in _parameters(target) if p.default is not p.empty}


@functools.cache
def _parameters(target: Any) -> list[inspect.Parameter]:
    """A callable's Python signature; none for what has no signature to read (builtins)."""
    try:
        return list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        return []


def _is_default(defaults: dict[str, Any], key: str, value: Any) -> bool:
    if key not in defaults:
        return False
    default = defaults[key]
    return bool(default is value or (type(default) is type(value) and default == value))


class Undrawn:
    """An argument read from a node a lifted graph leaves out (a guard, a higher-order op's
    body): neither an edge nor a constant to show."""

    def __repr__(self) -> str:
        return "…"


def _has_node(value: Any) -> bool:
    """An fx argument reads another node. fx's own walk, not pytree's (`tensors_in`): it
    looks inside slices too, as in `x[:, :n]`."""
    found = False

    def visit(x: Any) -> Any:
        nonlocal found
        found = found or isinstance(x, fx.Node | Undrawn)
        return x

    fx.node.map_aggregate(value, visit)
    return found


def _show(value: Any) -> str:
    if isinstance(value, torch.dtype):
        return str(value).removeprefix("torch.")
    if isinstance(value, float):
        return _float_text(value)
    if _is_index(value):
        text = _index_text(value)
    else:
        text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


# The extremes masks are filled with: `where(mask, x, min(float32))`, not -3.4028234663852886e+38.
_EXTREMES = {
    float(getattr(torch.finfo(dtype), end)): f"{end}({str(dtype).removeprefix('torch.')})"
    for dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64)
    for end in ("min", "max")
}


def _float_text(value: float) -> str:
    """A float as a reader wants it: a dtype's extreme by name, else at most 6 digits."""
    if value in _EXTREMES:
        return _EXTREMES[value]
    text = repr(value)
    return text if len(text) <= 8 else f"{value:.6g}"


def _is_index(value: Any) -> bool:
    parts = value if isinstance(value, tuple) else (value,)
    return any(isinstance(p, slice) or p is Ellipsis or p is None for p in parts) and all(
        isinstance(p, slice | int | _Literal) or p is Ellipsis or p is None for p in parts
    )


def _index_text(value: Any) -> str:
    """An index as Python writes it: `:, 0` for `(slice(None, None, None), 0)`."""
    if isinstance(value, tuple):
        return ", ".join(_index_text(v) for v in value)
    if isinstance(value, slice):
        ends = ["" if v is None else repr(v) for v in (value.start, value.stop)]
        return ":".join(ends) + ("" if value.step is None else f":{value.step!r}")
    if value is Ellipsis:
        return "..."
    return repr(value)


def fetch_attr(gm: torch.nn.Module, target: str) -> Any:
    obj: Any = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj
