"""The typed graph model every later stage reads: plain frozen data, no torch.

`Graph.to_json()` is deterministic (sorted keys, stable ids, no timestamps or absolute paths),
so two saved graphs can be diffed in git. `Graph.from_json()` checks the schema version and the
structure and raises `SchemaError` with the offending field for anything else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from fxviz.errors import SchemaError

SCHEMA_VERSION = 1

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

NodeKind = Literal["input", "module", "function", "method", "constant", "output"]
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


@dataclass(frozen=True, slots=True)
class Module:
    """An entry of the module tree: `path` "" is the root; counts include submodules.

    `extra_repr` is the module's own; `hparams` is it without arguments left at their
    constructor defaults (what a diagram shows)."""

    path: str
    class_name: str
    qualname: str
    params: ParamCount = ParamCount()
    buffers: int = 0
    extra_repr: str = ""
    hparams: str = ""


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
    schema_version: int = SCHEMA_VERSION
    _index: dict[str, Node] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._index.update((node.id, node) for node in self.nodes)

    def node(self, node_id: str) -> Node:
        return self._index[node_id]

    def module(self, path: str) -> Module | None:
        return next((m for m in self.modules if m.path == path), None)

    @property
    def inputs(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.kind == "input")

    @property
    def outputs(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.kind == "output")

    def to_dict(self) -> dict[str, Any]:
        return {
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
        obj = _Reader(data, "graph")
        version = obj.count("schema_version")
        if version > SCHEMA_VERSION:
            raise SchemaError(
                f"this graph was saved with schema version {version}, newer than this fxviz "
                f"reads ({SCHEMA_VERSION}); upgrade fxviz (pip install -U fxviz)"
            )
        if version < 1:
            raise SchemaError(f"schema_version {version} is not a version fxviz ever wrote")
        graph = cls(
            name=obj.text("name"),
            source=obj.text("source"),
            tracer=obj.text("tracer"),
            device=obj.text("device"),
            notes=tuple(obj.texts("notes")),
            totals=_totals_from(obj.obj("totals")),
            modules=tuple(_module_from(m) for m in obj.objs("modules")),
            nodes=tuple(_node_from(n) for n in obj.objs("nodes")),
            schema_version=version,
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

    def save(self, *paths: str | Path, **options: Any) -> None:
        """Write the graph to each path, the format taken from the suffix (.svg, .json, .dot, …)."""
        from fxviz.exporters import save

        save(self, [Path(p) for p in paths], **options)

    def to_dot(self, **options: Any) -> str:
        from fxviz.exporters.dot import DotOptions, to_dot

        return to_dot(self, DotOptions(**options))


def unique_id(base: str, taken: set[str]) -> str:
    """`base`, or `base_1`, `base_2`, … : the first not in `taken`, which it joins."""
    name, n = base, 0
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name


def natural_key(path: str) -> list[tuple[int, int | str]]:
    """Sort key for module paths: layer1.2 before layer1.10, numeric parts as numbers."""
    return [(0, int(p)) if p.isdigit() else (1, p) for p in path.split(".")]


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
    }


def _value_to_dict(v: Value) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": v.kind, "path": v.path}
    if v.shape is not None:
        out["shape"] = list(v.shape)
    for key in ("dtype", "device", "text"):
        if (item := getattr(v, key)) is not None:
            out[key] = item
    return out


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
        "source": None,
    }
    if n.source is not None:
        s = n.source
        out["source"] = {"file": s.file, "line": s.line, "function": s.function, "code": s.code}
    return out


class _Reader:
    """Typed access to one JSON object; every failure names the field's location."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise SchemaError(f"{where}: expected an object, got {type(data).__name__}")
        self.data: dict[str, object] = data
        self.where = where

    def _get(self, key: str, types: type | tuple[type, ...], default: object = ...) -> Any:
        if key not in self.data:
            if default is not ...:
                return default
            raise SchemaError(f"{self.where}: missing field {key!r}")
        value = self.data[key]
        # bool is an int subclass: never let `true` pass as a count.
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in _tuple(types)):
            raise SchemaError(f"{self.where}.{key}: unexpected {type(value).__name__}")
        return value

    def text(self, key: str) -> str:
        result: str = self._get(key, str)
        return result

    def opt_text(self, key: str) -> str | None:
        value = self._get(key, (str, type(None)), None)
        return value if isinstance(value, str) else None

    def count(self, key: str) -> int:
        value: int = self._get(key, int)
        if value < 0 and key != "line":
            raise SchemaError(f"{self.where}.{key}: negative value {value}")
        return value

    def texts(self, key: str) -> list[str]:
        items: list[object] = self._get(key, list)
        if not all(isinstance(item, str) for item in items):
            raise SchemaError(f"{self.where}.{key}: expected a list of strings")
        return [str(item) for item in items]

    def obj(self, key: str) -> _Reader:
        return _Reader(self._get(key, dict), f"{self.where}.{key}")

    def opt_obj(self, key: str) -> _Reader | None:
        value = self._get(key, (dict, type(None)), None)
        return None if value is None else _Reader(value, f"{self.where}.{key}")

    def objs(self, key: str) -> list[_Reader]:
        items: list[object] = self._get(key, list)
        return [_Reader(item, f"{self.where}.{key}[{i}]") for i, item in enumerate(items)]

    def literal(self, key: str, allowed: tuple[str, ...]) -> Any:
        value = self.text(key)
        if value not in allowed:
            raise SchemaError(f"{self.where}.{key}: {value!r} is not one of {', '.join(allowed)}")
        return value


def _tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _params_from(obj: _Reader) -> ParamCount:
    return ParamCount(trainable=obj.count("trainable"), frozen=obj.count("frozen"))


def _totals_from(obj: _Reader) -> Totals:
    return Totals(
        params=_params_from(obj.obj("params")),
        buffers=obj.count("buffers"),
        flops=obj.count("flops"),
    )


def _module_from(obj: _Reader) -> Module:
    return Module(
        path=obj.text("path"),
        class_name=obj.text("class_name"),
        qualname=obj.text("qualname"),
        params=_params_from(obj.obj("params")),
        buffers=obj.count("buffers"),
        extra_repr=obj.text("extra_repr"),
        hparams=obj.text("hparams"),
    )


def _value_from(obj: _Reader) -> Value:
    shape: tuple[int, ...] | None = None
    if "shape" in obj.data:
        raw = obj.data["shape"]
        if not isinstance(raw, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in raw
        ):
            raise SchemaError(f"{obj.where}.shape: expected a list of non-negative integers")
        shape = tuple(raw)
    return Value(
        kind=obj.literal("kind", get_args(ValueKind)),
        path=obj.text("path"),
        shape=shape,
        dtype=obj.opt_text("dtype"),
        device=obj.opt_text("device"),
        text=obj.opt_text("text"),
    )


def _node_from(obj: _Reader) -> Node:
    source = obj.opt_obj("source")
    return Node(
        id=obj.text("id"),
        kind=obj.literal("kind", get_args(NodeKind)),
        target=obj.text("target"),
        scope=obj.text("scope"),
        module_class=obj.opt_text("module_class"),
        inputs=tuple(obj.texts("inputs")),
        arguments=obj.text("arguments"),
        outputs=tuple(_value_from(v) for v in obj.objs("outputs")),
        params=_params_from(obj.obj("params")),
        buffers=obj.count("buffers"),
        flops=obj.count("flops"),
        source=None
        if source is None
        else SourceLocation(
            file=source.text("file"),
            line=source.count("line"),
            function=source.text("function"),
            code=source.text("code"),
        ),
    )
