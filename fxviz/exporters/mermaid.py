"""Graph -> Mermaid `flowchart`: the same picture as the DOT (the same boxes, lines and module
clusters as subgraphs, a folded run's `×12` in its subgraph's title), for Markdown that GitHub,
GitLab and notebooks draw themselves.

Ids are generated (`n0`, `c0`), never taken from the model; every label is quoted, and each
character Mermaid's grammar or its HTML labels could read as syntax is written as an entity
code (`#quot;`, `#lt;`), so a module named `"]; A-->B` or `<img onerror=…>` stays text. The
title, in YAML front matter, is one single-quoted line, its `<` `>` written as `‹` `›`.
"""

from __future__ import annotations

import itertools

from fxviz.exporters.dot import (
    BREAK_RED,
    FILL,
    DotOptions,
    Labels,
    cluster_label,
    clustered,
    graph_fill,
    node_lines,
)
from fxviz.graph import Graph, children_of

# One class per kind of box, in the DOT picture's colours.
_CLASSES = {
    "input": f"fill:{FILL['input']},stroke:#333,stroke-width:2px",
    "output": f"fill:{FILL['output']},stroke:#333,stroke-width:2px",
    "module": f"fill:{FILL['module']},stroke:#555",
    "op": f"fill:{FILL['function']},stroke:#999",
    "constant": f"fill:{FILL['constant']},stroke:#555",
}
_CLASS_OF = {"function": "op", "method": "op", "line": "op"}
# Mermaid's entity codes: `#` first, as every other code starts with it.
_ENTITIES = [
    ("#", "#35;"),
    ("&", "#amp;"),
    ('"', "#quot;"),
    ("<", "#lt;"),
    (">", "#gt;"),
    ("`", "#96;"),
]


def to_mermaid(graph: Graph, options: DotOptions | None = None) -> str:
    """Mermaid source for `graph` (already through the views, as DOT is)."""
    options = options or DotOptions()
    labels = Labels.of(graph, options.show)
    ids = {node.id: f"n{i}" for i, node in enumerate(graph.nodes)}
    by_scope = clustered(graph, options.clusters)
    children = children_of(by_scope)
    title = options.title or graph.name
    # Front matter is YAML, where entity codes mean nothing, and Mermaid passes the title
    # through its HTML sanitizer (which would eat `<b>`): angle brackets become ‹ ›.
    heading = " ".join(title.split()).replace("'", "''").replace("<", "‹").replace(">", "›")
    lines = ["---", f"title: '{heading}'", "---", f"flowchart {options.rankdir}"]
    clusters = itertools.count()

    compiled = graph.compilation is not None
    used: set[int] = set()

    def emit(scope: str, indent: str) -> None:
        for node in by_scope.get(scope, ()):
            kind = _CLASS_OF.get(node.kind, node.kind)
            if compiled and node.compiled:  # torch.compile's graph, as the DOT picture fills it
                kind = f"graph{node.compiled[0]}" if len(node.compiled) == 1 else "graphs"
                used.update(node.compiled[:1])
            text = "<br/>".join(_text(line) for line in node_lines(graph, node, labels))
            lines.append(f'{indent}{ids[node.id]}["{text}"]:::{kind}')
        for child in children.get(scope, ()):
            title = cluster_label(graph, child, graph.module(child))
            lines.append(f'{indent}subgraph c{next(clusters)}["{_text(title)}"]')
            lines.append(f"{indent}  direction {options.rankdir}")
            emit(child, indent + "  ")
            lines.append(f"{indent}end")

    emit("", "  ")
    for node in graph.nodes:
        for source in node.inputs:
            if source in ids:
                lines.append(f"  {ids[source]} --> {ids[node.id]}")
    if graph.compilation is not None:
        for node in graph.nodes:
            for k in node.breaks:
                found = graph.compilation.breaks[k]
                where = f" at {found.source.file}:{found.source.line}" if found.source else ""
                text = _text(f"graph break {k + 1}: {found.reason}{where}")
                lines.append(f'  b{k}>"{text}"]:::graphbreak')
                lines.append(f"  b{k} -.- {ids[node.id]}")
    lines += [f"  classDef {name} {style}" for name, style in _CLASSES.items()]
    if graph.compilation is not None:
        lines += [
            f"  classDef graph{n} fill:{graph_fill(n)},stroke:#555"
            if n
            else f"  classDef graph0 fill:#ffffff,stroke:{BREAK_RED},stroke-dasharray:4 3"
            for n in sorted(used)
        ]
        lines.append(f"  classDef graphs fill:{graph_fill(1)},stroke:#555,stroke-dasharray:3 3")
        lines.append(f"  classDef graphbreak fill:#fdecea,stroke:{BREAK_RED},color:#7b241c")
    return "\n".join(lines) + "\n"


def to_markdown(graph: Graph, options: DotOptions | None = None) -> str:
    """The Mermaid source in a fenced block, for a README or a pull request."""
    return f"```mermaid\n{to_mermaid(graph, options)}```\n"


def _text(text: str) -> str:
    """One line of a label as Mermaid text: entity codes for what its grammar reads."""
    for char, code in _ENTITIES:
        text = text.replace(char, code)
    return " ".join(text.split())  # a newline inside a name ends no statement
