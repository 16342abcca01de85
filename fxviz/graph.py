"""The typed graph model every later stage reads: plain frozen data, no torch.

`Graph.to_json()` is deterministic (sorted keys, stable ids, no timestamps or absolute paths),
so two saved graphs can be diffed in git. `Graph.from_json()` validates against the shipped JSON
Schema (`fxviz/schema/graph.schema.json`, the one definition of the format) and raises
`SchemaError` naming the offending field.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from fxviz.errors import SchemaError

# 2: shapes as expressions (`expr`), `symbolic` (dims, constraints); 3: memory's scratch_bytes
SCHEMA_VERSION = 3

# Bytes per element, by the dtype names Values carry (torch's, without the `torch.` prefix).
DTYPE_BYTES = {
    "bool": 1,
    "uint8": 1,
    "int8": 1,
    "float8_e4m3fn": 1,
    "float8_e5m2": 1,
    "int16": 2,
    "uint16": 2,
    "float16": 2,
    "bfloat16": 2,
    "int32": 4,
    "uint32": 4,
    "float32": 4,
    "complex32": 4,
    "int64": 8,
    "uint64": 8,
    "float64": 8,
    "complex64": 8,
    "complex128": 16,
}

# "line": the ops one source line ran, drawn as one node (made by views.group_lines only).
NodeKind = Literal["input", "module", "function", "method", "constant", "line", "output"]
ValueKind = Literal["tensor", "int", "float", "bool", "none", "str", "other"]


@dataclass(frozen=True, slots=True)
class Value:
    """One value a node produces; `path` locates it in a tuple/dict output ("" = the value)."""

    kind: ValueKind
    path: str = ""
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    device: str | None = None
    text: str | None = None
    # Each dim as an expression of the named input dims (`B`, `⌈H/2⌉`, `L·12`), where the
    # graph was traced with symbolic shapes; `shape` holds this call's numbers.
    expr: tuple[str, ...] | None = None

    @property
    def is_tensor(self) -> bool:
        return self.kind == "tensor"

    @property
    def nbytes(self) -> int:
        """Memory of a tensor value (0 for others): elements times its dtype's size."""
        if not self.is_tensor or self.shape is None:
            return 0
        count = 1
        for d in self.shape:
            count *= d
        return count * DTYPE_BYTES.get(self.dtype or "float32", 4)


@dataclass(frozen=True, slots=True)
class Dim:
    """A named input dimension of a symbolic trace: `name` (B, L, H, …) is axis `axis` of the
    input `input`, `size` in this call; `fixed` where the model only works at that size."""

    name: str
    input: str
    axis: int
    size: int
    fixed: bool = False


@dataclass(frozen=True, slots=True)
class Constraint:
    """A size the model only works for, in words (`H, W = 224`, `L ≤ 512`), and the node
    whose op required it ("" where none did: a bound from rounding down)."""

    text: str
    node: str = ""


@dataclass(frozen=True, slots=True)
class Symbolic:
    """What a symbolic trace found: the named dims, and the constraints on them."""

    dims: tuple[Dim, ...] = ()
    constraints: tuple[Constraint, ...] = ()


@dataclass(frozen=True, slots=True)
class ParamCount:
    trainable: int = 0
    frozen: int = 0

    @property
    def total(self) -> int:
        return self.trainable + self.frozen

    def __add__(self, other: ParamCount) -> ParamCount:
        return ParamCount(self.trainable + other.trainable, self.frozen + other.frozen)


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """Where in a `forward` a node came from; `file` is relative to its package, never absolute."""

    file: str
    line: int
    function: str
    code: str = ""


@dataclass(frozen=True, slots=True)
class Call:
    """The `index`-th (1-based) of a module's `count` calls in one forward."""

    index: int
    count: int


