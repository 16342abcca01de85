"""What `fxviz memory` reports: the peak of one inference or training step split into weights,
gradients, optimizer state and activations, where the peak falls, and the modules that save
the most for backward — as a terminal table or as JSON. Reads the Graph only (no torch)."""

from __future__ import annotations

import json
from typing import Any

from fxviz.errors import SpecError, did_you_mean
from fxviz.graph import MEMORY_KEYS, Graph, MemoryEstimate, natural_key
from fxviz.humanize import format_bytes, format_params

FORMATS = ("table", "json")
# How many modules the table lists, the ones saving the most for backward first.
TOP_MODULES = 8

_STATES = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}
_SCRATCH_NOTE = "the running kernel's own buffers, which no tensor holds"


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        hint = did_you_mean(fmt, FORMATS) or f"use {', '.join(FORMATS)}"
        raise SpecError(f"--format {fmt!r}: {hint}")
    return fmt


def estimate_of(graph: Graph) -> MemoryEstimate:
    if graph.memory is None:
        raise SpecError(
            f"{graph.name} was not drawn with a memory estimate; run `fxviz memory MODEL` "
            "(or give a graph saved by it)"
        )
    return graph.memory


def step_words(m: MemoryEstimate) -> str:
    """`training step (adamw, fp32 master weights), bf16, batch 8`."""
    if m.mode == "inference":
        step = "inference"
    else:
        step = f"training step ({m.mode}{', fp32 master weights' if m.master_weights else ''})"
    batch = f", batch {m.batch}" if m.batch is not None else ""
    return f"{step}, {m.dtype}{batch}"


def headline(graph: Graph) -> str:
    """`resnet18: 746 MiB at the peak of a training step (sgd), fp32, batch 32`."""
    m = estimate_of(graph)
    return f"{graph.name}: {format_bytes(m.peak)} at the peak of {_article(step_words(m))}"


def _article(words: str) -> str:
    return words if words.startswith("inference") else f"a {words}"


def where(m: MemoryEstimate) -> str:
    """`in backward, at layer4.0.conv1`."""
    at = f", at {m.peak_at}" if m.peak_at else ""
    if m.peak_phase == "optimizer step":
        return "in the optimizer's step"
    return f"in {m.peak_phase}{at}"


def render(graph: Graph, fmt: str, fit: int | None = None) -> str:
    check_format(fmt)
    if fmt == "json":
        return json.dumps(to_json(graph, fit), indent=2, sort_keys=True) + "\n"
    return table(graph, fit)


def to_json(graph: Graph, fit: int | None = None) -> dict[str, Any]:
    m = estimate_of(graph)
    out: dict[str, Any] = {key: getattr(m, name) for name, key in MEMORY_KEYS.items()}
    out["model"] = graph.name
    out["trainable_params"] = graph.totals.params.trainable
    out["frozen_params"] = graph.totals.params.frozen
    if fit is not None:
        out["fit_bytes"] = fit
    out["modules"] = [
        {
            "path": module.path,
            "class": module.class_name,
            "saved_bytes": module.memory.saved,
            "live_bytes": module.memory.live,
        }
        for module in sorted(graph.modules, key=lambda x: natural_key(x.path))
        if module.memory is not None and module.path
    ]
    return out


def table(graph: Graph, fit: int | None = None) -> str:
    m = estimate_of(graph)
    rows: list[tuple[str, str, str]] = [("peak", format_bytes(m.peak), where(m))]
    rows.append(("  weights", format_bytes(m.params), _weights_note(graph)))
    if m.buffers:
        rows.append(("  buffers", format_bytes(m.buffers), ""))
    if m.mode != "inference":
        rows.append(("  gradients", format_bytes(m.grads), "trainable parameters only"))
        rows.append(("  optimizer state", format_bytes(m.optimizer), _state_note(m)))
    rows.append(("  activations", format_bytes(m.activations), _activations_note(m)))
    if m.scratch:
        rows.append(("  kernel scratch", format_bytes(m.scratch), _SCRATCH_NOTE))
    if m.mode != "inference":
        rows.append(("saved for backward", format_bytes(m.saved), "all the forward kept"))
    width = max(len(r[0]) for r in rows)
    size = max(len(r[1]) for r in rows)
    lines = [f"{graph.name}: {step_words(m)}"]
    if fit is not None:
        lines.append(f"largest batch within {format_bytes(fit)}: {m.batch}")
    lines += [f"{a:<{width}}  {b:>{size}}  {c}".rstrip() for a, b, c in rows]
    lines += _top_modules(graph, m)
    return "\n".join(lines) + "\n"


def _weights_note(graph: Graph) -> str:
    p = graph.totals.params
    if not p.frozen:
        return f"{format_params(p.total)} parameters"
    return f"{format_params(p.total)} parameters, {format_params(p.frozen)} frozen"


def _state_note(m: MemoryEstimate) -> str:
    states = _STATES[m.mode]
    kept = f"{states} per trainable parameter" if states else "none: plain SGD keeps no state"
    if m.master_weights:
        kept += ", and an fp32 copy of each"
    return kept


def _activations_note(m: MemoryEstimate) -> str:
    if m.mode == "inference":
        return "inputs and the tensors live at the peak"
    return "inputs, saved tensors and temporaries live at the peak"


def _top_modules(graph: Graph, m: MemoryEstimate) -> list[str]:
    """The modules, below the top level's, that save the most (or, for inference, hold the
    most while they run), leaves' parents first when they tie."""
    key = "saved" if m.mode != "inference" else "live"
    shares = [
        (getattr(module.memory, key), module)
        for module in graph.modules
        if module.memory is not None and module.path and "." not in module.path
    ]
    shares = [(n, module) for n, module in shares if n]
    if not shares:
        return []
    shares.sort(key=lambda item: (-item[0], natural_key(item[1].path)))
    title = "saved for backward, by module" if key == "saved" else "live while it runs"
    lines = ["", f"{title}:"]
    shown = shares[:TOP_MODULES]
    width = max(len(f"{module.path}: {module.class_name}") for _, module in shown)
    for n, module in shown:
        name = f"{module.path}: {module.class_name}"
        share = f"{100 * n / m.peak:.0f}% of the peak" if key == "saved" and m.peak else ""
        lines.append(f"  {name:<{width}}  {format_bytes(n):>9}  {share}".rstrip())
    if len(shares) > TOP_MODULES:
        lines.append(f"  … {len(shares) - TOP_MODULES} more (--format json lists every module)")
    return lines
