"""Shapes as the model sees them: each dim an expression of named input dims (`B×L×768`).

The model is run once more, by the recording tracer, on fake tensors whose input sizes are
symbols of a ShapeEnv (torch's own symbolic shapes, as torch.export and torch.compile trace
with): every op's output size is then the expression torch computes, and every decision the
model's code or an op takes on a size is a guard the ShapeEnv records. Three calls are made
from their inputs' dims instead of run (linear, attention, layer norm: record._SIZES_ONLY):
the same expressions at a fraction of the cost, with the checks they make on sizes. The
symbols are named for the reader (`name_dims`): each input's batch `B`, a token input's
length `L` (a decoder's `S`), an image's `H` and `W`, audio's `T`; `--dim NAME=INPUT.AXIS`
names any other.

`readable` writes an expression as people do: `⌊(H − 1)/2⌋ + 1` is `⌈H/2⌉`, nested floors
are one, products keep their factors (`L·12`); `evaluate` reads it back, so a test can check
each expression against shapes propagated at other sizes. `constraints` turns the guards
into findings: a dim fixed to one size (`H, W = 224`), a divisibility, an upper bound
(`L ≤ 512`); guards that only chose a path for small sizes (`≠ 1`) are not constraints.
"""

from __future__ import annotations

import ast
import functools
import math
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import sympy  # type: ignore[import-untyped]
import torch

from fxviz.errors import SpecError
from fxviz.graph import Constraint, Dim, Node

# Symbols in the order their terms are written.
ORDER = ("B", "L", "S", "T", "H", "W")
_AUDIO = ("input_features", "input_values", "audio", "waveform", "wav")


def name_dims(named: Sequence[tuple[str, Any]], given: Sequence[str] = ()) -> list[Dim]:
    """The input dims to make symbols, named: `named` is each forward argument and its value,
    `given` the user's `NAME=INPUT.AXIS`. Every input's first dim is the batch `B` (one
    symbol for all); integer inputs of two dims and more are tokens, their second dim `L`,
    or `S` for a decoder's (`decoder_input_ids`) where it differs from the encoder's; a float
    input of four dims is an image (`H`, `W`), of five a video (`T`, `H`, `W`); audio's
    samples or frames are `T`."""
    dims: list[Dim] = []
    for name, value in named:
        if not isinstance(value, torch.Tensor) or value.dim() == 0:
            continue
        shape = tuple(int(d) for d in value.shape)
        if value.dim() >= 2 or name in _AUDIO:
            dims.append(Dim("B", name, 0, shape[0]))
        if not value.is_floating_point() and value.dim() >= 2:
            dims.append(Dim("S" if name.startswith("decoder") else "L", name, 1, shape[1]))
        elif value.is_floating_point() and (name in _AUDIO or "audio" in name):
            if value.dim() >= 2:
                dims.append(Dim("T", name, value.dim() - 1, shape[-1]))
        elif value.is_floating_point() and value.dim() == 4:
            dims += [Dim("H", name, 2, shape[2]), Dim("W", name, 3, shape[3])]
        elif value.is_floating_point() and value.dim() == 5:
            dims += [Dim(n, name, a, shape[a]) for n, a in (("T", 2), ("H", 3), ("W", 4))]
    known = {name: value for name, value in named if isinstance(value, torch.Tensor)}
    for text in given:
        dim = _given_dim(text, known)
        dims = [d for d in dims if (d.input, d.axis) != (dim.input, dim.axis)] + [dim]
    return dims


def _given_dim(text: str, inputs: dict[str, torch.Tensor]) -> Dim:
    found = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*=\s*([A-Za-z_]\w*)\.(\d+)\s*", text)
    if found is None:
        raise SpecError(f"--dim {text}: write NAME=INPUT.AXIS, such as N=x.0")
    name, where, axis = found[1], found[2], int(found[3])
    if where not in inputs:
        known = ", ".join(inputs) or "none"
        raise SpecError(f"--dim {text}: the model has no tensor input {where!r} (it has {known})")
    tensor = inputs[where]
    if axis >= tensor.dim():
        raise SpecError(
            f"--dim {text}: {where} has {tensor.dim()} dims ({'×'.join(map(str, tensor.shape))})"
            f"; give an axis below {tensor.dim()}"
        )
    return Dim(name, where, axis, int(tensor.shape[axis]))


