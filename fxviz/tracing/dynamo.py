"""torch.compile's view of a model, on the drawn graph: the graphs TorchDynamo captures, where
and why it breaks them, and the guards that make it compile again.

`capture` runs the model through `torch.compile` with a backend that only records the graphs
it is handed (no Inductor, no compiler toolchain), then runs it once more with the same inputs:
a guard that fails then is a recompile every call would pay. `annotate` puts what it found on
the Graph the usual tracers drew: each node gets the numbers of the captured graphs its ops ran
in (0: in Python, between graphs), matched by the user's source line, and each break gets the
node it falls at.

Matching: a captured op's line is the innermost frame of its stack outside torch, read as the
tracers read a drawn node's (`export.source_of`, the frames of the module whose forward ran
it). At each line, the drawn calls and the captured ones (an op by name, or one torch.nn
module's call) are aligned in the order they ran, a longest common subsequence; a drawn call
left without a partner ran a graph compiled earlier (a frame TorchDynamo cached, the same
op's last aligned graph), or ran in Python. What no captured op matches (a `size()` that
dynamo folded into a constant) takes the graph of the first node that reads it, else of what
it reads; what is at a break's line and matches nothing ran in Python.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from fxviz.errors import CompileError, first_line
from fxviz.graph import (
    Compilation,
    CompiledGraph,
    Graph,
    GraphBreak,
    Node,
    Recompile,
    SourceLocation,
    within,
)
from fxviz.loaders.torch_internals import (
    BreakRecord,
    Frame,
    dynamo_quiet,
    dynamo_reset,
    frames_in,
    graph_break_of,
    guard_failures,
    module_stack,
    qualified_name,
)
from fxviz.tracing.export import module_name_of, source_of
from fxviz.tracing.fx import is_outside_torch, relative_file

Site = tuple[str, int]  # (file as fxviz writes it, line)


@dataclass(frozen=True, slots=True)
class CapturedOp:
    """One op of a captured graph: its (line, what) key, as a drawn node's (`_key`), and, for
    an op of a torch.nn module's forward, that module as dynamo names it (`L['self'].fc`)."""

    key: tuple[Site, str] | None
    instance: str


@dataclass(frozen=True, slots=True)
class Captured:
    """One run through TorchDynamo: each graph's ops in order, the breaks (with the number of
    the graph each ended), and the guards that failed on a second run."""

    graphs: tuple[tuple[CapturedOp, ...], ...]
    breaks: tuple[tuple[int, BreakRecord], ...]
    recompiles: tuple[Recompile, ...]


class NeedsValues(Exception):
    """The run failed on meta tensors: the code between graphs needs real values."""


def capture(
    model: torch.nn.Module, args: Sequence[Any], kwargs: dict[str, Any], name: str
) -> Captured:
    """Run `model` twice under `torch.compile` with a capturing backend. On meta, a failure
    is `NeedsValues` (the caller retries on cpu); elsewhere a CompileError saying why."""
    graphs: list[tuple[CapturedOp, ...]] = []
    breaks: list[tuple[int, BreakRecord]] = []
    second_run = False
    root = type(model)

    def backend(gm: torch.fx.GraphModule, example_inputs: Any) -> Callable[..., Any]:
        if not second_run:
            graphs.append(_ops(gm, root))
            record = graph_break_of(gm)
            if record is not None:
                breaks.append((len(graphs), record))
        return gm.forward

    on_meta = _on_meta(model, args, kwargs)
    with dynamo_quiet():
        dynamo_reset()
        try:
            try:
                compiled = torch.compile(model, backend=backend)
            except RuntimeError as exc:  # a Python or platform torch.compile does not support
                said = first_line(exc, 200)
                raise CompileError(
                    f"torch {torch.__version__} cannot run torch.compile here: {said}"
                ) from exc
            try:
                compiled(*args, **kwargs)
                failed_before = len(guard_failures())
                second_run = True
                compiled(*args, **kwargs)
            except Exception as exc:  # the model's own code, run under TorchDynamo
                if on_meta:
                    raise NeedsValues(first_line(exc, 200)) from exc
                raise CompileError(
                    f"torch.compile could not run {name}: {first_line(exc, 200)}; `fxviz {name}` "
                    "draws it without torch.compile",
                ) from exc
            failures = guard_failures()[failed_before:]
        finally:
            dynamo_reset()
    return Captured(tuple(graphs), tuple(breaks), tuple(_recompile(text) for text in failures))


