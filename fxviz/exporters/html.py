"""Pictures -> one self-contained HTML page to explore them: pan and zoom, search, a details
panel, modules that collapse, light and dark schemes. Builds the page and nothing else.

The layout is Graphviz's, done here in Python: the page holds one SVG per depth level (the
same picture `-o x.svg` writes at each `--depth`), so it opens with no layout work and draws
exactly what every other entry point draws. Clicking a module's cluster collapses it in place.

Nothing in the page is fetched: its script and style are inlined, a Content-Security-Policy
forbids every request and admits only that one script (by its hash), so even a name that got
through as markup could not run. Model text reaches the page two ways, both escaped: inside
the SVG, which Graphviz writes with XML entities, and as JSON whose `<`, `>` and `&` are
written as `\\u003c`-style escapes; the script sets it with `textContent` only.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any, TypeVar

from fxviz.diff import GraphDiff, diff, format_report
from fxviz.errors import LayoutTimeoutError
from fxviz.exporters.diffdot import merged_picture
from fxviz.exporters.dot import (
    FILL,
    STATUS_COLORS,
    DotOptions,
    Labels,
    cluster_label,
    memory_text,
    node_lines,
    to_dot,
)
from fxviz.exporters.render import TIMEOUT_S, Renderer, choose_renderer, render
from fxviz.graph import Graph, Node, ParamCount, Value, lineage
from fxviz.humanize import format_bytes, format_count, format_params, format_shape
from fxviz.sharing import module_words, sharing_words
from fxviz.views import collapse

T = TypeVar("T")

# Dark counterparts of the picture's light fills (matched on Graphviz's `fill` attributes).
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


# A shallower level is a convenience: one whose layout takes longer than this is left out
# (and the page says so); the whole picture, the one `-o x.svg` draws, never is.
LEVEL_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class Picture:
    """A level before its layout: its name, its graph, its DOT, and each node's change kind
    for a diff."""

    name: str
    graph: Graph
    dot: str
    status: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Level:
    """One pre-rendered picture: `name` as the depth control shows it, its SVG, and what the
    details panel and search know of each node and cluster in it."""

    name: str
    svg: str
    data: dict[str, Any]


SvgOf = Callable[[str, float], bytes]


def laid_out(
    pictures: Sequence[Picture], svg_of: SvgOf, renderer: Renderer
) -> tuple[list[Level], list[str]]:
    """Each picture laid out by Graphviz (`svg_of(dot, timeout)`): the levels, and the names
    of those left out because their layout took too long. System `dot` lays out several at
    once, one process each; the embedded one runs one at a time (its WebAssembly instance is
    not thread-safe)."""
    whole = len(pictures) - 1

    def one(index: int) -> Level | None:
        shown = pictures[index]
        try:
            svg = svg_of(shown.dot, TIMEOUT_S if index == whole else LEVEL_TIMEOUT_S)
        except LayoutTimeoutError:
            if index == whole:
                raise
            return None
        return Level(shown.name, inline_svg(svg), picture_data(shown.graph, shown.status))

    system = choose_renderer(renderer, "svg") == "system"
    workers = (os.cpu_count() or 1) if system else 1
    with ThreadPoolExecutor(max_workers=min(len(pictures), workers)) as pool:
        done = list(pool.map(one, range(len(pictures))))
    levels = [lv for lv in done if lv is not None]
    return levels, [p.name for p, lv in zip(pictures, done, strict=True) if lv is None]


def depth_levels(
    drawn_at: Callable[[int | None], T], graph_of: Callable[[T], Graph], limit: int | None
) -> list[tuple[str, T]]:
    """The pictures the depth control offers: depth 1, 2, … while each draws fewer boxes than
    the whole picture (a depth that changes nothing is skipped), then the whole picture, at
    `limit` when one was asked for."""
    whole = drawn_at(limit)
    size = len(graph_of(whole).nodes)
    deepest = max((len(n.scope.split(".")) for n in graph_of(whole).nodes), default=0)
    found: list[tuple[str, T]] = []
    sizes: list[int] = []
    for depth in range(1, limit or deepest + 1):
        drawn = drawn_at(depth)
        boxes = len(graph_of(drawn).nodes)
        if boxes >= size:
            break
        if not sizes or boxes > sizes[-1]:
            found.append((f"depth {depth}", drawn))
            sizes.append(boxes)
    found.append((f"depth {limit}" if limit else "every level", whole))
    return found


def diff_page(
    a: Graph,
    b: Graph,
    result: GraphDiff,
    options: DotOptions | None = None,
    renderer: Renderer = "auto",
) -> str:
    """A diff's page: the merged picture of `diff_to_dot` at each depth, coloured by change,
    with the report listed beside it."""
    options = options or DotOptions()
    Merged = tuple[Graph, dict[str, str], list[str]]

    def drawn_at(depth: int | None) -> Merged:
        if depth is None:
            return merged_picture(a, b, result)
        shallow_a, shallow_b = collapse(a, depth), collapse(b, depth)
        return merged_picture(shallow_a, shallow_b, diff(shallow_a, shallow_b))

    pictures = [
        Picture(name, merged, to_dot(merged, options, status=status, changes=changes), status)
        for name, (merged, status, changes) in depth_levels(drawn_at, lambda m: m[0], None)
    ]
    levels, left_out = laid_out(
        pictures, lambda dot, timeout: render(dot, "svg", renderer, timeout), renderer
    )
    report = [line.rstrip() for line in format_report(result).splitlines() if line.strip()]
    return page(f"{result.a} -> {result.b}", levels, report=report, kind="diff", left_out=left_out)


def page(
    title: str,
    levels: Sequence[Level],
    *,
    report: Sequence[str] = (),
    kind: str = "model",
    left_out: Sequence[str] = (),
) -> str:
    """The whole page: the last level is shown first; `report` (a diff's lines) is listed
    beside the picture; `left_out` names the depths whose layout took too long."""
    script = _asset("explorer.js")
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    policy = (
        "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
        f"script-src 'sha256-{digest}'"
    )
    payload = {
        "kind": kind,
        "title": title,
        "report": list(report),
        "left_out": list(left_out),
        "levels": [{"name": lv.name, **lv.data} for lv in levels],
    }
    templates = "\n".join(
        f'<template data-level="{i}">{lv.svg}</template>' for i, lv in enumerate(levels)
    )
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
        f"{templates}\n"
        f'<script type="application/json" id="fxviz-data">{script_json(payload)}</script>\n'
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


def inline_svg(svg: bytes) -> str:
    """Graphviz's SVG document as an element to put in a page: no XML declaration, doctype
    or comments (which repeat every name)."""
    text = svg.decode()
    start = text.find("<svg")
    return re.sub(r"<!--.*?-->\n?", "", text[start:], flags=re.DOTALL).strip()


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


def picture_data(graph: Graph, status: Mapping[str, str]) -> dict[str, Any]:
    """What the page knows of each node (by id) and each cluster (by module path)."""
    labels = Labels.of(graph, frozenset())
    nodes = {node.id: _node_data(graph, node, labels, status) for node in graph.nodes}
    return {"nodes": nodes, "clusters": _clusters_data(graph)}


def _node_data(
    graph: Graph, node: Node, labels: Labels, status: Mapping[str, str]
) -> dict[str, Any]:
    module = graph.module(node.target) if node.kind == "module" else None
    owner = node.owner
    data: dict[str, Any] = {
        "kind": node.kind,
        "title": node_lines(graph, node, labels)[0],
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
    report = (
        '<aside id="report" aria-label="changes"><h2>Changes</h2><ol id="report-lines"></ol>'
        "</aside>"
        if kind == "diff"
        else ""
    )
    return (
        '<header id="bar">'
        f'<h1 id="title">{html.escape(title)}</h1>'
        '<input id="search" type="search" placeholder="Search module, class or op  ( / )" '
        'aria-label="search" autocomplete="off" spellcheck="false">'
        '<button id="prev" title="previous match (Shift+Enter)">‹</button>'
        '<button id="next" title="next match (Enter)">›</button>'
        '<span id="count" aria-live="polite"></span>'
        '<label id="depth-label">depth <select id="depth" aria-label="depth"></select></label>'
        '<button id="zoom-out" title="zoom out (-)">−</button>'
        '<button id="zoom-in" title="zoom in (+)">+</button>'
        '<button id="fit" title="fit the picture (0)">fit</button>'
        "</header>"
        f'<main id="main">{report}'
        '<div id="viewport" tabindex="0" aria-label="picture: drag to pan, wheel to zoom">'
        '<div id="canvas"></div></div>'
        '<aside id="details" aria-label="details"><p class="hint">Click a box for its details, '
        "a module's frame to collapse it. Wheel or +/− zooms, drag or arrows pan, 0 fits."
        "</p></aside></main>"
    )


def _dark_fills() -> str:
    rules = "".join(f'#canvas svg [fill="{light}"]{{fill:{dark}}}' for light, dark in _DARK.items())
    return (
        "@media (prefers-color-scheme: dark){"
        f"{rules}"
        "#canvas svg text{fill:#e6e6e6}"
        '#canvas svg [stroke="#555555"],#canvas svg [stroke="black"]{stroke:#aab0ba}'
        '#canvas svg [fill="#555555"],#canvas svg [fill="black"]{fill:#aab0ba}'
        "}"
    )


def _asset(name: str) -> str:
    return files("fxviz.exporters").joinpath("explorer", name).read_text(encoding="utf-8")
