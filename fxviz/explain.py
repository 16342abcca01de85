"""`fxviz explain`: the model walked through layer by layer, each with the arithmetic that
makes its shapes and parameter counts (the `why` the tracer recorded on each node), and the
rest stated plainly as what goes in and what comes out. Reads a Graph only: saved JSON works
without torch."""

from __future__ import annotations

from fxviz.graph import Graph, Node
from fxviz.humanize import format_shape
from fxviz.sharing import sharing_words


def explain_lines(graph: Graph) -> list[str]:
    by_id = {n.id: n for n in graph.nodes}
    lines = [f"{graph.name}, traced with {graph.tracer} on {graph.device}"]
    if graph.symbolic is not None:
        lines += [
            "shapes in symbols: "
            + ", ".join(f"{d.name} = {d.input} dim {d.axis}" for d in graph.symbolic.dims)
            + "; each line gives them, then this call's numbers ("
            + ", ".join(f"{d.name} = {d.size}" for d in graph.symbolic.dims)
            + ")",
            *(
                f"needs {c.text} (at {c.node or 'the rounding'})"
                for c in graph.symbolic.constraints
            ),
        ]
    for node in graph.nodes:
        if node.kind == "constant":
            continue
        lines.append(f"{_name(graph, node)}: {_flow(node, by_id)}")
        lines += [f"    {line}" for line in node.why]
    params = graph.totals.params
    lines.append(
        f"total: {params.total:,} params ({params.trainable:,} trainable), "
        f"{graph.totals.buffers:,} buffer elements, {graph.totals.flops:,} FLOPs"
    )
    return lines


def _name(graph: Graph, node: Node) -> str:
    if node.kind == "input":
        return f"input {node.target}"
    if node.kind == "output":
        return "output"
    if node.kind == "module":
        module = graph.module(node.target)
        hparams = f"({module.hparams})" if module is not None else ""
        shared = "; ".join(sharing_words(graph, node))
        return f"{node.target}{f' ({shared})' if shared else ''} · {node.module_class}{hparams}"
    arguments = f" {node.arguments}" if node.arguments else ""
    return f"{node.target.rpartition('.')[2]}{arguments}"


def _flow(node: Node, by_id: dict[str, Node]) -> str:
    """`1×6×28×28 → 1×6×14×14`: the tensors read and the tensors made."""
    out = _shapes(node)
    if node.kind == "input":
        return out
    read = [_shapes(by_id[i]) for i in node.inputs if i in by_id and by_id[i].kind != "constant"]
    inputs = ", ".join(text for text in read if text)
    if node.kind == "output":
        return inputs
    flow = f"{inputs or '–'} → {out}"
    if not any(v.expr for v in node.outputs):
        return flow
    numbers = [_shapes(by_id[i], False) for i in node.inputs if i in by_id]
    here = ", ".join(t for t in numbers if t)
    return f"{flow}  (here {here or '–'} → {_shapes(node, False)})"


def _shapes(node: Node, symbolic: bool = True) -> str:
    return ", ".join(
        format_shape(v.shape or (), v.expr if symbolic else None)
        for v in node.outputs
        if v.is_tensor
    ) or (", ".join(v.text or v.kind for v in node.outputs))
