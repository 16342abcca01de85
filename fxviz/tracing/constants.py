"""Names for the tensors a model makes as it runs, by the code that made them.

A tracer stores a tensor it cannot follow (a buffer viewed outside the graph, `torch.arange(49)`
computed once) as a constant, and names it `_tensor_constant12` or `lifted_tensor_0`: names
that mean nothing to a reader. Each tracer names such a constant here instead: by the buffer
it views (`relative_position_index`), else by the expression in the model's source that made
it (`torch.arange(49)`), else by the variable that held it.
"""

from __future__ import annotations

import functools
import inspect
import re
from types import CodeType

# How tracers name the constants they make up; none of these may reach a picture.
TRACER_NAME = re.compile(
    r"(^|\.)(c_)?_?(tensor_constant|param_constant|lifted_tensor_constant|lifted_tensor_)\d+$"
)

# Calls that make a tensor from numbers: `torch.arange(49)`, `torch.tensor([1.0, 2.0])`.
_FACTORY = re.compile(
    r"\btorch\.(arange|tensor|as_tensor|ones|zeros|full|eye|linspace|logspace|empty|"
    r"rand|randn|randint|ones_like|zeros_like|full_like|tril|triu|meshgrid|stack|cat)\("
)
MAX_LENGTH = 40


def is_tracer_name(target: str) -> bool:
    """`_tensor_constant12`, `attn.lifted_tensor_0`: a name a tracer made up."""
    return bool(TRACER_NAME.search(target))


def factory_call(code: str) -> str | None:
    """The one tensor-making call a line holds (`torch.arange(49)` in
    `coords = torch.arange(49).view(7, 7)`), with its arguments; None for none or several."""
    found = list(_FACTORY.finditer(code))
    if len(found) != 1:
        return None
    start = found[0].start()
    depth = 0
    for i in range(found[0].end() - 1, len(code)):
        depth += {"(": 1, ")": -1}.get(code[i], 0)
        if depth == 0:
            return clip(code[start : i + 1])
    return None


def assigned(code: CodeType, variable: str) -> str | None:
    """What `variable` is assigned in the function `code` belongs to: its tensor-making call
    where there is one, else the right-hand side (`coords = torch.arange(4)`: `torch.arange(4)`)."""
    for line in _source_lines(code):
        left, equals, right = line.partition("=")
        if equals and not right.startswith("=") and left.strip() == variable:
            return factory_call(right) or clip(right.strip())
    return None


@functools.cache
def _source_lines(code: CodeType) -> tuple[str, ...]:
    try:
        lines, _ = inspect.getsourcelines(code)
    except (OSError, TypeError):
        return ()
    return tuple(line.strip() for line in lines)


def clip(text: str) -> str:
    return text if len(text) <= MAX_LENGTH else text[: MAX_LENGTH - 1] + "…"


def node_name(target: str) -> str:
    """An fx node name for a constant's drawn name: `torch_arange_49` for `torch.arange(49)`,
    `attn_relative_position_index` for `attn.relative_position_index`, as fx names a buffer's."""
    return re.sub(r"\W+", "_", target).strip("_")[:MAX_LENGTH] or "constant"
