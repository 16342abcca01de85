"""The one drawing path: a Graph and one `DrawOptions` -> the default picture, as DOT or files.

`fxviz draw`, `fxviz render`, `fxviz gallery`, `fxviz.draw`, `Graph.save` and `Graph.to_dot`
all come through here, so every entry point draws the same picture of the same graph: views
first (fold, leaf boxes, line groups, depth), then DOT, then a renderer. JSON output is always
the full traced graph.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields, replace
from functools import partial
from pathlib import Path
from typing import Any, Literal

from fxviz.diff import GraphDiff
from fxviz.errors import SpecError, did_you_mean
from fxviz.exporters import GRAPH_FORMATS, export, mermaid, save_files
from fxviz.exporters.diffdot import diff_to_dot
from fxviz.exporters.dot import DEFAULT_SHOW, DotOptions, parse_show
from fxviz.exporters.dot import to_dot as dot_source
from fxviz.exporters.render import RENDERERS, Renderer, layout_px
from fxviz.graph import LOOP, Graph, register_drawing
from fxviz.views import apply_views
from fxviz.views.steps import INDEPENDENT

Rankdir = Literal["TB", "LR"]


@dataclass(frozen=True, slots=True)
class DrawOptions:
    """What a picture looks like. `views=False` draws the raw traced graph; `all_ops` keeps
    folding and depth but draws every op; `expand` names module classes to keep open;
    `title` replaces the model's name as the heading. With no `depth`, a picture too big for
    a screen is folded harder, then drawn shallower, until it fits (`fitted`), unless `fit`
    is off (`--depth all`)."""

    depth: int | None = None
    fit: bool = True
    fold: bool = True
    all_ops: bool = False
    expand: tuple[str, ...] = ()
    views: bool = True
    show: frozenset[str] = DEFAULT_SHOW
    rankdir: Rankdir = "TB"
    renderer: Renderer = "auto"
    title: str = ""
    color: str = ""

    @property
    def dot(self) -> DotOptions:
        return DotOptions(rankdir=self.rankdir, show=self.show, title=self.title, color=self.color)


OPTION_NAMES = tuple(f.name for f in fields(DrawOptions))

# How an option is spelled where the user wrote it, for error messages.
Spelling = Callable[[str], str]


def cli_spelling(name: str) -> str:
    return "--" + name.replace("_", "-")


def python_spelling(name: str) -> str:
    return f"{name}="


def draw_options(spell: Spelling = python_spelling, **options: Any) -> DrawOptions:
    """Options as a user writes them (`show="params,flops"`, `rankdir="lr"`, `depth=2`,
    `expand="LSTM"`), checked: a wrong name or value is a SpecError saying what to use."""
    for name in options:
        if name not in OPTION_NAMES:
            hint = did_you_mean(name, OPTION_NAMES, shown=spell) or f"use {', '.join(OPTION_NAMES)}"
            raise SpecError(f"unknown drawing option {spell(name)}; {hint}")
    given = {k: v for k, v in options.items() if v is not None}
    depth = _depth(given.get("depth"), spell)
    return DrawOptions(
        depth=None if depth == "all" else depth,
        fit=depth != "all" and _flag(given, "fit", True, spell),
        fold=_flag(given, "fold", True, spell),
        all_ops=_flag(given, "all_ops", False, spell),
        expand=_names(given.get("expand", ()), spell),
        views=_flag(given, "views", True, spell),
        show=_show(given.get("show", DEFAULT_SHOW), spell),
        rankdir=_rankdir(given.get("rankdir", "TB"), spell),
        renderer=_renderer(given.get("renderer", "auto"), spell),
        title=_title(given.get("title", ""), spell),
        color=_color(given.get("color", ""), spell),
    )


COLORS = ("memory",)


def _color(value: object, spell: Spelling) -> str:
    """What fills the boxes beyond their kind: "" (nothing) or memory (a heat scale of the
    bytes each module keeps, for a graph with a memory estimate)."""
    if value in ("", None, "none"):
        return ""
    if value not in COLORS:
        raise SpecError(
            f"{spell('color')} {value!r}: give memory (a heat scale of the bytes each module "
            "keeps: `fxviz memory MODEL -o m.svg` draws it), or none"
        )
    return str(value)


def _title(value: object, spell: Spelling) -> str:
    if not isinstance(value, str):
        raise SpecError(f"{spell('title')} {value!r}: give the heading as text")
    return value


def _depth(value: object, spell: Spelling) -> int | Literal["all"] | None:
    """A depth as written: None (every level, shallower if that is too big for a screen),
    "all" (every level, whatever its size), or a whole number."""
    if value is None or value == "all":
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(
            f"{spell('depth')} {value!r}: give a whole number of path components, 1 or more "
            "(1 draws each top-level module as one box), or all for every level"
        )
    return value


def _flag(given: dict[str, Any], name: str, default: bool, spell: Spelling) -> bool:
    value = given.get(name, default)
    if not isinstance(value, bool):
        raise SpecError(f"{spell(name)} {value!r}: give true or false")
    return value


def _names(value: object, spell: Spelling) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Iterable) or not all(isinstance(i, str) and i for i in items):
        raise SpecError(f"{spell('expand')} {value!r}: give module class names such as LSTM")
    return tuple(items)


def _show(value: object, spell: Spelling) -> frozenset[str]:
    if isinstance(value, frozenset):
        return parse_show(",".join(["none", *sorted(value)]), spell("show"))
    if not isinstance(value, str):
        raise SpecError(f"{spell('show')} {value!r}: give a comma-separated list such as params")
    return parse_show(value, spell("show"))


def _rankdir(value: object, spell: Spelling) -> Rankdir:
    upper = value.upper() if isinstance(value, str) else value
    if upper == "TB":
        return "TB"
    if upper == "LR":
        return "LR"
    raise SpecError(f"{spell('rankdir')} {value!r}: choose TB or LR")


def _renderer(value: object, spell: Spelling) -> Renderer:
    for choice in RENDERERS:
        if value == choice:
            return choice
    hint = did_you_mean(str(value), RENDERERS)
    raise SpecError(
        f"{spell('renderer')} {value!r}: {hint + ' ' if hint else ''}"
        f"choose one of {', '.join(RENDERERS)}"
    )


def picture(graph: Graph, options: DrawOptions) -> Graph:
    """The graph a picture draws: the views applied, unless `views` is off; at the depth
    that fits a screen when no depth is given and every level would not (`fitted`)."""
    return fitted(graph, options)[0]


def _viewed(graph: Graph, options: DrawOptions, depth: int | None, ranges: bool = False) -> Graph:
    return apply_views(
        graph,
        depth=depth,
        fold=options.fold,
        every_op=options.all_ops,
        expand=options.expand,
        ranges=ranges,
    )


# A screen's worth, in CSS pixels (96 dpi): the shorter side, the longer side.
SCREEN_PX = (2500, 20_000)
# Fewer boxes than this always fit: laying them out to check would only cost time.
FITS_UNMEASURED = 40
MEASURE_TIMEOUT_S = 60


def fitted(graph: Graph, options: DrawOptions) -> tuple[Graph, str]:
    """The picture, and the note that says how it was chosen ("" when drawn as asked).

    With no `depth`, every level is drawn when its layout fits `SCREEN_PX`; else it is folded
    harder (blocks alike but for their sizes, loops of independent steps: `apply_views`'
    `ranges`), and if that does not fit either, drawn at the deepest `--depth` that fits,
    each depth tried as usual and then folded harder, with the note that says which (`drawn
    at --depth 3 to fit a screen; --depth all for every level`): the depth is the last
    resort. Layouts are measured with the picture's own renderer and are cached, so the
    picture that fits is not laid out twice."""
    if not options.views:
        return graph, ""
    key = (id(graph), options)
    if key in _FITTED and _FITTED[key][0] is graph:
        return _FITTED[key][1]
    result = _fit(graph, options)
    if len(_FITTED) >= 4:
        _FITTED.pop(next(iter(_FITTED)))
    _FITTED[key] = (graph, result)
    return result


_EVERY_LEVEL = "--depth all for every level"
_FITTED: dict[tuple[int, DrawOptions], tuple[Graph, tuple[Graph, str]]] = {}


def _fit(graph: Graph, options: DrawOptions) -> tuple[Graph, str]:
    drawn = _viewed(graph, options, options.depth)
    if options.depth is not None or not options.fit or _fits(drawn, options):
        return drawn, ""
    folded = False
    if options.fold:
        ranges = _viewed(graph, options, None, ranges=True)
        folded = len(ranges.nodes) < len(drawn.nodes)
        if folded and _fits(ranges, options):
            return ranges, f"{_folded_harder(ranges)} to fit a screen; {_EVERY_LEVEL}"
        drawn = ranges if folded else drawn
    deepest = max((node.owner.count(".") + 1 for node in drawn.nodes if node.owner), default=1)
    # The deepest depth that fits, each depth folded as usual first, then harder.
    for depth in range(deepest - 1, 0, -1):
        for harder in (False, True) if folded else (False,):
            candidate = _viewed(graph, options, depth, ranges=harder)
            if _fits(candidate, options):
                how = f"{_folded_harder(candidate)} and drawn" if harder else "drawn"
                return candidate, f"{how} at --depth {depth} to fit a screen; {_EVERY_LEVEL}"
    return drawn, "too big for a screen at any depth; --depth 1 draws the fewest boxes"


def _folded_harder(drawn: Graph) -> str:
    """What folding for a screen folded: `blocks alike but for their sizes folded`, `loops
    of independent steps folded`, or both."""
    folded = []
    if any(m.varies for m in drawn.modules):
        folded.append("blocks alike but for their sizes")
    if any(m.class_name == LOOP and m.hparams == INDEPENDENT for m in drawn.modules):
        folded.append("loops of independent steps")
    return f"{' and '.join(folded) or 'blocks'} folded"


def _fits(drawn: Graph, options: DrawOptions) -> bool:
    if len(drawn.nodes) < FITS_UNMEASURED:
        return True
    size = layout_px(dot_source(drawn, options.dot), options.renderer, MEASURE_TIMEOUT_S)
    if size is None:
        return True  # nothing to measure with: draw as asked
    short, long = sorted(size)
    return short <= SCREEN_PX[0] and long <= SCREEN_PX[1]


def to_dot(graph: Graph, options: DrawOptions | None = None) -> str:
    """DOT source of the picture of `graph`."""
    options = options or DrawOptions()
    drawn, note = fitted(graph, options)
    return dot_source(drawn, replace(options.dot, note=note))


def to_mermaid(graph: Graph, options: DrawOptions | None = None, fmt: str = "mermaid") -> str:
    """The picture of `graph` as Mermaid (`fmt` "mermaid"), or in a Markdown fence."""
    options = options or DrawOptions()
    drawn = picture(graph, options)
    if fmt == "markdown":
        return mermaid.to_markdown(drawn, options.dot)
    return mermaid.to_mermaid(drawn, options.dot)


def to_html(graph: Graph, options: DrawOptions | None = None) -> str:
    """The picture of `graph` as one page to explore: every box of the whole picture, every
    module closed or open in place."""
    from fxviz.exporters import html  # not on the start-up path: a page is rarely asked for

    options = options or DrawOptions()
    drawn = picture(graph, replace(options, fit=False))
    return html.page(drawn, options.dot, title=options.title or graph.name)


def notebook_html(graph: Graph, options: DrawOptions | None = None) -> str:
    """What a notebook shows for `graph`: its page, in a sandboxed iframe."""
    from fxviz.exporters.html import iframe

    return iframe(to_html(graph, options))


def _text(graph: Graph, fmt: str, options: DrawOptions) -> str:
    return to_html(graph, options) if fmt == "html" else to_mermaid(graph, options, fmt)


def file_bytes(graph: Graph, fmt: str, options: DrawOptions | None = None) -> bytes:
    """One file's bytes: the full graph for json, the picture for svg, png, pdf, dot, as
    Mermaid for mermaid and markdown, and as a page to explore for html."""
    options = options or DrawOptions()
    if fmt == "json":
        return graph.to_json().encode()
    if fmt in GRAPH_FORMATS:
        return _text(graph, fmt, options).encode()
    return export(to_dot(graph, options), fmt, options.renderer)


def save(graph: Graph, paths: Sequence[Path], options: DrawOptions | None = None) -> None:
    """Write every path (format from the suffix), all or nothing."""
    chosen = options or DrawOptions()
    save_files(
        paths,
        graph.to_json,
        lambda: to_dot(graph, chosen),
        chosen.renderer,
        {fmt: partial(_text, graph, fmt, chosen) for fmt in GRAPH_FORMATS},
    )


def _graph_save(graph: Graph, *paths: str | Path, **options: Any) -> None:
    save(graph, [Path(p) for p in paths], draw_options(**options))


def _graph_to_dot(graph: Graph, **options: Any) -> str:
    return to_dot(graph, draw_options(**options))


def _graph_svg(graph: Graph) -> str:
    options = DrawOptions()
    return export(to_dot(graph, options), "svg", options.renderer).decode()


def _diff_html(result: GraphDiff) -> str:
    from fxviz.exporters.html import diff_page, iframe

    assert result.graphs is not None
    return iframe(diff_page(*result.graphs, result))


def _diff_svg(result: GraphDiff) -> str:
    assert result.graphs is not None
    return export(diff_to_dot(*result.graphs, result), "svg", "auto").decode()


register_drawing(
    save=_graph_save,
    to_dot=_graph_to_dot,
    notebook_html=notebook_html,
    svg=_graph_svg,
    diff_notebook_html=_diff_html,
    diff_svg=_diff_svg,
)