@dataclass(frozen=True, slots=True)
class Node:
    """One operation. `id` is the fx name: unique and deterministic for a given model."""

    id: str
    kind: NodeKind
    target: str
    scope: str = ""
    module_class: str | None = None
    inputs: tuple[str, ...] = ()
    arguments: str = ""
    outputs: tuple[Value, ...] = ()
    params: ParamCount = ParamCount()
    buffers: int = 0
    flops: int = 0
    source: SourceLocation | None = None
    # Why its shapes and parameter counts are what they are: the layer's arithmetic filled in
    # with this call's numbers (tracing/explain.py), checked against the shapes torch computed.
    why: tuple[str, ...] = ()
    # A module called more than once (one module under two names, a shared layer): which
    # call this node is, and of how many. None for a module called once and for every op.
    call: Call | None = None
    # Drawn with torch.compile's graphs (`fxviz compile`): the numbers (1-based) of the graphs
    # TorchDynamo captured this node's ops in, 0 for ops that ran in Python between them;
    # several for a box that stands for many ops. Empty when nothing was compiled.
    compiled: tuple[int, ...] = ()
    # The graph breaks (indices into `Graph.compilation.breaks`) that fall at this node.
    breaks: tuple[int, ...] = ()

    @property
    def owner(self) -> str:
        """The module a node belongs to: a module call's own path, else its scope."""
        return self.target if self.kind == "module" else self.scope

    @property
    def names_path(self) -> bool:
        """Its target is a path in the model: a module's, a parameter's or a buffer's (not so
        a constant named by the code that made it, `torch.arange(49)`)."""
        if self.kind == "module":
            return True
        made_by_code = "(" in self.target
        return self.kind == "constant" and not made_by_code and within(self.target, self.scope)


@dataclass(frozen=True, slots=True)
class ModuleMemory:
    """A module's share of a memory estimate (`fxviz memory`, `--show memory`): the bytes its
    ops (its submodules' included) saved for backward, and the most activation bytes live
    while it ran forward."""

    saved: int = 0
    live: int = 0


@dataclass(frozen=True, slots=True)
class Module:
    """An entry of the module tree: `path` "" is the root; counts include submodules.

    `extra_repr` is the module's own; `hparams` is it without arguments left at their
    constructor defaults (what a diagram shows). `repeat` > 1 marks a run of identical
    blocks drawn once (views.fold_repeats); its counts are then those of the whole run.

    Sharing, which the counts (each parameter once, where it is first held) do not show:
    `aliases` are the other paths of this same module object (`self.head_proj = self.proj`),
    `tied` maps each of its parameters held first by another module to that parameter's
    path (`{"weight": "emb.weight"}` for a head tied to its embedding)."""

    path: str
    class_name: str
    qualname: str
    params: ParamCount = ParamCount()
    buffers: int = 0
    extra_repr: str = ""
    hparams: str = ""
    repeat: int = 1
    aliases: tuple[str, ...] = ()
    tied: tuple[tuple[str, str], ...] = ()
    # A run of blocks alike but for their numbers, drawn once (views.fold_ranges): what
    # varies along it (`in 64 → 224 (+32 each)`).
    varies: str = ""
    # Its share of a memory estimate (`fxviz memory`, `--show memory`); None without one.
    memory: ModuleMemory | None = None


# The class name of a loop's cluster: a module entry the fold_steps view makes (path
# `lstm.loop`, `repeat` = its steps), never one of the model's own.
LOOP = "loop"
# The class name of a cluster of alternating blocks drawn once (`layers.1–44`, `repeat` =
# its groups): a module entry the fold_periods view makes.
GROUP = "group"


@dataclass(frozen=True, slots=True)
class CompiledGraph:
    """One graph TorchDynamo captured: its number (1-based, in the order it ran), the ops it
    holds (its call nodes, as `torch._dynamo.explain` counts them), and the drawn nodes'
    FLOPs inside it."""

    number: int
    ops: int
    flops: int = 0


