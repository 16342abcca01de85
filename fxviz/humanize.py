"""How numbers and shapes read on diagrams and in messages: `1×64×56×56`, `11.7M` params,
`6.61B` params, `1.8G` FLOPs."""

from __future__ import annotations

import re
from collections.abc import Sequence


def format_shape(shape: Sequence[int], expr: Sequence[str] | None = None) -> str:
    """`1×3×224×224`; with a symbolic trace's expressions, those (`B×3×H×W`), a sum in
    parentheses (`B×6×(H − 4)×(W − 4)`)."""
    if expr is not None:
        return "×".join(f"({d})" if _sum(d) else d for d in expr) if expr else "scalar"
    return "×".join(str(d) for d in shape) if shape else "scalar"


def _sum(expr: str) -> bool:
    """Whether an expression is a sum outside any parentheses (`H − 4`, not `(H − 4)·2`)."""
    depth = 0
    for char in expr:
        depth += char in "(⌊⌈"
        depth -= char in ")⌋⌉"
        if char == " " and depth == 0:
            return True
    return False


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
            return f"{_digits(size)} {suffix}" if suffix != "B" else f"{n} B"
        size /= 1024
    return f"{_digits(size)} TiB"


def _digits(size: float) -> str:
    """Three significant digits, and never an exponent: 1010 MiB, not 1.01e+03 MiB."""
    return f"{size:.0f}" if size >= 999.5 else f"{size:.3g}"


_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}


def parse_bytes(text: str) -> int | None:
    """'8GiB' -> 8589934592, '512MB' -> 512000000, '2g' -> 2 GiB (a bare letter is binary, as
    in ulimit and docker), '1e9' -> 1000000000; None when `text` is no size."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d*)?(?:e\d+)?)\s*([kmgt]?)(i?)(b?)\s*", text.lower())
    if not found:
        return None
    number, prefix, binary, unit = found.groups()
    if prefix and (binary or not unit):
        scale = 1024 ** "kmgt".index(prefix) * 1024
    else:
        scale = _UNITS[prefix]
    if binary and not prefix:
        return None
    return int(float(number) * scale)