def _on_meta(model: torch.nn.Module, args: Sequence[Any], kwargs: dict[str, Any]) -> bool:
    tensors = [*model.parameters(), *model.buffers()]
    tensors += [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
    return any(t.device.type == "meta" for t in tensors)


def _ops(gm: torch.fx.GraphModule, root: type) -> tuple[CapturedOp, ...]:
    ops = []
    for node in gm.graph.nodes:
        if node.op not in ("call_function", "call_method", "call_module"):
            continue
        stack = module_stack(node)
        source = source_of(node, stack[-1].cls if stack else root)
        if source is None:
            ops.append(CapturedOp(None, ""))
            continue
        site = (source.file, source.line)
        if stack and _is_torch_module(stack[-1].cls):  # a torch.nn leaf's ops: one call
            ops.append(CapturedOp((site, "module"), stack[-1].key))
        else:
            target = node.target if node.op == "call_method" else qualified_name(node.target)
            ops.append(CapturedOp((site, op_name(str(target))), ""))
    return tuple(ops)


def _is_torch_module(cls: Any) -> bool:
    name = cls.__module__ if isinstance(cls, type) else str(cls)
    return name.startswith("torch.")


def _location(frame: Frame) -> SourceLocation:
    return SourceLocation(
        file=relative_file(frame.file, module_name_of(frame.file)),
        line=frame.line,
        function=frame.function,
        code=frame.code,
    )


# `0/0: self.calls == 0  # self.calls += 1  # x/net.py:12 in forward (HINT: …)`, then the
# user's stack (`File "/x/net.py", line 12, in forward` and its code).
_GUARD = re.compile(r"^\s*(?:\d+/\d+:\s*)?(?P<guard>[^#\n]*?)\s*(?:#|$)", re.MULTILINE)
_HINT = re.compile(r"\(HINT: (?P<hint>[^)]*)")


def _recompile(text: str) -> Recompile:
    match = _GUARD.search(text)
    guard = match["guard"].strip() if match else text.splitlines()[0]
    # Its logged form marks each line of the stack with `- `.
    frames = [f._replace(code=f.code.removeprefix("- ").strip()) for f in frames_in(text)]
    hint = _HINT.search(text)
    users = [f for f in frames if is_outside_torch(f.file)]
    return Recompile(
        guard=guard,
        reason=_guard_words(guard, hint["hint"] if hint else ""),
        source=_location(users[-1]) if users else None,
    )


def _guard_words(guard: str, hint: str) -> str:
    if "integer attributes of the nn.Module" in hint or re.search(r"\.\w+ == -?\d+$", guard):
        return (
            "a Python number on the model changed between calls; torch.compile treats it "
            "as a constant and compiles again for each value: make it a tensor"
        )
    if guard.endswith(" is None"):
        return "an attribute that was None on the first call was set by it; compiled again once"
    if "___check_obj_id" in guard or "ID_MATCH" in guard:
        return "an object the code reads was replaced between calls"
    if "size()" in guard or "stride()" in guard or "shape" in guard:
        return "an input's shape changed between calls"
    return hint.strip() or "a value the compiled code relies on changed between calls"


# TorchDynamo's reasons (the first line of each), in a reader's words. The first match wins.
_WORDS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), words)
    for pattern, words in (
        (r"Tensor\.item\(\)", "x.item(): a Python number from a tensor"),
        (
            r"builtin operator `print`|\bprint\b.*builtin|builtin.*\bprint\b",
            "print(): output from inside the model",
        ),
        (r"generic_jump|data-dependent branching|data dependent branch", "data-dependent branch"),
        (r"tolist\(\)", "x.tolist(): Python numbers from a tensor"),
        (r"_local_scalar_dense|Data dependent operator", "a Python number from a tensor"),
        (r"numpy function unsupported", "a NumPy call torch.compile cannot trace"),
        (r"Tensor\.numpy|numpy\(\)", "x.numpy(): leaving torch for NumPy"),
        (r"Dynamic shape operator", "an op whose output shape depends on the data"),
        (r"marked as skipped|skipfiles|skip_files", "a call into code torch.compile skips"),
        (r"builtin", "a call to an unsupported builtin"),
        (r"context manager", "an unsupported context manager"),
        (r"graph_break\(\)|torch\._dynamo\.graph_break", "torch._dynamo.graph_break()"),
        (r"non-Tensor|unsupported", "a call torch.compile cannot trace"),
    )
)
_WHAT = re.compile(r"`(?:aten\.)?(?P<op>[\w.]+?)(?:\.default)?`|<function (?P<fn>[\w.]+)")


