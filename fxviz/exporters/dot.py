"""Graph -> DOT source: module clusters, one labelled box per node. Builds DOT and nothing else.

Labels are plain multi-line labels, not HTML-like ones: the embedded (WebAssembly) Graphviz is
built without HTML-label support and would draw bare node ids. `_label` is the one place text is
escaped, so names containing `<>{}|"&\\` or unicode render the same in both renderers.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, cast

import graphviz

from fxviz.errors import SpecError, did_you_mean
from fxviz.graph import (
    GROUP,
    LOOP,
    Compilation,
    Graph,
    MemoryEstimate,
    Module,
    Node,
    Symbolic,
    Value,
    children_of,
    lineage,
)
from fxviz.humanize import format_bytes, format_count, format_params, format_shape
from fxviz.sharing import sharing_words

FONT = "Helvetica,Arial,sans-serif"
MAX_DETAIL = 64
# Above this many boxes, Graphviz is asked for a quicker layout (see to_dot).
BIG = 1500

# Each kind of box's fill colour (Mermaid's classes use them too).
FILL = {
    "input": "#d4efdf",
    "output": "#fde2c8",
    "module": "#dbe8f6",
    "function": "#f3f3f3",
    "method": "#f3f3f3",
    "line": "#f3f3f3",
    "constant": "#fbf3c8",
}
_FROZEN_FILL = "#e4e4e4"


# What a box can show under its name (`--show`); JSON always holds all of it.
ANNOTATIONS = {
    "shapes": "output shapes (and dtypes other than float32)",
    "args": "a module's hyper-parameters, a function's constant arguments",
    "params": "parameters, with how many are frozen",
    "buffers": "buffer elements",
    "flops": "FLOPs from torch.utils.flop_counter",
    "memory": "a module's bytes saved for backward and live while it runs (with a memory "
    "estimate: fxviz memory), else the bytes of the output tensors",
    "source": "file:line of the code that made it",
    "why": "the arithmetic behind each shape and parameter count (fxviz explain)",
}
DEFAULT_SHOW = frozenset({"shapes", "args"})


def parse_show(text: str, option: str = "--show") -> frozenset[str]:
    """`params,flops` adds to the defaults (shapes, args), `-args` hides one, `all` or
    `none` set the whole list: `--show none,params` shows parameter counts only."""
    shown = set(DEFAULT_SHOW)
    for raw in text.split(","):
        item = raw.strip().lower()
        name = item.removeprefix("-")
        if item == "all":
            shown = set(ANNOTATIONS)
        elif item == "none":
            shown = set()
        elif name in ANNOTATIONS:
            (shown.discard if item.startswith("-") else shown.add)(name)
        elif item:
            known = ", ".join([*ANNOTATIONS, "all", "none"])
            hint = did_you_mean(name, ANNOTATIONS)
            raise SpecError(
                f"{option} {text!r}: unknown annotation {raw.strip()!r}; "
                f"{hint + ' ' if hint else ''}use {known}"
            )
    return frozenset(shown)


@dataclass(frozen=True, slots=True)
class DotOptions:
    rankdir: Literal["TB", "LR"] = "TB"
    clusters: bool = True
    show: frozenset[str] = DEFAULT_SHOW
    title: str = ""
    note: str = ""  # one line under the heading: how the picture was drawn (to fit a screen)
    color: str = ""  # "memory": boxes filled by the bytes they keep (a graph with an estimate)


# Diff statuses (fxviz.diff change kinds), drawn over the node's usual colour.
STATUS_COLORS = {
    "added": "#b7e4b0",
    "removed": "#f4b6b6",
    "renamed": "#c9d7f8",
    "changed": "#fbd38d",
    "rewired": "#e2c6f2",
}


def to_dot(
    graph: Graph,
    options: DotOptions | None = None,
    status: dict[str, str] | None = None,
    changes: Sequence[str] | None = None,
) -> str:
    """DOT for `graph`; `status` colours nodes by diff change kind, and `changes` (a diff's
    report lines) replaces the usual key with one that explains the colours and lists them."""
    options = options or DotOptions()
    status = status or {}
    dot = graphviz.Digraph(name=graphviz.escape(graph.name))
    dot.attr(
        rankdir=options.rankdir,
        label=_label([options.title or graph.name, _subtitle(graph), options.note]),
        fontsize="16",
        labelloc="t",
        fontname=FONT,
        nodesep="0.25",
        ranksep="0.35",
    )
    if len(graph.nodes) > BIG:
        # Graphviz's network simplex runs over every virtual node of every long edge (a Llama
        # of 80 layers drawn op by op: 4,700 boxes, 580,000 virtual nodes) and took over 5
        # minutes; a fifth of its default iterations lays it out in 25 s, nearly as tidy.
        dot.attr(nslimit="0.2", nslimit1="0.2")
    dot.attr(
        "node", shape="box", style="rounded,filled", fontname=FONT, fontsize="11", margin="0.1,0.04"
    )
    dot.attr("edge", color="#555555", arrowsize="0.7")
    by_scope = clustered(graph, options.clusters)
    labels = Labels.of(graph, options.show, options.color)
    _emit_scope(dot, graph, "", by_scope, children_of(by_scope), status, labels)
    if changes is not None:
        with dot.subgraph(name="cluster_legend") as key:
            key.attr(
                label="changes", fontname=FONT, fontsize="10", style="rounded", color="#999999"
            )
            for kind, color in STATUS_COLORS.items():
                key.node(f"legend_{kind}", label=kind, fillcolor=color, fontsize="9")
            if changes:
                text = "".join(graphviz.escape(line) + "\\l" for line in changes)
                key.node("legend_report", label=graphviz.nohtml(text), shape="plaintext", style="")
    elif graph.compilation is None:
        _key(dot, graph)
    if labels.heat is not None:
        _heat_key(dot, labels.heat)
    if graph.compilation is not None:
        _compile_key(dot, graph, graph.compilation)
        _break_notes(dot, graph, graph.compilation)
    for node in graph.nodes:
        for source in node.inputs:
            dot.edge(
                graphviz.escape(source), graphviz.escape(node.id), **_crossing(graph, source, node)
            )
    for before, late in _late_inputs(graph):
        dot.edge(graphviz.escape(before), graphviz.escape(late), style="invis")
    return str(dot.source)


def clustered(graph: Graph, clusters: bool = True) -> dict[str, list[Node]]:
    """The nodes each module's cluster holds (inputs and outputs outside every cluster)."""
    by_scope: dict[str, list[Node]] = defaultdict(list)
    for node in graph.nodes:
        scope = "" if node.kind in ("input", "output") or not clusters else node.scope
        by_scope[scope].append(node)
    return by_scope


