"""How numbers and shapes read on diagrams and in messages: `1×64×56×56`, `11.7M` params,
`6.61B` params, `1.8G` FLOPs."""

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


def format_params(n: int) -> str:
    """Parameter counts as people write them: 6.61B (not G, which is for FLOPs), 11.7M."""
    return format_count(n).replace("G", "B")


def format_bytes(n: int) -> str:
    """3211264 -> '3.06 MiB': memory in powers of 1024."""
    size = float(n)
    for suffix in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.3g} {suffix}" if suffix != "B" else f"{n} B"
        size /= 1024
    return f"{size:.3g} TiB"