@dataclass
class Symbols:
    """The ShapeEnv of a symbolic run, and its symbols' names and sizes in this call."""

    env: Any
    names: dict[sympy.Symbol, str]
    sizes: dict[sympy.Symbol, int]

    def value(self, dim: Any) -> tuple[int, str]:
        """A dim's number in this call and its expression, read without guarding on it."""
        if not isinstance(dim, torch.SymInt):
            return int(dim), str(int(dim))
        expr = self.env.replace(dim.node.expr)
        number = self.at(expr, self.sizes)
        if number is None:  # a size read from values (`x[x > 0]`): no expression of ours
            return -1, "?"
        return number, readable(expr, self.names)

    @staticmethod
    def at(expr: sympy.Expr, sizes: dict[sympy.Symbol, int]) -> int | None:
        number = expr.xreplace({s: sympy.Integer(v) for s, v in sizes.items()})
        return int(number) if isinstance(number, sympy.Integer) else None


def make_symbols(
    dims: Sequence[Dim], other: frozenset[str] = frozenset()
) -> tuple[Symbols, dict[tuple[str, int], Any]]:
    """A ShapeEnv with one symbol per name, and the SymInt standing for each (input, axis).
    Sizes of 0 and 1 are not specialized (a batch of 1 stays `B`), nor are equal sizes made
    one symbol (a square image keeps `H` and `W`). A symbol's hint, the size torch decides
    paths with, is at least 2: a path taken only for a size of 1 is not the model's; for the
    names in `other`, one more (to tell a size the model checks from one an op fixed)."""
    from torch._dynamo.source import ConstantSource
    from torch.fx.experimental.symbolic_shapes import DimDynamic

    env = _shape_env()(specialize_zero_one=False, duck_shape=False)
    by_name: dict[str, Any] = {}
    names: dict[sympy.Symbol, str] = {}
    sizes: dict[sympy.Symbol, int] = {}
    for dim in dims:
        if dim.name in by_name:
            continue
        hint = max(dim.size, 2) + (dim.name in other)
        source = ConstantSource(f"fxviz_{dim.name}")
        symbol = env.create_symbol(
            hint, source, dynamic_dim=DimDynamic.DYNAMIC, do_not_specialize_zero_one=True
        )
        by_name[dim.name] = env.create_symintnode(symbol, hint=hint, source=source)
        names[symbol] = dim.name
        sizes[symbol] = dim.size
    where = {(d.input, d.axis): by_name[d.name] for d in dims}
    return Symbols(env, names, sizes), where


@functools.cache
def _shape_env() -> type:
    """torch's ShapeEnv, less the stack it walks for each guard and symbol to say where its
    user code made it (fxviz says which node did: the recorder reads each guard as it comes).
    The walk's first call imports torch.export and inductor to know which files are not user
    code, 0.6 s of a first `--symbolic` run; each walk after is a few milliseconds."""
    from torch._guards import SLoc
    from torch.fx.experimental.symbolic_shapes import ShapeEnv

    class QuietShapeEnv(ShapeEnv):
        def _get_stack_summary(
            self, is_debug: bool = False, framework_loc: str | None = None
        ) -> tuple[SLoc, str]:
            return SLoc(framework_loc, None), ""

    return QuietShapeEnv


def symbolic_value(value: Any, name: str, where: dict[tuple[str, int], Any]) -> Any:
    """`value` (a fake tensor, or any other input) with its named dims made symbols: a new
    tensor of its dtype and device (the values do not matter to shapes)."""
    if not isinstance(value, torch.Tensor):
        return value
    axes = [where.get((name, axis)) for axis in range(value.dim())]
    if not any(a is not None for a in axes):
        return value
    shape = [a if a is not None else int(d) for a, d in zip(axes, value.shape, strict=True)]
    return torch.empty(shape, dtype=value.dtype, device=value.device)