def _late_inputs(graph: Graph) -> list[tuple[str, str]]:
    """(the node that ran just before, the input) for each input first read after other work
    ran: a decoder's ids, a second tower's pixels. An invisible edge places the input there,
    so towers stack in the order they ran instead of standing side by side."""
    order = {n.id: i for i, n in enumerate(graph.nodes)}
    first_read: dict[str, int] = {}
    for node in graph.nodes:
        for source in node.inputs:
            first_read.setdefault(source, order[node.id])
    pairs = []
    for node in graph.nodes:
        if node.kind != "input" or node.id not in first_read:
            continue
        ran = [n for n in graph.nodes[: first_read[node.id]] if n.kind not in ("input", "constant")]
        if ran:
            pairs.append((ran[-1].id, node.id))
    return pairs


def _emit_scope(
    dot: graphviz.Digraph,
    graph: Graph,
    scope: str,
    by_scope: dict[str, list[Node]],
    children: dict[str, tuple[str, ...]],
    status: dict[str, str],
    labels: Labels,
) -> None:
    for node in by_scope.get(scope, ()):
        style = node_style(graph, node, status, labels)
        dot.node(graphviz.escape(node.id), label=_node_label(graph, node, labels), **style)
    for child in children.get(scope, ()):
        with dot.subgraph(name=graphviz.escape(f"cluster_{child}")) as sub:
            text, frozen = cluster_heading(graph, child, labels)
            sub.attr(
                label=_label([text]),
                labeljust="l",
                fontname=FONT,
                fontsize="10",
                style="rounded,dashed" if frozen else "rounded",
                color="#888888" if frozen else "#9aaabb",
            )
            _emit_scope(sub, graph, child, by_scope, children, status, labels)