def break_words(reason: str) -> tuple[str, str]:
    """(a break's reason in a reader's words, torch's own first lines): `x.item(): a Python
    number from a tensor`, `a NumPy call torch.compile cannot trace (np.nanmedian)`."""
    lines = [line.strip() for line in reason.splitlines() if line.strip()]
    detail = " ".join(lines[:2])
    detail = detail if len(detail) <= 240 else detail[:239] + "…"
    words = next((words for pattern, words in _WORDS if pattern.search(reason)), None)
    if words is None:
        return (lines[0] if lines else "a graph break"), detail
    named = _WHAT.search(" ".join(lines[1:3]))
    if words.startswith(("an op whose", "a NumPy call", "a call to an unsupported")) and named:
        what = named["op"] or named["fn"]
        if words.startswith("a NumPy call"):
            what = "np." + what.removeprefix("numpy.")
        words = f"{words} ({what})"
    return words, detail


def annotate(graph: Graph, captured: Captured) -> Graph:
    """`graph` with each node's captured graphs, each break at its node, and the totals."""
    nodes = list(graph.nodes)
    assigned = _match(nodes, captured)
    break_sites = {
        (loc.file, loc.line)
        for _, record in captured.breaks
        for loc in map(_location, record.frames)
    }
    for i, node in enumerate(nodes):
        if i not in assigned and _drawn_op(node) and _site(node) in break_sites:
            assigned[i] = 0  # at a break's line, in no graph: it ran in Python
    _inherit(nodes, assigned)
    breaks = _breaks(graph, nodes, assigned, captured)
    at: dict[int, list[int]] = defaultdict(list)
    ids = {n.id: i for i, n in enumerate(nodes)}
    for k, found in enumerate(breaks):
        if found.node is not None:
            at[ids[found.node]].append(k)
    flops: dict[int, int] = defaultdict(int)
    for i, number in assigned.items():
        flops[number] += nodes[i].flops
    drawn = tuple(
        replace(
            n,
            compiled=(assigned[i],) if i in assigned else (),
            breaks=tuple(at.get(i, ())),
        )
        for i, n in enumerate(nodes)
    )
    compilation = Compilation(
        graphs=tuple(
            CompiledGraph(k, len(ops), flops[k]) for k, ops in enumerate(captured.graphs, 1)
        ),
        breaks=tuple(breaks),
        recompiles=captured.recompiles,
    )
    return replace(graph, nodes=drawn, compilation=compilation)


def _drawn_op(node: Node) -> bool:
    return node.kind in ("module", "function", "method")


def _site(node: Node) -> Site | None:
    return (node.source.file, node.source.line) if node.source is not None else None


