"""What `fxviz compile` reports: torch.compile's graphs, graph breaks by reason with their
lines, recompiles, and the share of FLOPs inside compiled graphs — as a terminal table, as JSON
and as Markdown for a pull-request comment. Reads the Graph only (no torch)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from fxviz.errors import SpecError, did_you_mean
from fxviz.graph import Compilation, Graph, GraphBreak, SourceLocation
from fxviz.humanize import format_count

FORMATS = ("table", "json", "md")


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        hint = did_you_mean(fmt, FORMATS) or f"use {', '.join(FORMATS)}"
        raise SpecError(f"--format {fmt!r}: {hint}")
    return fmt


def compilation_of(graph: Graph) -> Compilation:
    if graph.compilation is None:
        raise SpecError(
            f"{graph.name} was not drawn with torch.compile's graphs; "
            "run `fxviz compile MODEL` (or give a graph saved by it)"
        )
    return graph.compilation


def compiled_share(graph: Graph) -> float | None:
    """The fraction of the model's FLOPs inside compiled graphs (None: no FLOPs counted)."""
    if not graph.totals.flops:
        return None
    return min(compilation_of(graph).flops / graph.totals.flops, 1.0)


def by_reason(breaks: tuple[GraphBreak, ...]) -> list[tuple[str, list[GraphBreak]]]:
    """The breaks grouped by reason, the most frequent first (then in the order they ran)."""
    groups: dict[str, list[GraphBreak]] = defaultdict(list)
    for found in breaks:
        groups[found.reason].append(found)
    return sorted(groups.items(), key=lambda item: -len(item[1]))


def _where(source: SourceLocation | None) -> str:
    return f"{source.file}:{source.line}" if source is not None else "(no user line)"


def headline(graph: Graph) -> str:
    """`resnet18: 1 graph, 0 graph breaks · 100% of FLOPs in compiled graphs`."""
    c = compilation_of(graph)
    n, b = len(c.graphs), len(c.breaks)
    text = f"{graph.name}: {n} graph{'s' * (n != 1)}, {b} graph break{'s' * (b != 1)}"
    if c.recompiles:
        r = len(c.recompiles)
        text += f", {r} recompile{'s' * (r != 1)} on a second call"
    share = compiled_share(graph)
    if share is not None:
        text += f" · {_percent(share)} of FLOPs in compiled graphs"
    return text


def _percent(share: float) -> str:
    if 0 < share < 0.001:
        return "<0.1%"
    return f"{100 * share:.1f}%".replace(".0%", "%")


def to_dict(graph: Graph) -> dict[str, Any]:
    """The report as data: `fxviz compile --format json`."""
    c = compilation_of(graph)
    share = compiled_share(graph)
    return {
        "model": graph.name,
        "graphs": len(c.graphs),
        "graph_breaks": len(c.breaks),
        "recompiles": len(c.recompiles),
        "ops_per_graph": [g.ops for g in c.graphs],
        "flops": graph.totals.flops,
        "compiled_flops": c.flops,
        "compiled_flops_share": None if share is None else round(share, 6),
        "breaks": [
            {
                "reason": b.reason,
                "detail": b.detail,
                "after_graph": b.after,
                "file": b.source.file if b.source else None,
                "line": b.source.line if b.source else None,
                "code": b.source.code if b.source else None,
                "node": b.node,
            }
            for b in c.breaks
        ],
        "breaks_by_reason": {reason: len(found) for reason, found in by_reason(c.breaks)},
        "recompile_guards": [
            {
                "guard": r.guard,
                "reason": r.reason,
                "file": r.source.file if r.source else None,
                "line": r.source.line if r.source else None,
            }
            for r in c.recompiles
        ],
    }


def to_json(graph: Graph) -> str:
    return json.dumps(to_dict(graph), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def to_table(graph: Graph) -> str:
    """Plain text for a terminal: the headline, each graph's ops and FLOPs, breaks by reason
    with their lines, recompiles."""
    c = compilation_of(graph)
    total = graph.totals.flops
    lines = [headline(graph), ""]
    lines.append(f"{'graph':>5}  {'ops':>5}  {'FLOPs':>8}  share")
    for g in c.graphs:
        share = _percent(g.flops / total) if total else "–"
        lines.append(f"{g.number:>5}  {g.ops:>5}  {format_count(g.flops):>8}  {share}")
    if c.breaks:
        lines += ["", "graph breaks by reason:"]
        for reason, found in by_reason(c.breaks):
            lines.append(f"  {len(found)} × {reason}")
            for b in found:
                code = f"  {b.source.code}" if b.source and b.source.code else ""
                lines.append(f"      {_where(b.source)}{code}  (after graph {b.after})")
    if c.recompiles:
        lines += ["", "recompiles (a guard failed when called again with the same inputs):"]
        for r in c.recompiles:
            lines.append(f"  {r.guard}  at {_where(r.source)}: {r.reason}")
    return "\n".join(lines) + "\n"


def to_markdown(graph: Graph) -> str:
    """Markdown for a pull-request comment."""
    c = compilation_of(graph)
    total = graph.totals.flops
    lines = [f"### torch.compile: {headline(graph)}", ""]
    lines += ["| graph | ops | FLOPs | share |", "|---:|---:|---:|---:|"]
    for g in c.graphs:
        share = _percent(g.flops / total) if total else "–"
        lines.append(f"| {g.number} | {g.ops} | {format_count(g.flops)} | {share} |")
    if c.breaks:
        lines += ["", "**Graph breaks**", "", "| reason | where | code |", "|---|---|---|"]
        for reason, found in by_reason(c.breaks):
            for b in found:
                code = _cell(b.source.code) if b.source else ""
                lines.append(f"| {_cell(reason)} | `{_where(b.source)}` | `{code}` |")
    if c.recompiles:
        lines += ["", "**Recompiles**", ""]
        for r in c.recompiles:
            lines.append(f"- `{_cell(r.guard)}` at `{_where(r.source)}`: {_cell(r.reason)}")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'").replace("\n", " ")


def render(graph: Graph, fmt: str) -> str:
    return {"table": to_table, "json": to_json, "md": to_markdown}[check_format(fmt)](graph)