def node_style(
    graph: Graph, node: Node, status: Mapping[str, str], labels: Labels
) -> dict[str, str]:
    """A box's Graphviz attributes: its kind's fill, frozen, torch.compile's graphs, the
    memory heat, and a diff's change kind over all of them."""
    style = _node_style(node)
    if graph.compilation is not None:
        style.update(_compiled_style(node))
    if labels.heat is not None:
        style.update(labels.heat.style(graph, node))
    if node.id in status:
        style.update(fillcolor=STATUS_COLORS[status[node.id]], penwidth="2")
        if status[node.id] == "removed":
            style.update(style="rounded,filled,dashed")
    return style


def cluster_heading(graph: Graph, path: str, labels: Labels) -> tuple[str, bool]:
    """A module's frame heading (`layer1: Sequential · frozen · 12 MiB held`), and whether
    its parameters are all frozen (the frame is dashed)."""
    module = graph.module(path)
    frozen = module is not None and _all_frozen(module)
    held = memory_text(graph, module) if "memory" in labels.show else ""
    text = cluster_label(graph, path, module)
    return text + (" · frozen" if frozen else "") + (f" · {held}" * bool(held)), frozen


@dataclass(frozen=True, slots=True)
class Labels:
    """What every label needs: the annotations asked for, the modules that have submodules."""

    show: frozenset[str]
    parents: frozenset[str]
    heat: Heat | None = None

    @classmethod
    def of(cls, graph: Graph, show: frozenset[str], color: str = "") -> Labels:
        parents = frozenset(m.path for m in graph.modules if graph.children(m.path))
        heat = Heat.of(graph) if color == "memory" else None
        return cls(show, parents, heat)


def _node_label(graph: Graph, node: Node, labels: Labels) -> str:
    return _label(node_lines(graph, node, labels))


def node_lines(graph: Graph, node: Node, labels: Labels) -> list[str]:
    """What a box says, line by line, unescaped (every text format escapes it its own way)."""
    show = labels.show
    lines = [_headline(graph, node)]
    if "args" in show:
        lines.append(_detail(graph, node))
    # A box standing for a module with submodules (`--depth`): what goes in matters too.
    summary = node.kind == "module" and node.target in labels.parents
    if "shapes" in show:
        if summary:
            lines.append(f"in {_input_shapes(graph, node)}")
        lines.append(f"out {_shapes(node)}" if summary else _shapes(node))
    held = memory_text(graph, _module_of(graph, node)) if "memory" in show else ""
    outputs = "memory" in show and graph.memory is None
    lines.append(_numbers(node, show | {"params", "flops"} if summary else show, outputs, held))
    if "source" in show and node.source is not None:
        lines.append(f"{node.source.file}:{node.source.line}")
    if "why" in show:
        lines += node.why
    if graph.compilation is not None:
        lines.append(_compiled_text(node))
    if graph.symbolic is not None:
        lines += [f"needs {c.text}" for c in graph.symbolic.constraints if c.node == node.id]
    return [line for line in lines if line]


def _input_shapes(graph: Graph, node: Node) -> str:
    shapes = []
    for source in node.inputs:
        try:
            tensors = [v for v in graph.node(source).outputs if v.is_tensor]
        except KeyError:  # an edge from outside this graph (a merged diff drawing)
            continue
        if len(tensors) == 1:
            shapes.append(_value_text(tensors[0], False))
    return ", ".join(dict.fromkeys(shapes)) or "–"


def _numbers(node: Node, show: frozenset[str], outputs: bool = False, held: str = "") -> str:
    """`2.36M params (1.18M frozen) · 512 buffer elements · 1.85G FLOPs · out 784 KiB`."""
    parts = []
    params = node.params
    if "params" in show and params.total:
        parts.append(f"{format_params(params.total)} params")
        if params.frozen:
            frozen = "all" if not params.trainable else format_params(params.frozen)
            parts[-1] += f" ({frozen} frozen)"
    if "buffers" in show and node.buffers:
        parts.append(f"{format_count(node.buffers)} buffer elements")
    if "flops" in show and node.flops:
        parts.append(f"{format_count(node.flops)} FLOPs")
    memory = sum(v.nbytes for v in node.outputs) if outputs else 0
    if memory and node.kind != "output":
        parts.append(f"out {format_bytes(memory)}")
    if held:
        parts.append(held)
    return " · ".join(parts)


