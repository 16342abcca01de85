"""What makes a default picture one a person can read, judged on the picture itself: the
census (`benchmarks/pictures.py`, `pytest -m zoo`) and the picture-quality tests ask the same
questions of every model they draw.

- dead ends: a drawn value nothing reads (but the graph's outputs);
- unnamed constants: a tracer's own name (`_tensor_constant12`, `lifted_tensor_0`) in a label
  or in `fxviz explain`;
- stutter: a label line that repeats the one before it (`5 ops` / `5 ops: getitem ×4`);
- size: the laid-out picture in CSS pixels (96 dpi) against a screen (`SCREEN_PX`);
- boxes: how many boxes it draws.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fxviz.drawing import SCREEN_PX, DrawOptions, fitted, to_dot
from fxviz.explain import explain_lines
from fxviz.graph import Graph

LABEL = re.compile(r'^\s+(\S+) \[label=(?:"((?:[^"\\]|\\.)*)"|(\S+))(.*)\]$', re.M)
_SIZE = re.compile(rb'<svg width="([\d.]+)pt" height="([\d.]+)pt"')
UNNAMED = re.compile(r"_(tensor|param|lifted_tensor)_constant\d|\blifted_tensor_\d")


@dataclass(frozen=True, slots=True)
class Verdict:
    """One default picture, judged."""

    name: str
    boxes: int
    size_px: tuple[int, int]  # width, height
    dead_ends: tuple[str, ...] = ()
    unnamed: tuple[str, ...] = ()
    stutters: tuple[str, ...] = ()
    note: str = ""  # how the drawing made it fit a screen, if it had to

    @property
    def fits(self) -> bool:
        short, long = sorted(self.size_px)
        return short <= SCREEN_PX[0] and long <= SCREEN_PX[1]

    @property
    def clean(self) -> bool:
        return self.fits and not (self.dead_ends or self.unnamed or self.stutters)


def judge(name: str, graph: Graph, svg: bytes, options: DrawOptions | None = None) -> Verdict:
    """Judge the picture `svg` drawn of `graph` with `options` (the defaults by default)."""
    options = options or DrawOptions()
    drawn, note = fitted(graph, options)
    dot = to_dot(graph, options)
    texts = [dot, "\n".join(explain_lines(graph))]
    return Verdict(
        name=name,
        boxes=sum(1 for node, *_ in LABEL.findall(dot) if not node.startswith("legend_")),
        size_px=size_px(svg),
        dead_ends=tuple(dead_ends(drawn)),
        unnamed=tuple(sorted({m.group(0) for text in texts for m in UNNAMED.finditer(text)})),
        stutters=tuple(stutters(dot)),
        note=note,
    )


def dead_ends(drawn: Graph) -> list[str]:
    """The drawn nodes whose values nothing reads, the outputs aside."""
    read = {source for node in drawn.nodes for source in node.inputs}
    return [n.id for n in drawn.nodes if n.kind != "output" and n.id not in read]


def labels(dot: str) -> dict[str, list[str]]:
    """Each drawn box's label, line by line (the key's boxes left out)."""
    return {
        node: (quoted or bare).split("\\n")
        for node, quoted, bare, _ in LABEL.findall(dot)
        if not node.startswith("legend_")
    }


def stutters(dot: str) -> list[str]:
    """Label lines that repeat an earlier line of the same label, as `node: 'a' / 'a: b'`."""
    found = []
    for node, lines in labels(dot).items():
        for i, line in enumerate(lines):
            for other in lines[i + 1 :]:
                repeated = other.startswith(line) and other[len(line) : len(line) + 1] in ("", ":")
                if repeated and line:
                    found.append(f"{node}: {line!r} / {other!r}")
    return found


def size_px(svg: bytes) -> tuple[int, int]:
    """An SVG's width and height in CSS pixels (Graphviz writes points: 96 / 72 of them)."""
    found = _SIZE.search(svg)
    if found is None:
        return (0, 0)
    width, height = (round(float(v) * 4 / 3) for v in found.groups())
    return (width, height)
