"""How numbers and shapes read on diagrams and in messages: `1×64×56×56`, `11.7M`, `1.8G`."""

from __future__ import annotations

from collections.abc import Sequence


def format_shape(shape: Sequence[int]) -> str:
    return "×".join(str(d) for d in shape) if shape else "scalar"


def format_count(n: int) -> str:
    """11689512 -> '11.7M', 833000 -> '833k'; counts under 1000 stay exact."""
    for limit, suffix in ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "k")):
        if n >= limit:
            return f"{n / limit:.3g}{suffix}"
    return str(n)
