"""Pictures -> one self-contained HTML page to explore them: open and close any module in
place, search every level, a details panel, a minimap, deep links, light and dark schemes,
the current view saved as SVG or PNG. Builds the page and nothing else.

The page holds the picture as data, not as a drawing: every box (its label lines and style,
the ones `-o x.svg` draws), every module's frame and every edge, as compact JSON, and one
copy of the script. The script lays out only what is open (layout.js, a layered layout of
fxviz's own, in a web worker), one module at a time, so opening one block of an 8,000-box
model costs that block and its ancestors, never the whole picture.

Nothing in the page is fetched: its scripts and style are inlined, a Content-Security-Policy
forbids every request and admits only those two scripts (by their hashes) and a worker made
from one of them, so even a name that got through as markup could not run. Model text
reaches the page as JSON whose `<`, `>` and `&` are written as `\\u003c`-style escapes; the
script sets it with `textContent` only.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

from fxviz.diff import GraphDiff, format_report
from fxviz.exporters.diffdot import merged_picture
from fxviz.exporters.dot import (
    FILL,
    STATUS_COLORS,
    DotOptions,
    Labels,
    cluster_heading,
    cluster_label,
    memory_text,
    node_lines,
    node_style,
)
from fxviz.graph import Graph, Node, ParamCount, Value, children_of, lineage
from fxviz.humanize import format_bytes, format_count, format_params, format_shape
from fxviz.sharing import module_words, sharing_words

# Dark counterparts of the picture's light fills.
_DARK = {
    "white": "#16181d",
    FILL["input"]: "#1f4a33",
    FILL["output"]: "#5a3a1c",
    FILL["module"]: "#1f3a5a",
    FILL["function"]: "#33363d",
    FILL["constant"]: "#4d4520",
    "#e4e4e4": "#3a3a3a",  # frozen
    STATUS_COLORS["added"]: "#2d5a27",
    STATUS_COLORS["removed"]: "#6b2a2a",
    STATUS_COLORS["renamed"]: "#2b3f6e",
    STATUS_COLORS["changed"]: "#6b4f16",
    STATUS_COLORS["rewired"]: "#4f2f66",
}


def diff_page(a: Graph, b: Graph, result: GraphDiff, options: DotOptions | None = None) -> str:
    """A diff's page: the merged picture of `diff_to_dot` (both models in one, each box
    coloured by its change), so that opening a block opens it on both sides at once; the
    report listed beside it."""
    merged, status, _ = merged_picture(a, b, result)
    report = [line.rstrip() for line in format_report(result).splitlines() if line.strip()]
    title = f"{result.a} -> {result.b}"
    return page(merged, options, title=title, status=status, report=report, kind="diff")


def page(
    graph: Graph,
    options: DotOptions | None = None,
    *,
    title: str = "",
    status: Mapping[str, str] | None = None,
    report: Sequence[str] = (),
    kind: str = "model",
) -> str:
    """The whole page for a drawn picture `graph`: `status` colours boxes by a diff's change
    kind, `report` (a diff's lines) is listed beside the picture."""
    options = options or DotOptions()
    title = title or options.title or graph.name
    layout = _asset("layout.js")
    script = _asset("explorer.js")
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
        for s in (layout, script)
    )
    policy = (
        "default-src 'none'; img-src data: blob:; style-src 'unsafe-inline'; "
        f"script-src {hashes}; worker-src blob:"
    )
    payload: dict[str, Any] = {
        "kind": kind,
        "title": title,
        "report": list(report),
        "dark": _DARK,
        "rankdir": options.rankdir,
    }
    labels = Labels.of(graph, options.show, options.color)
    payload.update(picture_data(graph, status or {}, labels, options.clusters))
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="color-scheme" content="light dark">\n'
        f"<title>{html.escape(title)}</title>\n"
        f"<style>{_asset('explorer.css')}{_dark_fills()}</style>\n"
        "</head><body>\n"
        f"{_chrome(title, kind)}\n"
        f'<script type="application/json" id="fxviz-data">{script_json(payload)}</script>\n'
        f'<script id="fxviz-layout">{layout}</script>\n'
        f"<script>{script}</script>\n"
        "</body></html>\n"
    )


