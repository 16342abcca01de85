"""The terminal report: one summary line, the grouped causes, the totals; `every` lists each
change, consequences included."""

from __future__ import annotations

from fxviz.diff.changes import GraphDiff

SIGNS = {
    "input": "*",
    "added": "+",
    "removed": "-",
    "renamed": "~",
    "renumbered": "~",
    "changed": "*",
    "rewired": ">",
    "shape": "*",
}


def format_report(d: GraphDiff, every: bool = False) -> str:
    if d.identical:
        return f"{d.a} and {d.b} are identical\n"
    counts = [(kind, n) for kind, n in d.counts().items() if kind != "shape"]
    follows = sum(1 for c in d.changes if c.is_consequence)
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts))
    if follows:
        summary += f"{', ' if summary else ''}{follows} output shape{'s' if follows > 1 else ''}"
        summary += " changed as a result"
    lines = [f"{d.a} -> {d.b}: {summary}"]
    for g in d.groups:
        line = f"  {SIGNS[g.kind]} {g.what}" + (f": {g.where}" if g.where else "")
        extra = [f"{g.params_delta:+,} params"] if g.params_delta else []
        if g.consequences:
            n = g.consequences
            extra.append(f"{n} shape{'s follow' if n > 1 else ' follows'}")
        lines.append(line + (f" [{'; '.join(extra)}]" if extra else ""))
    if every:
        lines.append("every change:")
        for i, c in enumerate(d.changes):
            where = (
                c.path
                if c.path_a in ("", c.path_b) or not c.path_b
                else f"{c.path_a} -> {c.path_b}"
            )
            extra = [f"{c.params_delta:+,} params"] if c.params_delta else []
            extra += list(c.details)
            if c.cause is not None:
                extra.append(f"follows #{c.cause} {d.changes[c.cause].path}")
            lines.append(
                f"  #{i} {SIGNS[c.kind]} {c.kind:<10} {where} ({c.class_name})"
                + "".join(f"; {x}" for x in extra)
            )
    lines.append(f"params: {d.params_a:,} -> {d.params_b:,} ({d.params_b - d.params_a:+,})")
    lines.append(f"FLOPs: {d.flops_a:,} -> {d.flops_b:,} ({d.flops_b - d.flops_a:+,})")
    if follows and not every:
        lines.append(
            f"first output that changes shape: {d.first_divergence} (--all lists every change)"
        )
    return "\n".join(lines) + "\n"