def _module_of(graph: Graph, node: Node) -> Module | None:
    return graph.module(node.target) if node.kind == "module" else None


def memory_text(graph: Graph, module: Module | None) -> str:
    """`saved 12 MiB · live 40 MiB`: a module's share of the graph's memory estimate (saved
    only for a training step)."""
    if module is None or module.memory is None or graph.memory is None:
        return ""
    live = f"live {format_bytes(module.memory.live)}" if module.memory.live else ""
    if graph.memory.mode == "inference":
        return live
    return " · ".join(p for p in (f"saved {format_bytes(module.memory.saved)}", live) if p)


# The heat scale of `--color memory`: from a pale yellow (nothing kept) to a deep red (the
# most any drawn box keeps), by the square root of the bytes, so mid-sized ones still differ.
HEAT = ("#fff7d6", "#fde3a7", "#fbc07a", "#f59a5b", "#ea6b47", "#d13c34")


@dataclass(frozen=True, slots=True)
class Heat:
    """`--color memory`: each module box filled by what it keeps (bytes saved for backward
    in a training step, live bytes in inference), relative to the most any box keeps."""

    key: str
    most: int

    @classmethod
    def of(cls, graph: Graph) -> Heat | None:
        if graph.memory is None:
            return None
        key = "live" if graph.memory.mode == "inference" else "saved"
        drawn = [_module_of(graph, n) for n in graph.nodes]
        most = max((_held(m, key) for m in drawn if m is not None), default=0)
        return cls(key, most) if most else None

    def level(self, nbytes: int) -> int:
        return min(len(HEAT) - 1, round(math.sqrt(nbytes / self.most) * (len(HEAT) - 1)))

    def style(self, graph: Graph, node: Node) -> dict[str, str]:
        module = _module_of(graph, node)
        if module is None or module.memory is None:
            return {}
        return {"fillcolor": HEAT[self.level(_held(module, self.key))]}


def _held(module: Module, key: str) -> int:
    return 0 if module.memory is None else int(getattr(module.memory, key))


def cluster_label(graph: Graph, path: str, module: Module | None) -> str:
    """`encoder.layer.0–11: BertLayer ×12`; a loop's cluster says how many steps it drew
    as one, and the modules inside it keep their own paths."""
    if module is None:
        return _model_path(graph, path)
    if module.class_name == LOOP and not module.qualname:
        if module.hparams == "independent steps":  # views.steps.INDEPENDENT
            return f"loop ×{module.repeat}: one step drawn, no step reads another"
        return f"loop ×{module.repeat}: one step drawn, each step reads the one before"
    if module.class_name == GROUP and not module.qualname:
        blocks = sum(max(m.repeat, 1) for m in _blocks(graph, path))
        return f"{_model_path(graph, path)}: the {blocks} blocks below, in turn, ×{module.repeat}"
    return f"{_model_path(graph, path)}: {_class_text(module)}"


def _blocks(graph: Graph, path: str) -> list[Module]:
    return [m for c in graph.children(path) if (m := graph.module(c)) is not None]


def _model_path(graph: Graph, path: str) -> str:
    """A drawn path without the loop and group clusters views put in it (the module's own
    path); a group's own path as it is (`layers.1–44`)."""
    if ".loop" not in path and not path.startswith("loop") and "–" not in path:
        return path  # neither a loop nor a folded run, nor a group of them
    parts = path.split(".")
    kept = []
    for k, part in enumerate(parts):
        module = graph.module(".".join(parts[: k + 1]))
        synthetic = (
            module is not None and module.class_name in (LOOP, GROUP) and not module.qualname
        )
        if not synthetic or k == len(parts) - 1:
            kept.append(part)
    return ".".join(kept)