def iframe(page_text: str, height: int = 640) -> str:
    """The page inside a sandboxed iframe, for a notebook: its script and styles stay apart
    from the notebook's and from other outputs'."""
    return (
        f'<iframe srcdoc="{html.escape(page_text, quote=True)}" sandbox="allow-scripts" '
        f'style="width:100%;height:{height}px;border:1px solid #ccc;border-radius:4px" '
        'title="fxviz explorer"></iframe>'
    )


def script_json(value: object) -> str:
    """JSON that is safe inside a <script> element: `</script>` or `<!--` in a name cannot end
    or change it."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def picture_data(
    graph: Graph, status: Mapping[str, str], labels: Labels, clusters: bool = True
) -> dict[str, Any]:
    """What the page draws and knows: `nodes` (each box's label lines and style, what the
    details panel shows, its frame's index `c`), `clusters` (each module frame: parent `p`
    before its children, its first box `o`, the lines of its box when closed), and `edges`
    ([tail, head] indices)."""
    index = {node.id: i for i, node in enumerate(graph.nodes)}
    scoped = [
        node.scope if clusters and node.kind not in ("input", "output") else ""
        for node in graph.nodes
    ]
    first: dict[str, int] = {}
    for i, scope in enumerate(scoped):
        for path in lineage(scope):
            first.setdefault(path, i)
    tree = children_of(p for p in scoped if p)
    paths = [p for kids in tree.values() for p in kids]
    paths.sort(key=lambda p: (p.count("."), first.get(p, len(index))))
    where = {path: k for k, path in enumerate(paths)}
    summaries = _clusters_data(graph)
    changes: dict[str, dict[str, int]] = {}
    for node in graph.nodes:
        if node.id in status:
            for path in lineage(node.scope):
                kinds = changes.setdefault(path, {})
                kinds[status[node.id]] = kinds.get(status[node.id], 0) + 1
    nodes = []
    for node, scope in zip(graph.nodes, scoped, strict=True):
        lines = node_lines(graph, node, labels)
        data = _node_data(graph, node, lines[0], status)
        data.update(
            id=node.id,
            c=where[scope] if scope else -1,
            lines=lines,
            style=_style(node_style(graph, node, status, labels)),
        )
        nodes.append(data)
    frames = []
    for path in paths:
        data = summaries.get(path) or _cluster_data(graph, path, _Inside())
        head, frozen = cluster_heading(graph, path, labels)
        data.update(
            p=where.get(path.rpartition(".")[0], -1),
            o=first.get(path, 0),
            head=head,
            frozen=frozen,
            lines=_closed_lines(head, data, changes.get(path, {})),
        )
        if path in changes:
            data["changes"] = changes[path]
        frames.append(data)
    edges = sorted({(index[s], index[n.id]) for n in graph.nodes for s in n.inputs if s in index})
    return {"nodes": nodes, "clusters": frames, "edges": [list(e) for e in edges]}


def _style(style: Mapping[str, str]) -> dict[str, Any]:
    """Graphviz's attributes as the page's script draws them."""
    shape = style.get("style", "rounded,filled")
    return {
        "fill": style.get("fillcolor", "white").split(":")[0],
        "line": style.get("color", "#555555"),
        "pen": float(style.get("penwidth", "1")),
        "dash": "dashed" in shape,
        "bold": "bold" in shape,
        "round": "rounded" in shape or "striped" in shape,
    }


def _closed_lines(head: str, data: Mapping[str, Any], changes: Mapping[str, int]) -> list[str]:
    """What a closed module's box says: its heading, what it holds, what goes in and out, and
    in a diff what changed inside."""
    numbers = [f"{data['nodes']} boxes"] if data["nodes"] != 1 else ["1 box"]
    if sum(data["params"]):
        numbers.append(f"{format_params(sum(data['params']))} params")
    if data["flops"]:
        numbers.append(f"{data['flops']} FLOPs")
    lines = [head, " · ".join(numbers)]
    if data["in"] or data["out"]:
        text = f"{' | '.join(data['in'][:2]) or '–'} → {' | '.join(data['out'][:2]) or '–'}"
        lines.append(text if len(text) <= 72 else text[:71] + "…")
    if changes:  # `7 boxes added, 1 changed inside`
        kinds = [f"{n} {kind}" for kind, n in sorted(changes.items())]
        first = next(iter(sorted(changes.items())))[1]
        kinds[0] = f"{first} box{'es' if first != 1 else ''} {kinds[0].split(' ', 1)[1]}"
        lines.append(", ".join(kinds) + " inside")
    return lines


def _node_data(graph: Graph, node: Node, title: str, status: Mapping[str, str]) -> dict[str, Any]:
    module = graph.module(node.target) if node.kind == "module" else None
    owner = node.owner
    data: dict[str, Any] = {
        "kind": node.kind,
        "title": title,
        "target": node.target,
        "path": node.target if node.kind == "module" else owner,
        "scope": node.scope if node.kind not in ("input", "output") else "",
        "class": (module.class_name if module else node.module_class) or "",
        "inputs": [_input_text(graph, source) for source in node.inputs],
        "outputs": [_value(v) for v in node.outputs],
        "params": [node.params.trainable, node.params.frozen],
        "buffers": node.buffers,
        "flops": format_count(node.flops) if node.flops else "",
        "memory": _memory(node.outputs),
    }
    if held := memory_text(graph, module):  # its share of the graph's memory estimate
        data["held"] = held
    if module is not None:
        data["hparams"] = module.hparams
        data["repeat"] = module.repeat
        data["children"] = _children(graph, node.target)
        if shared := sharing_words(graph, node):
            data["shared"] = shared
    elif node.arguments:
        data["arguments"] = node.arguments
    if node.source is not None:
        data["source"] = f"{node.source.file}:{node.source.line}"
        data["code"] = node.source.code.strip()
    if node.why:
        data["why"] = list(node.why)
    if node.id in status:
        data["status"] = status[node.id]
    return data


@dataclass(slots=True)
class _Inside:
    """What a cluster holds, gathered in one pass over the picture."""

    nodes: int = 0
    flops: int = 0
    params: ParamCount = field(default_factory=ParamCount)
    into: dict[str, None] = field(default_factory=dict)
    out_of: dict[str, None] = field(default_factory=dict)


def _clusters_data(graph: Graph) -> dict[str, dict[str, Any]]:
    """Each cluster's summary for its collapsed block: one pass over nodes and edges, each
    charged to the clusters it is inside (its scope's lineage), so the work grows with the
    picture times its depth, never with clusters × nodes."""
    around: dict[str, frozenset[str]] = {}
    found: dict[str, _Inside] = {}
    for node in graph.nodes:
        drawn_in = node.kind not in ("input", "output")
        around[node.id] = frozenset(lineage(node.scope)) if drawn_in else frozenset()
        for path in around[node.id]:
            inside = found.setdefault(path, _Inside())
            inside.nodes += 1
            inside.flops += node.flops
            inside.params += node.params
    for node in graph.nodes:
        for source in node.inputs:
            if source not in around:  # an edge from outside this graph (a merged diff)
                continue
            shape = _input_text(graph, source)["shape"]
            for path in around[node.id] - around[source]:
                found[path].into[shape] = None
            for path in around[source] - around[node.id]:
                found[path].out_of[shape] = None
    return {path: _cluster_data(graph, path, found[path]) for path in sorted(found)}


def _cluster_data(graph: Graph, path: str, inside: _Inside) -> dict[str, Any]:
    module = graph.module(path)
    params = module.params if module else inside.params
    return {
        "title": cluster_label(graph, path, module),
        "path": path,
        "class": module.class_name if module else "",
        "hparams": module.hparams if module else "",
        "repeat": module.repeat if module else 1,
        "shared": module_words(module) if module else [],
        "params": [params.trainable, params.frozen],
        "buffers": module.buffers if module else 0,
        "flops": format_count(inside.flops) if inside.flops else "",
        "nodes": inside.nodes,
        "in": [s for s in inside.into if s],
        "out": [s for s in inside.out_of if s],
        "children": _children(graph, path),
    }


def _children(graph: Graph, path: str) -> list[list[str]]:
    found = []
    for child in graph.children(path):
        module = graph.module(child)
        if module is not None:
            text = module.class_name + (f" ×{module.repeat}" if module.repeat > 1 else "")
            found.append([child, text, format_params(module.params.total)])
    return found


def _input_text(graph: Graph, source: str) -> dict[str, str]:
    try:
        node = graph.node(source)
    except KeyError:  # an edge from outside this graph (a merged diff drawing)
        return {"from": source, "shape": ""}
    tensors = [v for v in node.outputs if v.is_tensor]
    shape = ", ".join(_value(v)["shape"] for v in tensors[:4])
    return {"from": node.target if node.kind == "module" else source, "shape": shape}


def _value(value: Value) -> dict[str, str]:
    if value.is_tensor:
        shape = format_shape(value.shape or (), value.expr)
        return {"path": value.path, "shape": shape, "dtype": value.dtype or ""}
    return {"path": value.path, "shape": value.text or value.kind, "dtype": ""}


def _memory(values: Sequence[Value]) -> str:
    total = sum(v.nbytes for v in values)
    return format_bytes(total) if total else ""


def _chrome(title: str, kind: str) -> str:
    """The page's controls around the picture; the script fills the panels."""
    key = "".join(f'<span class="status {k}">{k}</span> ' for k in STATUS_COLORS)
    report = (
        '<aside id="report" aria-label="changes"><h2>Changes</h2>'
        f'<p id="legend">{key}<span class="status inside">changed inside</span></p>'
        '<ol id="report-lines"></ol></aside>'
        if kind == "diff"
        else ""
    )
    return (
        '<header id="bar">'
        f'<h1 id="title">{html.escape(title)}</h1>'
        '<input id="search" type="search" placeholder="Search every module, class or op  ( / )" '
        'aria-label="search" autocomplete="off" spellcheck="false">'
        '<button id="prev" title="previous match (Shift+Enter)">‹</button>'
        '<button id="next" title="next match (Enter)">›</button>'
        '<span id="count" aria-live="polite"></span>'
        '<label id="depth-label"><select id="depth" aria-label="open modules"></select></label>'
        '<button id="zoom-out" title="zoom out (-)">−</button>'
        '<button id="zoom-in" title="zoom in (+)">+</button>'
        '<button id="fit" title="fit the picture (0)">fit</button>'
        '<button id="save-svg" title="save what is open now as SVG">SVG</button>'
        '<button id="save-png" title="save what is open now as PNG">PNG</button>'
        '<button id="print" title="print what is open now">print</button>'
        '<button id="theme" title="dark or light">◐</button>'
        "</header>"
        f'<main id="main">{report}'
        '<div id="viewport" tabindex="0" aria-label="picture: drag to pan, wheel to zoom">'
        '<div id="canvas"></div>'
        '<div id="minimap-box" aria-label="minimap: click or drag to move">'
        '<canvas id="minimap"></canvas><div id="lens"></div></div></div>'
        '<aside id="details" aria-label="details"><p class="hint">Click a box for its details; '
        "a closed module (a stacked box) opens in place, an open one's heading closes it. "
        "Wheel or +/− zooms, drag or arrows pan, 0 fits. j/k step through the boxes, Enter "
        "opens the selected module, Backspace closes the one around it. The address bar keeps "
        "a link to what is selected.</p></aside></main>"
    )


def _dark_fills() -> str:
    rules = "".join(
        f'[data-theme="dark"] #canvas svg [fill="{light}"]{{fill:{dark}}}'
        for light, dark in _DARK.items()
    )
    return (
        f"{rules}"
        '[data-theme="dark"] #canvas svg text{fill:#e6e6e6}'
        '[data-theme="dark"] #canvas svg g.edges path{stroke:#aab0ba}'
        '[data-theme="dark"] #canvas svg .tip{fill:#aab0ba}'
        '[data-theme="dark"] #canvas svg [stroke="#5b7390"]{stroke:#8fb0d6}'
    )


def _asset(name: str) -> str:
    return files("fxviz.exporters").joinpath("explorer", name).read_text(encoding="utf-8")
