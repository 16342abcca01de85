"""The memory of a deep stack of identical layers, from the same model with 2, 3 and 4 of them.

A model's step on fake tensors costs Python per op (Llama-3-70B's training step: 71,000 ops,
9 s), most of it in its 80 decoder layers, which are alike. Every byte count of a step is a
sum over those layers plus what lies around them, so with n layers it is a + b·n: the
weights, gradients and optimizer state, what the forward saved, and the peak of each phase
(forward, backward, the optimizer's step). The same model built with 2, 3 and 4 layers gives
three points of each count: where all three lie on one line, the count with 80 layers is on
it too; where any does not (a layer unlike the others, a peak that moves), there is no
answer here and the caller runs the whole model.

The peak of the whole step is the largest of the phases' peaks, each extrapolated on its own,
so a peak that moves from the forward to the backward as layers are added is found. Where it
falls in a layer, it falls in the same one counted from the start or from the end in all
three runs, or there is no answer. A module's share (bytes saved, activations live while it
ran) is extrapolated the same way, per module outside the stack, and for a layer of the
stack from the first, the last and the ones between (whose live bytes grow by one layer's
worth each).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from torch import nn

from fxviz.graph import MemoryEstimate, ModuleMemory
from fxviz.tracing.memory import MemorySetup, estimate_memory, estimate_phases

# The stacks measured small: 2, 3 and 4 layers. Stacks shorter than SCALED_FROM run whole.
SMALL = (2, 3, 4)
SCALED_FROM = 8

_COUNTS = ("peak", "params", "buffers", "grads", "optimizer", "activations", "scratch", "saved")
_PHASES = ("forward", "backward", "optimizer step")

Run = tuple[MemoryEstimate, dict[str, ModuleMemory], dict[str, MemoryEstimate]]
Call = tuple[nn.Module, tuple[Any, ...], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Stack:
    """The model's one deep stack of layers: the ModuleList's path and its length."""

    path: str
    layers: int


class MemoryStep:
    """One step's estimate of a model (`call`: it and its inputs): where `build(n)` builds
    the same model with n layers (a Hugging Face spec) and it has one deep stack, from 2, 3
    and 4 layers when their counts lie on one line, else from the whole model. `scaled`
    says which the last estimate came from."""

    def __init__(self, call: Call, build: Callable[[int], Call] | None) -> None:
        self.call = call
        self.build = build
        self.stack = deep_stack(call[0]) if build is not None else None
        self.small: dict[int, Call] = {}
        self.scaled = False

    def estimate(self, setup: MemorySetup) -> tuple[MemoryEstimate, dict[str, ModuleMemory]]:
        if self.stack is not None:
            try:
                found = scaled(lambda n: estimate_phases(*self._with(n), setup), self.stack)
            except _NotAlike:
                found = None
            if found is not None:
                self.scaled = True
                return found
        self.scaled = False
        return estimate_memory(*self.call, setup)

    def _with(self, layers: int) -> Call:
        if layers not in self.small:
            assert self.build is not None and self.stack is not None
            self.small[layers] = self.build(layers)
            stack = self.small[layers][0].get_submodule(self.stack.path)
            if not isinstance(stack, nn.ModuleList) or len(stack) != layers:
                self.stack = None  # the loader cut another count: this model runs whole
                raise _NotAlike
        return self.small[layers]


class _NotAlike(Exception):
    """The model built with fewer layers is not the same stack, shorter."""


def deep_stack(model: nn.Module) -> Stack | None:
    """The one ModuleList of SCALED_FROM or more layers in `model`, where there is exactly one."""
    found = [
        Stack(name, len(module))
        for name, module in model.named_modules()
        if isinstance(module, nn.ModuleList) and len(module) >= SCALED_FROM
    ]
    return found[0] if len(found) == 1 else None


def scaled(
    run_with: Callable[[int], Run], stack: Stack
) -> tuple[MemoryEstimate, dict[str, ModuleMemory]] | None:
    """The estimate and the modules' shares of the model with `stack.layers` layers, from
    `run_with(n)` (the same model and step with n layers) for n in SMALL; None where the
    small runs do not lie on one line."""
    runs = {n: run_with(n) for n in SMALL}
    phases: list[MemoryEstimate] = []
    for phase in _PHASES:
        if not all(phase in runs[n][2] for n in SMALL):
            if any(phase in runs[n][2] for n in SMALL):
                return None
            continue
        found = _scaled_estimate([runs[n][2][phase] for n in SMALL], stack)
        if found is None:
            return None
        phases.append(found)
    if not phases:
        return None
    top = max(phases, key=lambda e: e.peak)  # the first phase of the highest, as a run says
    shares = _scaled_shares([runs[n][1] for n in SMALL], stack)
    if shares is None:
        return None
    # What the whole step saved is one count whichever phase peaks.
    saved = _line([runs[n][0].saved for n in SMALL], stack.layers)
    if saved is None:
        return None
    return replace(top, saved=saved), shares


def _line(values: list[int], layers: int) -> int | None:
    """The value at `layers` of the line through values at SMALL; None off a line."""
    step = values[1] - values[0]
    if values[2] - values[1] != step:
        return None
    return values[0] + (layers - SMALL[0]) * step


def _scaled_estimate(small: list[MemoryEstimate], stack: Stack) -> MemoryEstimate | None:
    first = small[0]
    if any(
        (e.mode, e.dtype, e.batch, e.master_weights, e.peak_phase)
        != (first.mode, first.dtype, first.batch, first.master_weights, first.peak_phase)
        for e in small
    ):
        return None
    at = _scaled_path([e.peak_at for e in small], stack)
    counts = {name: _line([getattr(e, name) for e in small], stack.layers) for name in _COUNTS}
    if at is None or None in counts.values():
        return None
    n = {name: int(value or 0) for name, value in counts.items()}
    return replace(
        first,
        peak_at=at,
        peak=n["peak"],
        params=n["params"],
        buffers=n["buffers"],
        grads=n["grads"],
        optimizer=n["optimizer"],
        activations=n["activations"],
        scratch=n["scratch"],
        saved=n["saved"],
    )


def _layer(path: str, stack: Stack) -> tuple[int, str] | None:
    """(the layer's index, the path inside it) for a path in the stack's layers."""
    found = re.fullmatch(rf"{re.escape(stack.path)}\.(\d+)((?:\..*)?)", path)
    return (int(found.group(1)), found.group(2)) if found else None


def _scaled_path(paths: list[str], stack: Stack) -> str | None:
    """The module at the peak with stack.layers layers: the same one outside the stack, or
    in the stack the same layer counted from its start or from its end."""
    inside = [_layer(p, stack) for p in paths]
    if all(i is None for i in inside):
        return paths[0] if len(set(paths)) == 1 else None
    if any(i is None for i in inside) or len({i[1] for i in inside if i}) != 1:
        return None
    index = [i[0] for i in inside if i]
    rest = inside[0][1] if inside[0] else ""
    if len(set(index)) == 1:
        return f"{stack.path}.{index[0]}{rest}"
    back = {n - j for n, j in zip(SMALL, index, strict=True)}
    if len(back) == 1:
        return f"{stack.path}.{stack.layers - back.pop()}{rest}"
    return None


def _scaled_shares(
    small: list[dict[str, ModuleMemory]], stack: Stack
) -> dict[str, ModuleMemory] | None:
    """Each module's share with stack.layers layers. Outside the stack, on a line per module.
    In it, per path inside a layer: the first layer's and the last's each on a line, and a
    layer between (in the runs of 3 and 4 layers) the same in both runs but for its live
    bytes, which grow by the same amount from one layer to the next."""
    L = stack.layers
    outside: dict[str, list[ModuleMemory]] = {}
    inside: dict[str, dict[tuple[int, int], ModuleMemory]] = {}
    for n, shares in zip(SMALL, small, strict=True):
        for path, share in shares.items():
            at = _layer(path, stack)
            if at is None:
                outside.setdefault(path, []).append(share)
            else:
                inside.setdefault(at[1], {})[(n, at[0])] = share
    found: dict[str, ModuleMemory] = {}
    for path, column in outside.items():
        if len(column) != len(SMALL):
            return None
        saved = _line([s.saved for s in column], L)
        live = _line([s.live for s in column], L)
        if saved is None or live is None:
            return None
        found[path] = ModuleMemory(saved=saved, live=live)
    for rest, points in inside.items():
        layers = _stack_layers(points, L)
        if layers is None:
            return None
        for index, share in enumerate(layers):
            found[f"{stack.path}.{index}{rest}"] = share
    return dict(sorted(found.items()))


def _stack_layers(
    points: Mapping[tuple[int, int], ModuleMemory], layers: int
) -> list[ModuleMemory] | None:
    """One path's share in each of `layers` layers, from its shares at (n layers, index)."""
    if set(points) != {(n, j) for n in SMALL for j in range(n)}:
        return None
    first = [points[(n, 0)] for n in SMALL]
    last = [points[(n, n - 1)] for n in SMALL]
    ends = []
    for column in (first, last):
        saved = _line([s.saved for s in column], layers)
        live = _line([s.live for s in column], layers)
        if saved is None or live is None:
            return None
        ends.append(ModuleMemory(saved=saved, live=live))
    # Between: layer 1 of the runs of 3 and 4, and layer 2 of 4.
    a, b, c = points[(3, 1)], points[(4, 1)], points[(4, 2)]
    if a != b or c.saved != b.saved:
        return None
    growth = c.live - b.live
    between = [
        ModuleMemory(saved=b.saved, live=b.live + (index - 1) * growth)
        for index in range(1, layers - 1)
    ]
    return [ends[0], *between, ends[1]]