def _class_text(module: Module) -> str:
    """`BertLayer ×12` for a folded run, `_DenseLayer ×6, in 64 → 224 (+32 each)` for a run
    alike but for its sizes, else the class name."""
    text = module.class_name + (f" ×{module.repeat}" if module.repeat > 1 else "")
    return f"{text}, {module.varies}" if module.varies else text


def _headline(graph: Graph, node: Node) -> str:
    if node.kind == "input":
        return f"input · {node.target}"
    if node.kind == "output":
        return "output"
    if node.kind == "module":
        module = graph.module(node.target)
        what = _class_text(module) if module else node.module_class
        shared = "; ".join(sharing_words(graph, node))
        return f"{_model_path(graph, node.target)}{f' ({shared})' if shared else ''} · {what}"
    if node.kind == "method":
        return f".{node.target}()"
    if node.kind == "constant":
        kind = "param" if node.params.total else "tensor"
        return f"{_model_path(graph, node.target)} · {kind}"
    if node.target == "getitem":
        return f"[{node.arguments or 'tensor'}]"  # boxes[keep]: indexed by a tensor
    if node.kind == "line":
        return _line_text(node)
    return node.target.rpartition(".")[2]


def _line_text(node: Node) -> str:
    """A source line's ops drawn as one node: the call the line makes, without what it assigns
    (`apply_rotary_pos_emb(q, k, cos, sin)` for `q, k = apply_rotary_pos_emb(…)`)."""
    code = node.source.code.strip() if node.source else ""
    left, equals, right = code.partition("=")
    if equals and "(" not in left and not right.startswith("="):
        call = right
    else:
        call = code
    call = call.strip().removeprefix("return ").strip()
    if not any(c.isalnum() for c in call) and node.source is not None:
        # A statement whose first line says nothing (`[` opening a list comprehension).
        return f"{node.source.file.rpartition('/')[2]}:{node.source.line}"
    if call.count("(") > call.count(")"):  # the first line of a call written on several
        call = call.rstrip(", ") + "…)"
    return _clip(call if "(" in call else code or node.target)


def _detail(graph: Graph, node: Node) -> str:
    if node.kind == "module":
        module = graph.module(node.target)
        text = module.hparams if module else ""
    elif node.target == "getitem":
        text = ""
    else:
        text = node.arguments
    return _clip(text)


def _clip(text: str) -> str:
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"


def _shapes(node: Node) -> str:
    tensors = [v for v in node.outputs if v.is_tensor]
    shown = [_value_text(v, len(tensors) > 1) for v in tensors[:4]]
    if len(tensors) > 4:
        shown.append(f"… {len(tensors) - 4} more")
    if not tensors:
        shown = [f"{v.text}" for v in node.outputs if v.text][:1]
    return ", ".join(shown)


def _value_text(value: Value, with_path: bool) -> str:
    text = format_shape(value.shape or (), value.expr)
    if value.dtype and value.dtype != "float32":
        text += f" {value.dtype}"
    return f"{_path_text(value.path)} {text}" if with_path and value.path else text


_KEY = re.compile(r"\['([A-Za-z_]\w*)'\]")


def _path_text(path: str) -> str:
    """Where a value sits, as a reader says it: `last_hidden_state` for `['last_hidden_state']`,
    `[0].boxes` for `[0]['boxes']`; list positions stay `[1]`."""
    return _KEY.sub(r".\1", path).removeprefix(".")


def _node_style(node: Node) -> dict[str, str]:
    style = {"fillcolor": FILL[node.kind]}
    if node.kind in ("input", "output"):
        style.update(shape="box", style="filled,bold", penwidth="1.5")
    elif node.kind in ("function", "method", "line"):
        style.update(color="#999999")
    frozen = _frozen(node)
    if frozen == "all":
        style.update(fillcolor=_FROZEN_FILL, style="rounded,filled,dashed")
    elif frozen == "partly":
        style.update(style="rounded,filled,dashed")
    return style


def _frozen(node: Node) -> Literal["all", "partly", ""]:
    """Whether a node's parameters are all frozen (requires_grad=False), some, or none."""
    if not node.params.frozen:
        return ""
    return "partly" if node.params.trainable else "all"


def _all_frozen(module: Module) -> bool:
    return bool(module.params.frozen) and not module.params.trainable