def _calls_at(
    items: Sequence[tuple[tuple[Site, str] | None, str]],
) -> dict[Site, list[tuple[str, list[int]]]]:
    """At each line, its calls in the order they ran: (what, positions in `items`). One
    module call's ops (consecutive among those at that line, one instance) are one call;
    every other op is a call of its own (`instance` "")."""
    calls: dict[Site, list[tuple[str, list[int]]]] = defaultdict(list)
    last: dict[Site, tuple[str, str]] = {}
    for position, (key, instance) in enumerate(items):
        if key is None:
            continue
        site, what = key
        if instance and last.get(site) == (what, instance):
            calls[site][-1][1].append(position)
        else:
            calls[site].append((what, [position]))
        last[site] = (what, instance)
    return calls


def _match(nodes: Sequence[Node], captured: Captured) -> dict[int, int]:
    """Node position → the number of the captured graph its call ran in. At each line, the
    drawn calls and the captured ones are aligned by what they call, in the order they ran
    (a longest common subsequence): a drawn call with no partner ran in Python, or ran a
    graph compiled earlier (a frame TorchDynamo had cached), whose number it takes from the
    last aligned call of the same op at that line."""
    ops = [(op, number) for number, graph in enumerate(captured.graphs, 1) for op in graph]
    captured_calls = _calls_at([(op.key, op.instance) for op, _ in ops])
    drawn = [i for i, n in enumerate(nodes) if _drawn_op(n)]
    drawn_calls = _calls_at([(_key(nodes[i]), "") for i in drawn])
    assigned: dict[int, int] = {}
    for site, calls in drawn_calls.items():
        theirs = captured_calls.get(site, [])
        names = [what for what, _ in calls]
        partner = _aligned(names, [what for what, _ in theirs])
        before: dict[str, int] = {}
        for k, (what, positions) in enumerate(calls):
            if k in partner:
                number = ops[theirs[partner[k]][1][0]][1]
                before[what] = number
            elif what in before:
                number = before[what]
            else:
                continue
            for position in positions:
                assigned[drawn[position]] = number
    return assigned


# Past this many cells, a line's alignment pairs calls in order instead (k-th with k-th).
MAX_ALIGNMENT = 4_000_000


def _aligned(ours: Sequence[str], theirs: Sequence[str]) -> dict[int, int]:
    """A longest common subsequence of two call lists: our index → theirs."""
    n, m = len(ours), len(theirs)
    if not n or not m:
        return {}
    if ours == theirs:
        return {k: k for k in range(n)}
    if n * m > MAX_ALIGNMENT:
        return {k: min(k, m - 1) for k in range(n) if ours[k] == theirs[min(k, m - 1)]}
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        row, below = table[i], table[i + 1]
        for j in range(m - 1, -1, -1):
            row[j] = below[j + 1] + 1 if ours[i] == theirs[j] else max(below[j], row[j + 1])
    pairs: dict[int, int] = {}
    i = j = 0
    while i < n and j < m:
        if ours[i] == theirs[j]:
            pairs[i] = j
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def _key(node: Node) -> tuple[Site, str] | None:
    """A drawn node's (line, what): a module call, or the op's name."""
    site = _site(node)
    if site is None:
        return None
    return site, "module" if node.kind == "module" else op_name(node.target)


# In-place operators (`out += identity`): fx records what Python falls back to, `add`.
_IN_PLACE = {
    "iadd",
    "isub",
    "imul",
    "itruediv",
    "ifloordiv",
    "imod",
    "ipow",
    "imatmul",
    "iand",
    "ior",
    "ixor",
    "ilshift",
    "irshift",
}


def op_name(target: str) -> str:
    """`add` for operator.add, operator.iadd, torch.add, Tensor.add_ and aten.add.Tensor."""
    name = target.removesuffix(".default").rpartition(".")[2].strip("_").lower()
    if target.startswith("aten.") and target.count(".") >= 2:
        name = target.split(".")[1].strip("_").lower()
    return name[1:] if name in _IN_PLACE else name


