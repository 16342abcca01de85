"""Why each shape and parameter count is what it is: the arithmetic of a layer, filled in with
this call's numbers (`H_out = ⌊(32 + 2·0 − 1·(5 − 1) − 1) / 1⌋ + 1 = 28`).

Each formula is computed from the module's hyper-parameters and the input shape alone, then
checked against the shape torch propagated. A formula that disagrees is a bug in the formula:
the node then says so (`fxviz bug: …`) instead of showing arithmetic that is not true. Layers
with no formula here get none: their input and output shapes speak for themselves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from torch import fx, nn

from fxviz.humanize import format_shape
from fxviz.tracing.keys import VALUE

Shape = tuple[int, ...]
Why = tuple[tuple[str, ...], Shape | None]  # the lines, and the output shape they predict

BUG = "fxviz bug"
_AXES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}
_GATES = {"LSTM": (4, "input, forget, cell, output"), "GRU": (3, "reset, update, new")}


def why(n: fx.Node, module: nn.Module | None) -> tuple[str, ...]:
    """The explanation of one node of a module-level graph, checked against its output;
    `module`: the module a `call_module` node calls (None where the graph has no source)."""
    outputs = _shapes(n.meta.get(VALUE, ()))
    inputs = [
        s for a in n.args[:1] if isinstance(a, fx.Node) for s in _shapes(a.meta.get(VALUE, ()))
    ]
    if not outputs or not inputs:
        return ()
    try:
        if n.op == "call_module":
            if module is None:
                return ()
            lines, predicted = _module(module, inputs[0], n)
        elif n.op in ("call_function", "call_method"):
            lines, predicted = _function(n, inputs[0])
        else:
            return ()
    except (ZeroDivisionError, IndexError, TypeError, ValueError):
        return ()
    if predicted is not None and predicted != outputs[0]:
        return (
            f"{BUG}: its arithmetic gives {format_shape(predicted)} but torch computed "
            f"{format_shape(outputs[0])}; please report it",
        )
    return lines


def _submodule(root: nn.Module, n: fx.Node) -> nn.Module | None:
    """The module a call names; None for a program saved without its source (a `.pt2`), whose
    module calls are known by path and class only."""
    try:
        return root.get_submodule(str(n.target))
    except AttributeError:
        return None


def _shapes(values: Sequence[Any]) -> list[Shape]:
    return [tuple(v.shape) for v in values if v.is_tensor and v.shape is not None]


def _module(module: nn.Module, shape: Shape, n: fx.Node) -> Why:
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return _conv_transpose(module, shape)
    if isinstance(module, nn.modules.conv._ConvNd):
        return _conv(module, shape)
    if isinstance(module, nn.MaxPool1d | nn.MaxPool2d | nn.MaxPool3d):
        return _pool(module, shape, dilation=module.dilation)
    if isinstance(module, nn.AvgPool1d | nn.AvgPool2d | nn.AvgPool3d):
        return _pool(module, shape, dilation=1)
    if isinstance(
        module, nn.modules.pooling._AdaptiveAvgPoolNd | nn.modules.pooling._AdaptiveMaxPoolNd
    ):
        return _adaptive(module, shape)
    if isinstance(module, nn.Linear):
        return _linear(module, shape)
    if isinstance(module, nn.Embedding):
        return _embedding(module, shape)
    if isinstance(module, nn.RNNBase):
        return _recurrent(module, shape)
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return _batch_norm(module, shape)
    if isinstance(module, nn.LayerNorm):
        return _layer_norm(module, shape)
    if isinstance(module, nn.GroupNorm):
        return _group_norm(module, shape)
    if isinstance(module, nn.MultiheadAttention):
        return _attention(module, shape, n)
    if isinstance(module, nn.Flatten):
        return _flatten(shape, module.start_dim, module.end_dim)
    return (), None


def _n(values: Any, dims: int) -> tuple[Any, ...]:
    return tuple(values) if isinstance(values, Sequence) else (values,) * dims


def _per_axis(axes: Sequence[str], texts: Sequence[str]) -> list[str]:
    """`H_out = W_out = … = 28` when every axis does the same arithmetic, else one line each."""
    if len(set(texts)) == 1:
        return [" = ".join(f"{a}_out" for a in axes) + f" = {texts[0]}"]
    return [f"{a}_out = {t}" for a, t in zip(axes, texts, strict=True)]


def _params_line(parts: Sequence[int], bias: int) -> str:
    product = math.prod(parts)
    text = "·".join(map(str, parts)) + (f" + {bias}" if bias else "")
    return f"params = {text} = {product + bias:,}"


def _conv(m: nn.modules.conv._ConvNd, shape: Shape) -> Why:
    dims = len(m.kernel_size)
    spatial = shape[-dims:]
    texts, out = [], []
    for h, k, s, d, p in zip(
        spatial, m.kernel_size, m.stride, m.dilation, _padding(m, dims), strict=True
    ):
        if p is None:  # padding="same": the output keeps the input's size
            texts.append(f"{h} (padding='same')")
            out.append(h)
            continue
        o = (h + 2 * p - d * (k - 1) - 1) // s + 1
        texts.append(f"⌊({h} + 2·{p} − {d}·({k} − 1) − 1) / {s}⌋ + 1 = {o}")
        out.append(o)
    lines = _per_axis(_AXES[dims], texts)
    lines.append(f"C_out = {m.out_channels} (out_channels)")
    group_in = m.in_channels // m.groups
    lines.append(
        _params_line(
            (m.out_channels, group_in, *m.kernel_size), m.out_channels if m.bias is not None else 0
        )
        + (
            f" (groups={m.groups}: each filter sees {group_in} of {m.in_channels} channels)"
            if m.groups > 1
            else ""
        )
    )
    return tuple(lines), (*shape[: -dims - 1], m.out_channels, *out)


def _padding(m: nn.modules.conv._ConvNd, dims: int) -> tuple[int | None, ...]:
    if isinstance(m.padding, str):
        return (None,) * dims if m.padding == "same" else (0,) * dims
    return tuple(int(p) for p in m.padding)


def _conv_transpose(m: nn.modules.conv._ConvTransposeNd, shape: Shape) -> Why:
    dims = len(m.kernel_size)
    texts, out = [], []
    for h, k, s, d, p, op in zip(
        shape[-dims:],
        m.kernel_size,
        m.stride,
        m.dilation,
        _n(m.padding, dims),
        m.output_padding,
        strict=True,
    ):
        o = (h - 1) * s - 2 * p + d * (k - 1) + op + 1
        texts.append(f"({h} − 1)·{s} − 2·{p} + {d}·({k} − 1) + {op} + 1 = {o}")
        out.append(o)
    lines = _per_axis(_AXES[dims], texts)
    lines.append(f"C_out = {m.out_channels} (out_channels)")
    lines.append(
        _params_line(
            (m.in_channels, m.out_channels // m.groups, *m.kernel_size),
            m.out_channels if m.bias is not None else 0,
        )
    )
    return tuple(lines), (*shape[: -dims - 1], m.out_channels, *out)


def _pool(m: Any, shape: Shape, dilation: Any) -> Why:
    kernel = m.kernel_size
    dims = len(kernel) if isinstance(kernel, Sequence) else len(shape) - 2 if len(shape) > 2 else 1
    dims = min(dims, 3)
    kernels = _n(kernel, dims)
    strides = _n(m.stride or kernel, dims)
    pads, dils = _n(m.padding, dims), _n(dilation, dims)
    ceil = bool(m.ceil_mode)
    left, right = ("⌈", "⌉") if ceil else ("⌊", "⌋")
    texts, out = [], []
    for h, k, s, p, d in zip(shape[-dims:], kernels, strides, pads, dils, strict=True):
        span = h + 2 * p - d * (k - 1) - 1
        o = (-(-span // s) if ceil else span // s) + 1
        if ceil and (o - 1) * s >= h + p:
            o -= 1  # torch: the last window may not start in the right padding
        shown = f"{d}·({k} − 1)" if d != 1 else f"({k} − 1)"
        texts.append(f"{left}({h} + 2·{p} − {shown} − 1) / {s}{right} + 1 = {o}")
        out.append(o)
    lines = _per_axis(_AXES[dims], texts)
    lines.append(
        "no parameters: each window keeps its "
        + ("largest value" if "Max" in type(m).__name__ else "mean")
    )
    return tuple(lines), (*shape[:-dims], *out)


def _adaptive(m: Any, shape: Shape) -> Why:
    size = m.output_size
    dims = len(size) if isinstance(size, Sequence) else int(type(m).__name__[-2])
    sizes = _n(size, dims)
    out = tuple(h if o is None else int(o) for h, o in zip(shape[-dims:], sizes, strict=True))
    text = " × ".join(map(str, out))
    return (
        f"{' × '.join(f'{a}_out' for a in _AXES[dims])} = {text}: output_size, whatever the input "
        f"({' × '.join(map(str, shape[-dims:]))} here)",
    ), (*shape[:-dims], *out)


def _linear(m: nn.Linear, shape: Shape) -> Why:
    bias = m.out_features if m.bias is not None else 0
    return (
        f"features {m.in_features} → {m.out_features} (the last dimension; others pass through)",
        _params_line((m.in_features, m.out_features), bias),
    ), (*shape[:-1], m.out_features)


def _embedding(m: nn.Embedding, shape: Shape) -> Why:
    count = math.prod(shape)
    return (
        f"each of the {count} ids looks up a row of {m.embedding_dim}",
        f"params = {m.num_embeddings}·{m.embedding_dim} = {m.num_embeddings * m.embedding_dim:,} "
        f"(a table of {m.num_embeddings} rows)",
    ), (*shape, m.embedding_dim)


def _recurrent(m: nn.RNNBase, shape: Shape) -> Why:
    gates, names = _GATES.get(m.mode, (1, ""))
    directions = 2 if m.bidirectional else 1
    hidden_out = m.proj_size or m.hidden_size
    batched = len(shape) == 3
    length = shape[1] if m.batch_first and batched else shape[0]
    batch = (shape[0] if m.batch_first else shape[1]) if batched else 1
    out_features = directions * hidden_out
    output: Shape
    if batched:
        order = "N × L" if m.batch_first else "L × N"
        pair = f"{batch} × {length}" if m.batch_first else f"{length} × {batch}"
        output = (batch, length, out_features) if m.batch_first else (length, batch, out_features)
        lines = [f"output = {order} × D·H_out = {pair} × {directions}·{hidden_out}"]
        state = f"{directions}·{m.num_layers} × {batch} × "
    else:
        output = (length, out_features)
        lines = [f"output = L × D·H_out = {length} × {directions}·{hidden_out}"]
        state = f"{directions}·{m.num_layers} × "
    lines.append(f"h_n = D·num_layers × {'N × ' if batched else ''}H_out = {state}{hidden_out}")
    if m.mode == "LSTM":
        lines.append(
            f"c_n = D·num_layers × {'N × ' if batched else ''}hidden = {state}{m.hidden_size}"
        )
    gate = f"{gates} gates ({names}) · " if gates > 1 else ""
    rows = gates * m.hidden_size
    size = m.input_size
    lines.append(f"weight_ih_l0: {gate}{m.hidden_size} hidden × {size} input = {rows} × {size}")
    lines.append(
        f"weight_hh_l0: {gate}{m.hidden_size} hidden × {hidden_out} = {rows} × {hidden_out}"
    )
    if m.bias:
        lines.append(f"bias_ih_l0, bias_hh_l0: {gates}·{m.hidden_size} = {rows} each")
    if m.proj_size:
        lines.append(f"weight_hr_l0: {m.proj_size} proj × {m.hidden_size} hidden")
    if m.num_layers > 1 or directions > 1:
        lines.append(
            f"{m.num_layers} layers × {directions} direction{'s' if directions > 1 else ''} "
            f"of these; layers after the first read {out_features} features"
        )
    return tuple(lines), output


def _norm_params(module: nn.Module, names: str, count: int) -> str:
    frozen = any(not p.requires_grad for p in module.parameters(recurse=False))
    return f"{names} = {count:,} " + ("frozen (requires_grad off)" if frozen else "trainable")


def _batch_norm(m: nn.modules.batchnorm._BatchNorm, shape: Shape) -> Why:
    c = m.num_features
    lines = [f"normalizes each of the {c} channels over the batch and every position"]
    if m.affine:
        lines.append(_norm_params(m, f"parameters weight, bias: 2·{c}", 2 * c))
    if m.track_running_stats:
        lines.append(
            f"buffers (saved, not trained) running_mean, running_var, num_batches_tracked: "
            f"2·{c} + 1 = {2 * c + 1:,}"
        )
    return tuple(lines), shape


def _layer_norm(m: nn.LayerNorm, shape: Shape) -> Why:
    dims = tuple(m.normalized_shape)
    count = math.prod(dims)
    plural = "s" if len(dims) > 1 else ""
    lines = [f"normalizes over the last {len(dims)} dimension{plural} ({format_shape(dims)})"]
    if m.elementwise_affine:
        names = "weight, bias" if m.bias is not None else "weight"
        factor = 2 if m.bias is not None else 1
        lines.append(_norm_params(m, f"parameters {names}: {factor}·{count}", factor * count))
    lines.append("no buffers: nothing is saved between batches")
    return tuple(lines), shape


def _group_norm(m: nn.GroupNorm, shape: Shape) -> Why:
    c, g = m.num_channels, m.num_groups
    lines = [f"{g} groups of {c // g} channels, each normalized on its own"]
    if m.affine:
        lines.append(_norm_params(m, f"parameters weight, bias: 2·{c}", 2 * c))
    return tuple(lines), shape


def _attention(m: nn.MultiheadAttention, shape: Shape, n: fx.Node) -> Why:
    e, h = m.embed_dim, m.num_heads
    key = n.args[1] if len(n.args) > 1 and isinstance(n.args[1], fx.Node) else None
    key_shapes = _shapes(key.meta.get(VALUE, ())) if key is not None else []
    seq = 1 if m.batch_first and len(shape) == 3 else 0
    length = shape[seq]
    source = key_shapes[0][seq] if key_shapes else length
    return (
        f"{h} heads × {e // h} head_dim = {e} embed_dim",
        f"per head, scores L × S = {length} × {source}: softmax(Q·Kᵀ / √{e // h}) weights V",
        f"params = in_proj 3·{e}·{e} + 3·{e}, out_proj {e}·{e} + {e}",
    ), None


def _function(n: fx.Node, shape: Shape) -> Why:
    name = str(n.target) if n.op == "call_method" else getattr(n.target, "__name__", "")
    if name == "flatten":
        start = _arg(n, 1, "start_dim", 0)
        end = _arg(n, 2, "end_dim", -1)
        return _flatten(shape, start, end)
    if name in ("view", "reshape"):
        sizes = n.args[1:] if n.op == "call_method" else n.args[1:2]
        if len(sizes) == 1 and isinstance(sizes[0], list | tuple):
            sizes = tuple(sizes[0])
        numbers = tuple(_number(s) for s in sizes)
        if not numbers or None in numbers:
            return (), None
        return _reshape(shape, numbers)  # type: ignore[arg-type]
    if (
        name == "scaled_dot_product_attention"
        and len(n.args) > 1
        and isinstance(n.args[1], fx.Node)
    ):
        keys = _shapes(n.args[1].meta.get(VALUE, ()))
        if keys and len(shape) >= 2:
            heads = f"{shape[-3]} heads, " if len(shape) >= 4 else ""
            return (
                f"{heads}per head scores L × S = {shape[-2]} × {keys[0][-2]}: "
                f"softmax(Q·Kᵀ / √{shape[-1]}) weights V",
            ), None
    return (), None


def _number(size: Any) -> int | None:
    """A size argument as a number: a constant, or a value computed from shapes (`x.shape[0]`)."""
    if isinstance(size, int):
        return size
    if not isinstance(size, fx.Node):
        return None
    values = size.meta.get(VALUE, ())
    if len(values) == 1 and values[0].kind == "int" and values[0].text is not None:
        return int(values[0].text)
    return None


def _arg(n: fx.Node, position: int, keyword: str, default: int) -> int:
    value = n.args[position] if len(n.args) > position else n.kwargs.get(keyword, default)
    if not isinstance(value, int):
        raise TypeError(keyword)
    return value


def _flatten(shape: Shape, start: int, end: int) -> Why:
    start, end = start % len(shape), end % len(shape)
    merged = shape[start : end + 1]
    size = math.prod(merged)
    text = f"merges dims {start}–{end}: {'·'.join(map(str, merged))} = {size}"
    return (text,), (*shape[:start], size, *shape[end + 1 :])


def _reshape(shape: Shape, sizes: Shape) -> Why:
    total = math.prod(shape)
    lines = []
    if -1 in sizes:
        known = math.prod(s for s in sizes if s != -1)
        resolved = total // known
        lines.append(f"-1 = {'·'.join(map(str, shape))} / {known} = {resolved}")
        sizes = tuple(resolved if s == -1 else s for s in sizes)
    lines += _regroup(shape, sizes)
    return tuple(lines), sizes


def _regroup(before: Shape, after: Shape) -> list[str]:
    """Which dimensions merge (`16·5·5 = 400`) or split (`768 = 12·64`)."""
    lines: list[str] = []
    i, j = 0, 0
    while i < len(before) and j < len(after):
        a, b, i2, j2 = before[i], after[j], i + 1, j + 1
        while a != b and i2 <= len(before) and j2 <= len(after):
            if a < b and i2 < len(before):
                a *= before[i2]
                i2 += 1
            elif b < a and j2 < len(after):
                b *= after[j2]
                j2 += 1
            else:
                return lines
        left, right = before[i:i2], after[j:j2]
        if len(left) > 1 and len(right) == 1:
            lines.append(f"{'·'.join(map(str, left))} = {right[0]}")
        elif len(right) > 1 and len(left) == 1:
            lines.append(f"{left[0]} = {'·'.join(map(str, right))}")
        i, j = i2, j2
    return lines


def mismatch(n: fx.Node, root: nn.Module) -> str:
    """When a layer rejects what it is given: which layer, what it expects, the arithmetic
    that led to what it got, and which number to change. "" for failures it cannot read."""
    inputs = [
        s for a in n.args[:1] if isinstance(a, fx.Node) for s in _shapes(a.meta.get(VALUE, ()))
    ]
    if n.op != "call_module" or not inputs:
        return ""
    module, shape = _submodule(root, n), inputs[0]
    if module is None:
        return ""
    name = f"{n.target} ({type(module).__name__})"
    if isinstance(module, nn.Linear) and shape[-1] != module.in_features:
        return _linear_mismatch(n, module, shape, name, root)
    channels = getattr(module, "in_channels", None) or getattr(module, "num_features", None)
    if isinstance(channels, int) and len(shape) >= 2 and shape[1] != channels:
        said = f"{name} expects {channels} channels but gets {shape[1]} ({format_shape(shape)})"
        source = n.args[0]
        if isinstance(source, fx.Node) and source.op == "placeholder":
            wanted = (shape[0], channels, *shape[2:])
            return f"{said}: the input is the likely culprit (--input {','.join(map(str, wanted))})"
        return f"{said} from the layer before it: the model is the likely culprit"
    return ""


def _path(n: fx.Node) -> list[fx.Node]:
    """The nodes from the input to `n`, following each one's first tensor argument."""
    path = [n]
    while path[-1].args and isinstance(path[-1].args[0], fx.Node):
        path.append(path[-1].args[0])
    return path[::-1]