# The key's entry for each kind of box, in the order a picture reads.
_KEY_ENTRIES = {
    "input": ["input"],
    "module": ["module", "(an nn.Module call)"],
    "function": ["function or op"],
    "constant": ["parameter, buffer or tensor", "read outside a module's box"],
    "output": ["output"],
}


def _key(dot: graphviz.Digraph, graph: Graph) -> None:
    """A key beside the drawing with one entry for each kind of box the drawing has: its
    colour and border, and what it stands for (the frozen ones grey and dashed)."""
    kinds = {"function" if n.kind in ("method", "line") else n.kind for n in graph.nodes}
    frozen = {_frozen(node) for node in graph.nodes} - {""}
    with dot.subgraph(name="cluster_legend") as key:
        key.attr(label="key", fontname=FONT, fontsize="10", style="rounded", color="#999999")
        entries = [kind for kind in _KEY_ENTRIES if kind in kinds]
        with key.subgraph() as row:  # one row, in reading order
            row.attr(rank="same")
            for kind in entries:
                style = _node_style(Node(id="", kind=kind, target=""))
                row.node(f"legend_{kind}", label=_label(_KEY_ENTRIES[kind]), fontsize="9", **style)
            for before, after in zip(entries, entries[1:], strict=False):
                row.edge(f"legend_{before}", f"legend_{after}", style="invis")
        if "all" in frozen:
            key.node(
                "legend_frozen",
                label=_label(["frozen", "requires_grad=False"]),
                fillcolor=_FROZEN_FILL,
                style="rounded,filled,dashed",
                fontsize="9",
            )
        if "partly" in frozen:
            key.node(
                "legend_partly",
                label="partly frozen",
                fillcolor=FILL["module"],
                style="rounded,filled,dashed",
                fontsize="9",
            )