# Reading expressions: ⌊(Σ cᵢ·atomᵢ + c)/d⌋ is the normal form everything that rounds down
# reduces to, by ⌊⌊n/a⌋/b⌋ = ⌊n/(ab)⌋ and ⌊n/d⌋ + k = ⌊(n + kd)/d⌋.


@dataclass(frozen=True)
class _Floor:
    terms: tuple[tuple[str, int], ...]  # (atom as written, coefficient)
    const: int
    div: int


def readable(expr: sympy.Expr, names: dict[sympy.Symbol, str]) -> str:
    """`expr` as people write it: symbols by name, `⌈H/2⌉`, `⌊H/32⌋`, `L·12`, `H + 2`."""
    return _text(_normal(expr, names))


def _normal(expr: Any, names: dict[sympy.Symbol, str]) -> _Floor:
    from torch.utils._sympy.functions import FloorDiv

    if isinstance(expr, sympy.Integer | int):
        return _Floor((), int(expr), 1)
    if isinstance(expr, sympy.Symbol):
        return _Floor(((names.get(expr, str(expr)), 1),), 0, 1)
    if isinstance(expr, FloorDiv) and isinstance(expr.args[1], sympy.Integer):
        inner = _normal(expr.args[0], names)
        return _Floor(inner.terms, inner.const, inner.div * int(expr.args[1]))
    if isinstance(expr, sympy.Add):
        parts = [_normal(a, names) for a in expr.args]
        floors = [p for p in parts if p.div > 1]
        if len(floors) <= 1:
            div = floors[0].div if floors else 1
            terms: dict[str, int] = {}
            const = 0
            for p in parts:
                scale = 1 if p.div > 1 else div
                for atom, c in p.terms:
                    terms[atom] = terms.get(atom, 0) + c * scale
                const += p.const * scale
            return _Floor(tuple((a, c) for a, c in terms.items() if c), const, div)
    if isinstance(expr, sympy.Mul):
        number = 1
        factors: list[str] = []
        for factor in expr.args:
            if isinstance(factor, sympy.Integer):
                number *= int(factor)
                continue
            part = _normal(factor, names)
            if part.div == 1 and not part.const and len(part.terms) == 1:
                factors.append(part.terms[0][0])
                number *= part.terms[0][1]
            else:
                text = _text(part)
                factors.append(f"({text})" if " " in text else text)
        return _Floor((("·".join(sorted(factors, key=_order)), number),), 0, 1)
    return _Floor(((_opaque(expr, names), 1),), 0, 1)


def _opaque(expr: Any, names: dict[sympy.Symbol, str]) -> str:
    if isinstance(expr, sympy.Max | sympy.Min) or type(expr).__name__ in ("Max", "Min"):
        inner = ", ".join(sorted((readable(a, names) for a in expr.args), key=_order))
        return f"{type(expr).__name__.lower()}({inner})"
    if type(expr).__name__ in ("Mod", "PythonMod"):
        a, b = (readable(x, names) for x in expr.args)
        return f"({a} mod {b})"
    if isinstance(expr, sympy.Pow) and isinstance(expr.args[1], sympy.Integer):
        base = readable(expr.args[0], names)
        return "·".join([base] * int(expr.args[1])) if int(expr.args[1]) > 0 else str(expr)
    text = str(expr.xreplace({s: sympy.Symbol(n) for s, n in names.items()}))
    return text.replace("*", "·").replace("-", "−")


def _order(atom: str) -> tuple[int, str]:
    head = atom.lstrip("(⌈⌊")[:1]
    return (ORDER.index(head) if head in ORDER else len(ORDER), atom)