@dataclass(frozen=True, slots=True)
class GraphBreak:
    """Where and why TorchDynamo stopped a graph: `reason` in a reader's words, `detail` as
    torch says it, the user's line (`source`; `stack` the frames leading to it, outermost
    first), the graph it ended (`after`) and the drawn node it falls at."""

    reason: str
    detail: str
    after: int
    source: SourceLocation | None = None
    stack: tuple[SourceLocation, ...] = ()
    node: str | None = None


@dataclass(frozen=True, slots=True)
class Recompile:
    """A guard that failed when the model ran again with the same inputs, so TorchDynamo
    compiled it again: the guard as torch wrote it, why, and the line that made it."""

    guard: str
    reason: str
    source: SourceLocation | None = None


@dataclass(frozen=True, slots=True)
class Compilation:
    """What `torch.compile` (TorchDynamo, capturing only) made of one run of the model."""

    graphs: tuple[CompiledGraph, ...]
    breaks: tuple[GraphBreak, ...] = ()
    recompiles: tuple[Recompile, ...] = ()

    @property
    def flops(self) -> int:
        return sum(g.flops for g in self.graphs)


@dataclass(frozen=True, slots=True)
class MemoryEstimate:
    """The peak memory of one inference or training step (`mode`: inference, sgd, momentum,
    adam, adamw), split by what the bytes at the peak hold; `saved` is every byte the
    forward kept for backward, `peak_at` the module running at the peak ("" for the
    optimizer's step or the model's own code), in `peak_phase` (forward, backward, optimizer
    step)."""

    mode: str
    dtype: str
    batch: int | None
    peak: int
    params: int
    buffers: int
    grads: int
    optimizer: int
    activations: int
    saved: int
    peak_at: str
    peak_phase: str
    master_weights: bool = False
    # Of `peak`, what the kernel running then takes of its own beyond its outputs (oneDNN's
    # reorders and buffers on CPU; no tensor holds it).
    scratch: int = 0


@dataclass(frozen=True, slots=True)
class Totals:
    params: ParamCount = ParamCount()
    buffers: int = 0
    flops: int = 0