def _heat_key(dot: graphviz.Digraph, heat: Heat) -> None:
    """The heat scale beside the drawing: its colours, from none to the most a box keeps."""
    what = "saved for backward" if heat.key == "saved" else "live while it runs"
    with dot.subgraph(name="cluster_heat") as key:
        key.attr(label=f"memory: {what}", fontname=FONT, fontsize="10", style="rounded")
        key.attr(color="#999999")
        with key.subgraph() as row:
            row.attr(rank="same")
            steps = len(HEAT) - 1
            names = []
            for level, fill in enumerate(HEAT):
                nbytes = int(heat.most * (level / steps) ** 2)
                names.append(f"heat_{level}")
                text = format_bytes(nbytes) if level in (0, steps // 2, steps) else " "
                row.node(names[-1], label=text, fillcolor=fill, fontsize="9", width="0.5")
            for before, after in zip(names, names[1:], strict=False):
                row.edge(before, after, style="invis")


# One fill per torch.compile graph, in the order they ran (cycled past twelve).
GRAPH_FILLS = (
    "#cfe3fb",
    "#d5f0cc",
    "#ffe7ad",
    "#e6d9fb",
    "#fdd4e4",
    "#c9eeea",
    "#f3dcc2",
    "#dfe8c2",
    "#d8d8f6",
    "#f8d5c0",
    "#c7e6d6",
    "#eddcf3",
)
BREAK_RED = "#c0392b"
_PYTHON_FILL = "#ffffff"


def graph_fill(number: int) -> str:
    """The fill of torch.compile graph `number` (1-based); white for ops run in Python (0)."""
    return _PYTHON_FILL if number == 0 else GRAPH_FILLS[(number - 1) % len(GRAPH_FILLS)]


def _compiled_style(node: Node) -> dict[str, str]:
    """A node drawn with torch.compile's graphs: its graph's fill, stripes for a box whose
    ops ran in several, a red dashed border for ops that ran in Python, a red border where a
    graph break falls."""
    style: dict[str, str] = {}
    numbers = node.compiled
    if len(numbers) == 1:
        style["fillcolor"] = graph_fill(numbers[0])
    elif numbers:
        style.update(fillcolor=":".join(graph_fill(n) for n in numbers), style="striped")
    if 0 in numbers:
        style.update(
            color=BREAK_RED,
            style="rounded,filled,dashed" if len(numbers) == 1 else "striped,dashed",
        )
    if node.breaks:
        style.update(color=BREAK_RED, penwidth="2.5")
    return style


def _compiled_text(node: Node) -> str:
    numbers = node.compiled
    if numbers == (0,):
        return "runs in Python, between graphs"
    if len(numbers) > 1:
        graphs = [str(n) for n in numbers if n]
        text = f"graph{'s' if len(graphs) > 1 else ''} {', '.join(graphs)}"
        return text + (", and ops run in Python" if 0 in numbers else "")
    return ""


def _crossing(graph: Graph, source: str, node: Node) -> dict[str, str]:
    """An edge where a value leaves one torch.compile graph for another (or for Python): red."""
    if graph.compilation is None:
        return {}
    try:
        before = graph.node(source).compiled
    except KeyError:
        return {}
    if before and node.compiled and set(before) != set(node.compiled):
        return {"color": BREAK_RED, "penwidth": "1.6"}
    return {}


def _break_notes(dot: graphviz.Digraph, graph: Graph, compilation: Compilation) -> None:
    """The graph breaks at each node as one red note beside it: why, and the user's line."""
    for node in graph.nodes:
        if not node.breaks:
            continue
        lines = []
        for k in node.breaks[:MAX_NOTE_BREAKS]:
            found = compilation.breaks[k]
            lines.append(f"graph break {k + 1} (after graph {found.after}): {found.reason}")
            if found.source is not None:
                lines.append(
                    f"    {found.source.file}:{found.source.line}  {_clip(found.source.code)}"
                )
        if len(node.breaks) > MAX_NOTE_BREAKS:
            lines.append(f"… {len(node.breaks) - MAX_NOTE_BREAKS} more (fxviz compile's report)")
        runs = _runs(graph, node.owner)
        if runs > 1:
            lines.append(f"in each of the {runs} blocks drawn once")
        name = f"breaks_{node.id}"
        dot.node(
            graphviz.escape(name),
            label=_note(lines),
            shape="note",
            style="filled",
            fillcolor="#fdecea",
            color=BREAK_RED,
            fontcolor="#7b241c",
            fontsize="10",
        )
        dot.edge(
            graphviz.escape(name),
            graphviz.escape(node.id),
            color=BREAK_RED,
            style="dashed",
            arrowhead="none",
        )


MAX_NOTE_BREAKS = 6


def _note(lines: list[str]) -> str:
    """Lines set flush left (DOT's `\\l` ends each)."""
    return cast(str, graphviz.nohtml("".join(graphviz.escape(line) + "\\l" for line in lines)))


def _compile_key(dot: graphviz.Digraph, graph: Graph, compilation: Compilation) -> None:
    """What the colours mean: one entry per graph (its ops and share of the FLOPs), ops run in
    Python, and the recompiles a second call with the same inputs paid."""
    total = max(graph.totals.flops, 1)
    with dot.subgraph(name="cluster_compile") as key:
        key.attr(
            label=_label([compile_summary(compilation)]),
            fontname=FONT,
            fontsize="10",
            style="rounded",
            color="#999999",
        )
        shown = compilation.graphs[:MAX_KEY_GRAPHS]
        for g in shown:
            share = f" · {_share(g.flops, total)} of FLOPs" if graph.totals.flops else ""
            key.node(
                f"legend_graph_{g.number}",
                label=_label([f"graph {g.number}", f"{g.ops} ops{share}"]),
                fillcolor=graph_fill(g.number),
                fontsize="9",
            )
        if len(compilation.graphs) > len(shown):
            left = len(compilation.graphs) - len(shown)
            key.node(
                "legend_graph_more", label=f"… {left} more graphs", shape="plaintext", style=""
            )
        if any(0 in n.compiled for n in graph.nodes):
            key.node(
                "legend_python",
                label=_label(["runs in Python", "(between graphs)"]),
                fillcolor=_PYTHON_FILL,
                color=BREAK_RED,
                style="rounded,filled,dashed",
                fontsize="9",
            )
        names = [f"legend_graph_{g.number}" for g in shown]
        for start in range(0, len(names), KEY_ROW):
            row = names[start : start + KEY_ROW]
            with key.subgraph() as same:
                same.attr(rank="same")
                for name in row:
                    same.node(name)
                for before, after in zip(row, row[1:], strict=False):
                    same.edge(before, after, style="invis")
            if start:
                key.edge(names[start - KEY_ROW], row[0], style="invis")
        for k, recompile in enumerate(compilation.recompiles):
            where = (
                f" ({recompile.source.file}:{recompile.source.line})" if recompile.source else ""
            )
            key.node(
                f"legend_recompile_{k}",
                label=_label(
                    [f"recompiles: guard {recompile.guard} failed{where}", recompile.reason]
                ),
                shape="note",
                style="filled",
                fillcolor="#fff4d6",
                color="#b7950b",
                fontsize="9",
            )


MAX_KEY_GRAPHS = 12
KEY_ROW = 6


def _share(part: int, total: int) -> str:
    """`99.6%`, `<0.1%` for a sliver, `0%` for none."""
    if not part:
        return "0%"
    percent = 100 * part / total
    return "<0.1%" if percent < 0.1 else f"{percent:.1f}%"


def _runs(graph: Graph, path: str) -> int:
    """How many blocks a node drawn at `path` stands for: folded runs multiply."""
    count = 1
    for outer in lineage(path):
        module = graph.module(outer)
        count *= module.repeat if module else 1
    return count


def compile_summary(compilation: Compilation) -> str:
    """`torch.compile: 2 graphs, 1 graph break, 1 recompile`."""
    graphs, breaks = len(compilation.graphs), len(compilation.breaks)
    parts = [f"{graphs} graph{'s' if graphs != 1 else ''}"]
    parts.append(f"{breaks} graph break{'s' if breaks != 1 else ''}")
    if compilation.recompiles:
        n = len(compilation.recompiles)
        parts.append(f"{n} recompile{'s' if n != 1 else ''}")
    return "torch.compile: " + ", ".join(parts)


def memory_summary(m: MemoryEstimate) -> str:
    """`memory: 835 MiB at the peak of a training step (adam, fp32, batch 32), in backward`."""
    step = "inference" if m.mode == "inference" else f"a training step ({m.mode}"
    details = [m.dtype, *([f"batch {m.batch}"] if m.batch is not None else [])]
    step += f" ({', '.join(details)})" if m.mode == "inference" else f", {', '.join(details)})"
    where = f"in {m.peak_phase}" + (f", at {m.peak_at}" if m.peak_at else "")
    return f"memory: {format_bytes(m.peak)} at the peak of {step}, {where}"


def symbols_summary(symbolic: Symbolic) -> str:
    """`symbols: B = x dim 0 (here 1) · H = x dim 2 (fixed at 224)`, `needs H, W = 224`."""
    named = " · ".join(
        f"{d.name} = {d.input} dim {d.axis} ({'fixed at' if d.fixed else 'here'} {d.size})"
        for d in symbolic.dims
    )
    needs = "; ".join(c.text for c in symbolic.constraints)
    return f"symbols: {named}" + (f"\nneeds {needs}" if needs else "")


def _subtitle(graph: Graph) -> str:
    params = graph.totals.params
    parts = [f"{format_params(params.total)} params"]
    if params.frozen:
        parts[0] += f" ({format_params(params.frozen)} frozen)"
    if graph.totals.flops:
        parts.append(f"{format_count(graph.totals.flops)} FLOPs")
    parts.append(f"traced with {graph.tracer} on {graph.device}")
    text = " · ".join(parts)
    if graph.compilation is not None:
        text += "\n" + compile_summary(graph.compilation)
    if graph.memory is not None:
        text += "\n" + memory_summary(graph.memory)
    if graph.symbolic is not None:
        text += "\n" + symbols_summary(graph.symbolic)
    if graph.tracer == "record":
        text += "\none recorded run: another input could take another path"
    return text


def _label(lines: list[str]) -> str:
    """Escape each line (backslashes, `<…>`), join with DOT's centred line break."""
    joined = "\\n".join(graphviz.escape(line) for line in lines if line)
    # Keep the NoHtml str subclass: a label such as "<b>" must stay text, never HTML.
    return cast(str, graphviz.nohtml(joined))
