"""What a drawing says about sharing: a module called more than once or held under two names,
a parameter tied to another module's. Counts hold each parameter once, where it is first held,
so without these words a second call, or a head tied to its embedding, shows no parameters
and no reason. One wording for every reader: boxes, `summary`, `explain`, the HTML panel."""

from __future__ import annotations

from fxviz.graph import Graph, Module, Node

MAX_ALIASES = 2


def sharing_words(graph: Graph, node: Node) -> list[str]:
    """`["2nd call", "also head_proj"]`, `["weight tied to emb.weight"]`; none for a module
    used once under one name, and no call count for a module that holds nothing (ResNet's
    one `relu` run twice has no parameters to miss)."""
    module = graph.module(node.target) if node.kind == "module" else None
    if module is None:
        return []
    words = []
    holds = module.params.total or module.buffers or module.aliases or module.tied
    if node.call is not None and holds:
        words.append(call_text(node.call.index, node.call.count))
    return words + module_words(module)


def module_words(module: Module) -> list[str]:
    """A module's other names and tied parameters: `also head_proj`, `weight tied to emb.weight`."""
    words = []
    if module.aliases:
        shown = ", ".join(module.aliases[:MAX_ALIASES])
        more = len(module.aliases) - MAX_ALIASES
        words.append(f"also {shown}" + (f" and {more} more" if more > 0 else ""))
    words += [f"{name} tied to {path}" for name, path in module.tied]
    return words


def call_text(index: int, count: int) -> str:
    """`1st of 2 calls`, `2nd call`."""
    return f"1st of {count} calls" if index == 1 else f"{ordinal(index)} call"


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