def _poly(terms: Iterable[tuple[str, int]], const: int) -> str:
    pieces: list[str] = []
    for atom, c in sorted(terms, key=lambda t: _order(t[0])):
        body = atom if abs(c) == 1 else f"{atom}·{abs(c)}"
        pieces.append(("−" if c < 0 else "+") + body)
    if const or not pieces:
        pieces.append(("−" if const < 0 else "+") + str(abs(const)))
    text = " ".join(f"{p[0]} {p[1:]}" for p in pieces)
    return text[2:] if text.startswith("+ ") else "−" + text[2:]


def _text(f: _Floor) -> str:
    if f.div == 1:
        return _poly(f.terms, f.const)
    if all(c % f.div == 0 for _, c in f.terms) and f.const % f.div == 0:
        return _poly(((a, c // f.div) for a, c in f.terms), f.const // f.div)
    whole, rest = divmod(f.const, f.div)
    inner = _poly(f.terms, 0)
    inner = f"({inner})" if " " in inner else inner
    if rest == 0:
        base = f"⌊{inner}/{f.div}⌋"
    elif rest == f.div - 1:
        base, whole = f"⌈{inner}/{f.div}⌉", whole
    else:
        base = f"⌊({_poly(f.terms, rest)})/{f.div}⌋"
    if whole == 0:
        return base
    return f"{base} {'+' if whole > 0 else '−'} {abs(whole)}"


_EVAL_SYNTAX = str.maketrans({"⌈": "C(", "⌉": ")", "⌊": "F(", "⌋": ")", "·": "*", "−": "-"})
_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: lambda a, b: Fraction(a) / Fraction(b),
    ast.Mod: operator.mod,
}


def evaluate(text: str, sizes: dict[str, int]) -> int:
    """The number an expression `readable` wrote stands for, at `sizes` (`{"H": 224}`)."""
    tree = ast.parse(text.translate(_EVAL_SYNTAX).replace(" mod ", " % "), mode="eval")

    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name):
            return sizes[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](value(node.left), value(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -value(node.operand)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            args = [value(a) for a in node.args]
            calls: dict[str, Callable[..., Any]] = {
                "C": math.ceil,
                "F": math.floor,
                "max": max,
                "min": min,
            }
            return calls[node.func.id](*args)
        raise ValueError(f"not an fxviz shape expression: {text!r}")

    result = value(tree.body)
    if isinstance(result, Fraction) and result.denominator != 1:
        raise ValueError(f"{text!r} is not a whole number at {sizes}")
    return int(result)


# Constraints: what the guards torch recorded say about the sizes that work.


def constraints(
    symbols: Symbols,
    guards: Sequence[tuple[str, Any]],
    nodes: Sequence[Node],
    ops: frozenset[str] = frozenset(),
) -> tuple[Constraint, ...]:
    """Readable constraints from `guards` ((node id, guard expression) as recorded), and from
    rounding: where a dim is divided down (`⌊H/32⌋`), the smallest size that leaves 1."""
    env, names = symbols.env, symbols.names
    found: dict[str, Constraint] = {}
    fixed: dict[int, list[tuple[str, str]]] = {}
    for node, guard in guards:
        for text in _guard_text(guard, names):
            if text.startswith("="):
                if _name_in(guard, names) not in ops:
                    fixed.setdefault(int(text[1:]), []).append((_name_in(guard, names), node))
            elif text not in found:
                found[text] = Constraint(text, node)
    out = [
        Constraint(f"{', '.join(dict.fromkeys(n for n, _ in named))} = {value}", named[0][1])
        for value, named in fixed.items()
    ]
    for symbol, name in names.items():
        bound = env.var_to_range.get(symbol)
        upper = getattr(bound, "upper", None)
        if isinstance(upper, sympy.Integer) and symbol not in env.replacements:
            text = f"{name} ≤ {int(upper)}"
            node = next((n for n, g in guards if symbol in g.free_symbols), "")
            found.setdefault(text, Constraint(text, node))
    out += list(found.values())
    out += _rounding(symbols, nodes)
    return tuple(out)


def _name_in(guard: Any, names: dict[sympy.Symbol, str]) -> str:
    return next((names[s] for s in guard.free_symbols if s in names), "?")


def _guard_text(guard: Any, names: dict[sympy.Symbol, str]) -> list[str]:
    """A guard as a constraint: "=224" for a dim fixed (grouped by the caller), "H: a
    multiple of 16", or nothing for a guard that chose a path (`≠ 1`, bounds: kept from the
    symbols' ranges instead)."""
    if isinstance(guard, sympy.Eq):
        left, right = guard.args
        if isinstance(right, sympy.Symbol) and isinstance(left, sympy.Integer):
            left, right = right, left
        if isinstance(left, sympy.Symbol) and isinstance(right, sympy.Integer):
            return [f"={int(right)}"]
        if isinstance(left, sympy.Symbol) and isinstance(right, sympy.Symbol):
            return [f"{names.get(left, left)} = {names.get(right, right)}"]
        if type(left).__name__ in ("Mod", "PythonMod") and right == 0:
            base, divisor = left.args
            return [f"{readable(base, names)}: a multiple of {readable(divisor, names)}"]
        if left.free_symbols or right.free_symbols:  # a product the model checks (fc1's 400)
            return [f"{readable(left, names)} = {readable(right, names)}"]
    return []


def _rounding(symbols: Symbols, nodes: Sequence[Node]) -> list[Constraint]:
    """For each dim some output divides down, the smallest size at which every output dim
    is still at least 1 (the others at this call's sizes)."""
    exprs: dict[str, str] = {}
    for node in nodes:
        for v in node.outputs:
            for text in v.expr or ():
                if "⌊" in text or "⌈" in text:
                    exprs.setdefault(text, node.id)
    out: list[Constraint] = []
    base = {n: symbols.sizes[s] for s, n in symbols.names.items()}
    for name in dict.fromkeys(symbols.names.values()):
        used = [(t, n) for t, n in exprs.items() if re.search(rf"\b{name}\b", t)]
        if not used:
            continue
        limit = base[name]
        smallest = limit
        for size in range(1, limit + 1):
            at = {**base, name: size}
            if all(evaluate(t, at) >= 1 for t, _ in used):
                smallest = size
                break
        if smallest > 1:
            worst = max(used, key=lambda u: _divisor(u[0]))
            out.append(Constraint(f"{name} ≥ {smallest} ({worst[0]} ≥ 1)", worst[1]))
    return out


def _divisor(text: str) -> int:
    return max((int(d) for d in re.findall(r"/(\d+)", text)), default=1)


def fixed_dims(symbols: Symbols) -> dict[str, int]:
    """The dims the run fixed to one size, by name."""
    env = symbols.env
    return {
        name: int(env.replacements[s])
        for s, name in symbols.names.items()
        if isinstance(env.replacements.get(s), sympy.Integer)
    }


def specialized(
    nodes: Sequence[Node], symbols: Symbols, ops: Iterable[str] = ()
) -> tuple[Node, ...]:
    """`nodes` with every expression that holds only dims the model fixed to one size (a
    ViT's `H = 224`) written as that size: such a dim does not vary. Dims an op fixed (`ops`)
    stay symbols up to that op."""
    from dataclasses import replace

    fixed = {n: v for n, v in fixed_dims(symbols).items() if n not in set(ops)}
    if not fixed:
        return tuple(nodes)
    free = set(symbols.names.values()) - set(fixed)

    def number(text: str) -> str:
        used = set(re.findall(r"[A-Za-z_]\w*", text)) - {"mod", "max", "min"}
        if used and not used & free:
            return str(evaluate(text, fixed))
        return text

    out = []
    for node in nodes:
        outputs = tuple(
            replace(v, expr=tuple(number(t) for t in v.expr)) if v.expr is not None else v
            for v in node.outputs
        )
        out.append(replace(node, outputs=outputs))
    return tuple(out)