@dataclass(frozen=True, slots=True)
class Graph:
    """A traced model: nodes in execution order, the module tree, and how it was obtained."""

    name: str
    source: str
    tracer: str
    device: str
    nodes: tuple[Node, ...]
    modules: tuple[Module, ...] = ()
    totals: Totals = Totals()
    notes: tuple[str, ...] = ()
    compilation: Compilation | None = None
    memory: MemoryEstimate | None = None
    symbolic: Symbolic | None = None
    schema_version: int = SCHEMA_VERSION
    _index: dict[str, Node] = field(default_factory=dict, init=False, repr=False, compare=False)
    _tree: dict[str, Module] = field(default_factory=dict, init=False, repr=False, compare=False)
    _children: dict[str, tuple[str, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self._index.update((node.id, node) for node in self.nodes)
        self._tree.update((m.path, m) for m in self.modules)

    def node(self, node_id: str) -> Node:
        return self._index[node_id]

    def module(self, path: str) -> Module | None:
        return self._tree.get(path)

    def children(self, path: str) -> tuple[str, ...]:
        """The module tree's direct children of `path` ("" is the root), in natural order."""
        if not self._children and self.modules:
            self._children.update(children_of(self._tree))
        return self._children.get(path, ())

    def owns(self, node: Node, path: str) -> bool:
        """`node` ran inside the module at `path` (its own call included)."""
        return within(node.owner, path)

    def save(self, *paths: str | Path, **options: Any) -> None:
        """Write the default picture (or the graph, for .json) to each path; the format comes
        from the suffix. `options` are those of `fxviz.draw`: depth, show, rankdir, …"""
        drawing("save")(self, *paths, **options)

    def to_dot(self, **options: Any) -> str:
        """The DOT source of the default picture; `options` as for `fxviz.draw`."""
        text: str = drawing("to_dot")(self, **options)
        return text

    def _repr_html_(self) -> str:
        """A notebook shows the graph as its page to explore (in a sandboxed iframe)."""
        text: str = drawing("notebook_html")(self)
        return text

    def _repr_svg_(self) -> str:
        """The default picture, for front ends that show SVG but not HTML."""
        text: str = drawing("svg")(self)
        return text

    def _repr_mimebundle_(self, include: object = None, exclude: object = None) -> dict[str, str]:
        """Both at once (IPython then calls neither `_repr_html_` nor `_repr_svg_`)."""
        return {"text/html": self._repr_html_(), "image/svg+xml": self._repr_svg_()}

    @property
    def inputs(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.kind == "input")

    @property
    def outputs(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.kind == "output")

    def to_dict(self) -> dict[str, Any]:
        compiled = (
            {} if self.compilation is None else {"compile": _compilation_to_dict(self.compilation)}
        )
        memory = {} if self.memory is None else {"memory": _memory_to_dict(self.memory)}
        symbolic = {} if self.symbolic is None else {"symbolic": _symbolic_to_dict(self.symbolic)}
        return {
            **compiled,
            **memory,
            **symbolic,
            "schema_version": self.schema_version,
            "name": self.name,
            "source": self.source,
            "tracer": self.tracer,
            "device": self.device,
            "notes": list(self.notes),
            "totals": _totals_to_dict(self.totals),
            "modules": [_module_to_dict(m) for m in self.modules],
            "nodes": [_node_to_dict(n) for n in self.nodes],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: object) -> Graph:
        """A Graph from parsed JSON: what the shipped schema accepts, and nothing else."""
        _check_graph(data)
        assert isinstance(data, dict)  # _check_graph proved it
        graph = cls(
            name=data["name"],
            source=data["source"],
            tracer=data["tracer"],
            device=data["device"],
            notes=tuple(data["notes"]),
            totals=Totals(
                _params_from(data["totals"]["params"]),
                int(data["totals"]["buffers"]),
                int(data["totals"]["flops"]),
            ),
            modules=tuple(_module_from(m) for m in data["modules"]),
            nodes=tuple(_node_from(n) for n in data["nodes"]),
            compilation=_compilation_from(data["compile"]) if "compile" in data else None,
            memory=_memory_from(data["memory"]) if "memory" in data else None,
            symbolic=_symbolic_from(data["symbolic"]) if "symbolic" in data else None,
            schema_version=int(data["schema_version"]),
        )
        _check_edges(graph)
        return graph

    @classmethod
    def from_json(cls, text: str | bytes) -> Graph:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SchemaError(f"not valid JSON ({exc}); is this a graph saved by fxviz?") from exc
        except RecursionError as exc:
            raise SchemaError("JSON nested too deeply to be an fxviz graph") from exc
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> Graph:
        """Read a graph saved with `fxviz MODEL -o graph.json`."""
        try:
            text = Path(path).read_bytes()
        except OSError as exc:
            raise SchemaError(f"cannot read {str(path)!r}: {exc.strerror}") from exc
        try:
            return cls.from_json(text)
        except SchemaError as exc:
            raise SchemaError(f"{path}: {exc}") from exc


def within(path: str, top: str) -> bool:
    """`path` is `top` or inside it (`layer1.2.conv1` is within `layer1.2`; all is within "")."""
    return path == top or not top or path.startswith(top + ".")


def parent_path(path: str) -> str:
    """`layer1.2` for `layer1.2.conv1`; "" (the root) for a top-level module."""
    return path.rpartition(".")[0]


@lru_cache(maxsize=1 << 16)
def lineage(path: str) -> tuple[str, ...]:
    """`path` and every module around it, innermost first, the root "" left out:
    `layer1.2.conv1`, `layer1.2`, `layer1`. Cached: the views ask it of every node, often."""
    found = []
    while path:
        found.append(path)
        path = parent_path(path)
    return tuple(found)


def split_hparams(text: str) -> list[str]:
    """A module's `extra_repr` as its items: `(768,), eps=1e-12` -> ["(768,)", "eps=1e-12"];
    commas inside brackets stay."""
    items, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += char in "([{"
        depth -= char in ")]}"
        if char == "," and depth == 0:
            items.append(text[start:i].strip())
            start = i + 1
    items.append(text[start:].strip())
    return [item for item in items if item]


def children_of(paths: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """The tree of module paths: parent path -> its direct children in natural order. Paths
    whose parents are missing (scopes of a partial graph) get their ancestors filled in."""
    every: set[str] = set()
    for path in paths:
        every.update(lineage(path))
    below: dict[str, list[str]] = defaultdict(list)
    for path in sorted(every, key=natural_key):
        below[parent_path(path)].append(path)
    return {path: tuple(kids) for path, kids in below.items()}


def indexed(groups: Sequence[tuple[Value, ...]]) -> tuple[Value, ...]:
    """The values of several results as one output: `[0]…`, `[1]…` when there are several."""
    if len(groups) == 1:
        return groups[0]
    return tuple(
        Value(v.kind, f"[{i}]{v.path}", v.shape, v.dtype, v.device, v.text, v.expr)
        for i, values in enumerate(groups)
        for v in values
    )


# The drawing layer (fxviz.drawing, imported by `import fxviz`) registers itself here, so that
# `graph.save()`, `graph.to_dot()` and a notebook's display draw the default picture while
# this module imports nothing above it.
_DRAWING: dict[str, Callable[..., Any]] = {}


def register_drawing(**functions: Callable[..., Any]) -> None:
    _DRAWING.update(functions)


def drawing(name: str) -> Callable[..., Any]:
    """A drawing function the layers above registered (`save`, `to_dot`, `notebook_html`,
    `svg`, `diff_notebook_html`, `diff_svg`)."""
    return _DRAWING[name]  # `import fxviz.graph` runs fxviz/__init__.py, which registers it


def unique_id(base: str, taken: set[str]) -> str:
    """`base`, or `base_1`, `base_2`, … : the first not in `taken`, which it joins."""
    name, n = base, 0
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name


@cache
def natural_key(path: str) -> tuple[tuple[tuple[int, int | str], ...], ...]:
    """Sort key for module paths: numbers inside names count as numbers, so `layer1.2` comes
    before `layer1.10` and `encoder_layer_2` before `encoder_layer_10`."""
    return tuple(
        tuple((0, int(t)) if t.isdigit() else (1, t) for t in _DIGITS.split(part) if t)
        for part in path.split(".")
    )


_DIGITS = re.compile(r"(\d+)")


def _check_edges(graph: Graph) -> None:
    seen: set[str] = set()
    for node in graph.nodes:
        if node.id in seen:
            raise SchemaError(f"node id {node.id!r} appears twice")
        missing = [i for i in node.inputs if i not in seen]
        if missing:
            raise SchemaError(
                f"node {node.id!r} reads {missing[0]!r}, which no earlier node defines"
            )
        seen.add(node.id)


def _params_to_dict(p: ParamCount) -> dict[str, int]:
    return {"trainable": p.trainable, "frozen": p.frozen}


def _totals_to_dict(t: Totals) -> dict[str, Any]:
    return {"params": _params_to_dict(t.params), "buffers": t.buffers, "flops": t.flops}


def _module_to_dict(m: Module) -> dict[str, Any]:
    return {
        "path": m.path,
        "class_name": m.class_name,
        "qualname": m.qualname,
        "params": _params_to_dict(m.params),
        "buffers": m.buffers,
        "extra_repr": m.extra_repr,
        "hparams": m.hparams,
        **({"repeat": m.repeat} if m.repeat != 1 else {}),
        **({"aliases": list(m.aliases)} if m.aliases else {}),
        **({"tied": dict(m.tied)} if m.tied else {}),
        **({"varies": m.varies} if m.varies else {}),
        **(
            {"memory": {"saved": m.memory.saved, "live": m.memory.live}}
            if m.memory is not None
            else {}
        ),
    }


def _value_to_dict(v: Value) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": v.kind, "path": v.path}
    if v.shape is not None:
        out["shape"] = list(v.shape)
    for key in ("dtype", "device", "text"):
        if (item := getattr(v, key)) is not None:
            out[key] = item
    if v.expr is not None:
        out["expr"] = list(v.expr)
    return out


def _symbolic_to_dict(s: Symbolic) -> dict[str, Any]:
    return {
        "dims": [
            {"name": d.name, "input": d.input, "axis": d.axis, "size": d.size}
            | ({"fixed": True} if d.fixed else {})
            for d in s.dims
        ],
        "constraints": [{"text": c.text, "node": c.node} for c in s.constraints],
    }


def _symbolic_from(data: dict[str, Any]) -> Symbolic:
    return Symbolic(
        dims=tuple(
            Dim(d["name"], d["input"], int(d["axis"]), int(d["size"]), bool(d.get("fixed")))
            for d in data["dims"]
        ),
        constraints=tuple(Constraint(c["text"], c["node"]) for c in data["constraints"]),
    )


def _node_to_dict(n: Node) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": n.id,
        "kind": n.kind,
        "target": n.target,
        "scope": n.scope,
        "module_class": n.module_class,
        "inputs": list(n.inputs),
        "arguments": n.arguments,
        "outputs": [_value_to_dict(v) for v in n.outputs],
        "params": _params_to_dict(n.params),
        "buffers": n.buffers,
        "flops": n.flops,
        "source": _source_to_dict(n.source),
    }
    if n.why:
        out["why"] = list(n.why)
    if n.call is not None:
        out["call"] = {"index": n.call.index, "count": n.call.count}
    if n.compiled:
        out["compiled"] = list(n.compiled)
    if n.breaks:
        out["breaks"] = list(n.breaks)
    return out


def _source_to_dict(s: SourceLocation | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {"file": s.file, "line": s.line, "function": s.function, "code": s.code}


def _source_from(data: dict[str, Any] | None) -> SourceLocation | None:
    if data is None:
        return None
    return SourceLocation(
        file=data["file"], line=int(data["line"]), function=data["function"], code=data["code"]
    )


def _compilation_to_dict(c: Compilation) -> dict[str, Any]:
    return {
        "graphs": [{"number": g.number, "ops": g.ops, "flops": g.flops} for g in c.graphs],
        "breaks": [
            {
                "reason": b.reason,
                "detail": b.detail,
                "after": b.after,
                "source": _source_to_dict(b.source),
                "stack": [_source_to_dict(s) for s in b.stack],
                "node": b.node,
            }
            for b in c.breaks
        ],
        "recompiles": [
            {"guard": r.guard, "reason": r.reason, "source": _source_to_dict(r.source)}
            for r in c.recompiles
        ],
    }


def _compilation_from(data: dict[str, Any]) -> Compilation:
    return Compilation(
        graphs=tuple(
            CompiledGraph(int(g["number"]), int(g["ops"]), int(g["flops"])) for g in data["graphs"]
        ),
        breaks=tuple(
            GraphBreak(
                reason=b["reason"],
                detail=b["detail"],
                after=int(b["after"]),
                source=_source_from(b["source"]),
                stack=tuple(s for s in map(_source_from, b["stack"]) if s is not None),
                node=b["node"],
            )
            for b in data["breaks"]
        ),
        recompiles=tuple(
            Recompile(r["guard"], r["reason"], _source_from(r["source"]))
            for r in data["recompiles"]
        ),
    )


# The JSON keys of a memory estimate, as `fxviz memory --format json` writes them too.
MEMORY_KEYS = {
    "mode": "mode",
    "dtype": "dtype",
    "batch": "batch",
    "master_weights": "master_weights",
    "peak": "peak_bytes",
    "params": "params_bytes",
    "buffers": "buffers_bytes",
    "grads": "grads_bytes",
    "optimizer": "optimizer_bytes",
    "activations": "activations_bytes",
    "scratch": "scratch_bytes",
    "saved": "saved_bytes",
    "peak_at": "peak_at",
    "peak_phase": "peak_phase",
}


def _memory_to_dict(m: MemoryEstimate) -> dict[str, Any]:
    return {key: getattr(m, name) for name, key in MEMORY_KEYS.items()}


def _memory_from(data: dict[str, Any]) -> MemoryEstimate:
    # A graph saved before version 3 has no scratch_bytes: none was counted.
    return MemoryEstimate(**{name: data.get(key, 0) for name, key in MEMORY_KEYS.items()})


@cache
def _validator() -> Any:
    import jsonschema

    schema = json.loads(files("fxviz").joinpath("schema/graph.schema.json").read_text("utf-8"))
    return jsonschema.Draft202012Validator(schema)


def _check_graph(data: object) -> None:
    """Raise SchemaError for anything the shipped schema rejects, naming the field."""
    if not isinstance(data, dict):
        raise SchemaError(f"graph: expected an object, got {type(data).__name__}")
    if "changes" in data and "nodes" not in data:
        raise SchemaError(
            "this is a diff saved by `fxviz diff -o diff.json`, not a graph; draw a diff with "
            "`fxviz diff A B -o diff.svg`, or give a graph saved with `-o graph.json`"
        )
    if "schema_version" not in data:
        raise SchemaError(
            "graph: missing field 'schema_version'; is this a graph saved with -o graph.json?"
        )
    version = data.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool):
        if version > SCHEMA_VERSION:
            raise SchemaError(
                f"this graph was saved with schema version {version}, newer than this fxviz "
                f"reads ({SCHEMA_VERSION}); upgrade fxviz (pip install -U fxviz)"
            )
        if version < 1:
            raise SchemaError(f"schema_version {version} is not a version fxviz ever wrote")
    from jsonschema.exceptions import best_match

    error = best_match(_validator().iter_errors(data))
    if error is not None:
        where = "graph" + "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path
        )
        raise SchemaError(f"{where}: {_clip(error.message)}")


def _clip(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _params_from(data: dict[str, Any]) -> ParamCount:
    return ParamCount(trainable=int(data["trainable"]), frozen=int(data["frozen"]))


def _module_from(data: dict[str, Any]) -> Module:
    return Module(
        path=data["path"],
        class_name=data["class_name"],
        qualname=data["qualname"],
        params=_params_from(data["params"]),
        buffers=int(data["buffers"]),
        extra_repr=data["extra_repr"],
        hparams=data["hparams"],
        repeat=int(data.get("repeat", 1)),
        aliases=tuple(data.get("aliases", ())),
        tied=tuple(sorted(data.get("tied", {}).items())),
        varies=data.get("varies", ""),
        memory=ModuleMemory(int(data["memory"]["saved"]), int(data["memory"]["live"]))
        if "memory" in data
        else None,
    )


def _value_from(data: dict[str, Any]) -> Value:
    shape = data.get("shape")
    return Value(
        kind=data["kind"],
        path=data["path"],
        shape=None if shape is None else tuple(int(d) for d in shape),
        dtype=data.get("dtype"),
        device=data.get("device"),
        text=data.get("text"),
        expr=tuple(data["expr"]) if "expr" in data else None,
    )


def _node_from(data: dict[str, Any]) -> Node:
    source = data["source"]
    return Node(
        id=data["id"],
        kind=data["kind"],
        target=data["target"],
        scope=data["scope"],
        module_class=data["module_class"],
        inputs=tuple(data["inputs"]),
        arguments=data["arguments"],
        outputs=tuple(_value_from(v) for v in data["outputs"]),
        params=_params_from(data["params"]),
        buffers=int(data["buffers"]),
        flops=int(data["flops"]),
        why=tuple(data.get("why", ())),
        call=Call(int(data["call"]["index"]), int(data["call"]["count"]))
        if "call" in data
        else None,
        source=_source_from(source),
        compiled=tuple(int(g) for g in data.get("compiled", ())),
        breaks=tuple(int(b) for b in data.get("breaks", ())),
    )