def _linear_mismatch(n: fx.Node, m: nn.Linear, shape: Shape, name: str, root: nn.Module) -> str:
    got, wanted = shape[-1], m.in_features
    said = f"{name} expects {wanted} input features but gets {got}"
    path = _path(n)
    flat = next((p for p in reversed(path) if _flattens(p, root)), None)
    if flat is None or not isinstance(flat.args[0], fx.Node):
        return f"{said}; set in_features={got} in {n.target}, or check the input"
    before = _shapes(flat.args[0].meta.get(VALUE, ()))
    if not before or len(before[0]) < 3:
        return f"{said}; set in_features={got} in {n.target}, or check the input"
    c, spatial = before[0][1], before[0][2:]
    maps_got = "·".join(map(str, spatial))
    fix_model = f"set in_features={got} in {n.target}"
    side = round((wanted / c) ** (1 / len(spatial))) if wanted % c == 0 else 0
    if not side or side ** len(spatial) * c != wanted or len(set(spatial)) != 1:
        return f"{name} expects {wanted} but gets {got} = {c}·{maps_got}; {fix_model}"
    said = f"{name} expects {wanted} = {c}·{'·'.join([str(side)] * len(spatial))}"
    said += f" but gets {got} = {c}·{maps_got}"
    start = _shapes(path[0].meta.get(VALUE, ()))
    size = _input_size(start[0], path[1 : path.index(flat)], side, root) if start else None
    if size is None:
        return f"{said}; {fix_model}"
    given, dims = start[0], len(spatial)
    command = ",".join(map(str, (*given[:-dims], *[size] * dims)))
    return (
        f"{said}: the input is {'×'.join(map(str, given[-dims:]))}; "
        f"{'×'.join([str(side)] * dims)} maps need a {'×'.join([str(size)] * dims)} input "
        f"(--input {command}), or {fix_model}"
    )