def _inherit(nodes: Sequence[Node], assigned: dict[int, int]) -> None:
    """Ops no captured op matched take the graph of the first node that reads them, else of
    the last they read (inputs, outputs and constants stay in none)."""
    position = {n.id: i for i, n in enumerate(nodes)}
    readers: dict[int, list[int]] = defaultdict(list)
    for i, node in enumerate(nodes):
        for source in node.inputs:
            readers[position[source]].append(i)
    for i in range(len(nodes) - 1, -1, -1):
        if i in assigned or not _drawn_op(nodes[i]):
            continue
        found = [assigned[r] for r in readers[i] if assigned.get(r, 0)]
        if found:
            assigned[i] = found[0]
    for i, node in enumerate(nodes):
        if i in assigned or not _drawn_op(node):
            continue
        found = [assigned[position[s]] for s in node.inputs if assigned.get(position[s], 0)]
        if found:
            assigned[i] = found[-1]


def _in_module_of(
    graph: Graph, nodes: Sequence[Node], stack: tuple[SourceLocation, ...]
) -> int | None:
    """The first drawn op of the module whose class's file holds one of the break's lines
    (innermost first): `torchvision/ops/poolers.py` is `MultiScaleRoIAlign`'s."""
    for frame in reversed(stack):
        dotted = frame.file.removesuffix(".py").replace("/", ".")
        paths = [
            m.path for m in graph.modules if m.path and m.qualname.rpartition(".")[0] == dotted
        ]
        for path in paths:
            for i, node in enumerate(nodes):
                if _drawn_op(node) and within(node.owner, path):
                    return i
    return None


def _breaks(
    graph: Graph, nodes: Sequence[Node], assigned: dict[int, int], captured: Captured
) -> list[GraphBreak]:
    """Each break, at the op that ran in Python at its line (the k-th break at a line at its
    k-th such op), else at the first node of the graph after it, else at a drawn op at one of
    the lines that led to it, else in the module whose file it broke in, else at the last op
    that ran before it."""
    in_python: dict[Site, list[int]] = defaultdict(list)
    drawn_at: dict[Site, int] = {}
    previous_in_python = False  # one stretch of ops run in Python takes one break
    for i, node in enumerate(nodes):
        site = _site(node)
        if not _drawn_op(node):
            continue
        python = assigned.get(i) == 0
        if site is not None:
            drawn_at.setdefault(site, i)
            if python and not previous_in_python:
                in_python[site].append(i)
        previous_in_python = python
    first_of: dict[int, int] = {}
    last_of: dict[int, int] = {}
    for i in sorted(assigned):
        first_of.setdefault(assigned[i], i)
        last_of[assigned[i]] = i
    outputs = [i for i, n in enumerate(nodes) if n.kind == "output"]
    seen: dict[Site, int] = defaultdict(int)
    found = []
    for after, record in captured.breaks:
        stack = tuple(_location(f) for f in record.frames if is_outside_torch(f.file))
        source = stack[-1] if stack else None
        site = (source.file, source.line) if source is not None else ("", 0)
        ops = in_python.get(site, [])
        # A drawn op at one of the lines that led to it (a call into a library function
        # that broke), innermost first.
        on_stack = [
            drawn_at[s] for s in ((f.file, f.line) for f in reversed(stack)) if s in drawn_at
        ]
        if seen[site] < len(ops):
            at = ops[seen[site]]
            seen[site] += 1
        elif after + 1 in first_of:
            at = first_of[after + 1]
        elif on_stack:
            at = on_stack[0]
        elif (inside := _in_module_of(graph, nodes, stack)) is not None:
            at = inside
        elif before := [last_of[g] for g in last_of if 0 < g <= after]:
            at = max(before)  # the last drawn op that ran before it
        else:
            at = outputs[0] if outputs else -1
        reason, detail = break_words(record.reason)
        found.append(
            GraphBreak(
                reason=reason,
                detail=detail,
                after=after,
                source=source,
                stack=stack,
                node=nodes[at].id if at >= 0 else None,
            )
        )
    return found
