"""`fxviz summary`: the module tree as table rows, with shapes, parameters and FLOPs.

Rows come from the graph alone (no torch): a module's output shape is its first call's output
(for containers, the last node its forward ran); its FLOPs are the sum over every node inside
it, so the root row's FLOPs equal the graph's total.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

from fxviz.graph import Graph, Module, Node, ParamCount
from fxviz.humanize import format_shape
from fxviz.sharing import module_words


@dataclass(frozen=True, slots=True)
class Row:
    path: str
    depth: int
    class_name: str
    input: str
    output: str
    params: ParamCount
    flops: int
    shared: str = ""
    # A module's share of the graph's memory estimate (bytes), where it has one.
    saved: int | None = None
    live: int | None = None


FORMATS = ("table", "csv", "markdown", "json")
COLUMNS = ("module", "type", "input", "output", "params", "trainable", "FLOPs")


def summary_rows(graph: Graph, depth: int | None = None) -> list[Row]:
    """One row per module down to `depth` path components (all when None), in tree order."""
    rows = []
    by_id = {n.id: n for n in graph.nodes}
    for module in graph.modules:
        level = module.path.count(".") + 1 if module.path else 0
        if depth is not None and level > depth:
            continue
        inside = [
            n
            for n in graph.nodes
            if n.kind not in ("input", "output") and graph.owns(n, module.path)
        ]
        calls = [n for n in inside if n.kind == "module" and n.target == module.path]
        last = calls[0] if calls else (inside[-1] if inside else None)
        if not module.path:
            last = next((n for n in graph.nodes if n.kind == "output"), last)
        shapes = [
            format_shape(v.shape or (), v.expr)
            for v in (last.outputs if last else ())
            if v.is_tensor
        ]
        rows.append(
            Row(
                path=module.path,
                depth=level,
                class_name=module.class_name,
                input=_shapes(_entering(graph, inside, calls), by_id),
                output=", ".join(shapes[:3]) + (" …" if len(shapes) > 3 else ""),
                params=module.params,
                flops=sum(n.flops for n in inside),
                shared="; ".join(_shared(graph, module, calls)),
                saved=module.memory.saved if module.memory else None,
                live=module.memory.live if module.memory else None,
            )
        )
    return rows


def _shared(graph: Graph, module: Module, calls: list[Node]) -> list[str]:
    """`called 2×; also head_proj`, `weight tied to emb.weight` (sharing.py's words)."""
    words = module_words(module)
    if len(calls) > 1 and (module.params.total or module.buffers or words):
        words.insert(0, f"called {len(calls)}×")
    return words


def _entering(graph: Graph, inside: list[Node], calls: list[Node]) -> list[str]:
    """The ids of the values a module's first call reads from outside it."""
    if calls:
        return list(calls[0].inputs)
    if not inside:
        return [n.id for n in graph.nodes if n.kind == "input"]
    own = {n.id for n in inside}
    first = inside[0].scope
    return list(
        dict.fromkeys(i for n in inside if n.scope == first for i in n.inputs if i not in own)
    )


def _shapes(ids: list[str], by_id: dict[str, Node]) -> str:
    shapes = [
        format_shape(v.shape or (), v.expr)
        for i in ids
        if i in by_id and by_id[i].kind != "constant"
        for v in by_id[i].outputs[:1]
        if v.is_tensor
    ]
    return ", ".join(shapes[:3]) + (" …" if len(shapes) > 3 else "")


def columns(rows: list[Row]) -> tuple[str, ...]:
    """The table's columns: `saved` and `live` bytes with a memory estimate; `shared` too
    when a module is called twice, held under two names or ties a parameter to another's."""
    memory = ("saved", "live") if any(row.saved is not None for row in rows) else ()
    shared = ("shared",) if any(row.shared for row in rows) else ()
    return (*COLUMNS, *memory, *shared)


def render_rows(graph: Graph, rows: list[Row], fmt: str) -> str:
    """`rows` as CSV, a Markdown table or JSON: every name whole, whatever the terminal."""
    shown = columns(rows)
    records = [
        {
            "module": row.path or "(total)",
            "type": row.class_name,
            "input": row.input,
            "output": row.output,
            "params": row.params.total,
            "trainable": row.params.trainable,
            "FLOPs": row.flops,
            **({"saved": row.saved or 0, "live": row.live or 0} if "saved" in shown else {}),
            **({"shared": row.shared} if "shared" in shown else {}),
        }
        for row in rows
    ]
    if fmt == "json":
        return (
            json.dumps(
                {
                    "model": graph.name,
                    "tracer": graph.tracer,
                    "device": graph.device,
                    "rows": records,
                },
                indent=2,
                ensure_ascii=False,
            )
            + "\n"
        )
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=shown, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        return out.getvalue()
    extra = "---:|" * ("saved" in shown) * 2 + "---|" * ("shared" in shown)
    lines = ["| " + " | ".join(shown) + " |", "|" + "---|" * 3 + "---|" + "---:|" * 3 + extra]
    for record in records:
        cells = [str(record[c]).replace("|", "\\|") for c in shown]
        cells[4:7] = [f"{int(c):,}" for c in cells[4:7]]
        if "saved" in shown:
            cells[7:9] = [f"{int(c):,}" for c in cells[7:9]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