def _flattens(p: fx.Node, root: nn.Module) -> bool:
    if p.op == "call_module":
        return isinstance(_submodule(root, p), nn.Flatten)
    name = str(p.target) if p.op == "call_method" else getattr(p.target, "__name__", "")
    return name in ("flatten", "view", "reshape")


def _input_size(given: Shape, layers: list[fx.Node], side: int, root: nn.Module) -> int | None:
    """The smallest square input whose maps come out `side` wide after `layers`; None when a
    layer on the way changes the maps by arithmetic this module has no formula for."""
    dims = len(given) - 2
    for size in range(1, 8 * max(given[2:]) + 64):
        shape: Shape | None = (*given[:2], *[size] * dims)
        for p in layers:
            module = _submodule(root, p) if p.op == "call_module" else None
            predicted = None
            if module is not None and shape is not None:
                try:
                    _, predicted = _module(module, shape, p)
                except (ZeroDivisionError, IndexError, TypeError, ValueError):
                    return None
            if predicted is None and not _keeps_maps(p):
                return None
            shape = predicted or shape
        if shape is not None and shape[2:] == (side,) * dims:
            return size
    return None


def _keeps_maps(p: fx.Node) -> bool:
    """A function that leaves the spatial sizes as they are (relu, add, dropout)."""
    source = p.args[0] if p.args else None
    if not isinstance(source, fx.Node):
        return False
    before, after = _shapes(source.meta.get(VALUE, ())), _shapes(p.meta.get(VALUE, ()))
    return bool(before and after) and before[0][2:] == after[0][2:]
