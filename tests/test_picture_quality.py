"""The picture-quality check: what a reader sees by default is clean, on every gallery entry
and on a set of models chosen for what they have made go wrong before (ViT's unevenly folded
blocks, attention's unread outputs, Swin's functional weights, a detector's recorded run, an
LSTM's unrolled time steps, encoder-decoder towers).

Each rule is asserted on the default view's graph and on the DOT it draws:
- no dead ends: every drawn value is read, except the graph's outputs;
- no label repeats itself (`5 ops / 5 ops: getitem ×4`);
- every constant argument is named where the op's schema names it (`flatten start_dim=1`);
- every kind of box drawn has its entry in the key;
- runs of 3 or more structurally identical, chained blocks are folded;
- no tracer-made name (`_tensor_constant12`) is drawn;
- each picture fits 2,500 × 20,000 px, or `OVER_BUDGET` says why it does not.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

import fxviz
from fxviz.drawing import SCREEN_PX, DrawOptions, file_bytes, picture, to_dot
from fxviz.gallery.manifest import read_manifest
from fxviz.gallery.quality import LABEL, UNNAMED, dead_ends, size_px, stutters
from fxviz.graph import Graph, split_hparams
from fxviz.views import signatures

REPO = Path(__file__).parent.parent
GALLERY = REPO / "gallery"
TAGGER = f"{REPO}/examples/lstm_tagger.py:LSTMTagger"
GATES = DrawOptions(expand=("LSTM",))

# name -> (spec, trace keywords, drawing options)
MODELS: dict[str, tuple[str, dict[str, object], DrawOptions]] = {
    "resnet18": ("resnet18", {}, DrawOptions()),
    "vit_b_16": ("vit_b_16", {}, DrawOptions()),
    "swin_t": ("swin_t", {}, DrawOptions()),
    "convnext_tiny": ("convnext_tiny", {}, DrawOptions()),
    "fasterrcnn": ("fasterrcnn_mobilenet_v3_large_320_fpn", {}, DrawOptions()),
    "lstm_tagger": (TAGGER, {}, DrawOptions()),
    "lstm_tagger_gates": (TAGGER, {"expand": ("LSTM",)}, GATES),
    "bert": ("hf:bert", {"layers": 2}, DrawOptions()),
    "t5": ("hf:t5", {"layers": 2}, DrawOptions()),
    "whisper": ("hf:whisper", {"layers": 2}, DrawOptions()),
    "clip": ("hf:clip", {"layers": 2}, DrawOptions()),
}

# Pictures allowed past the 2,500 px budget on their shorter side, and why. (T5 and Whisper
# were, at about 3,300 px wide, until a recorded run drew them: their attention's reshapes
# are one line each, not several ATen ops, and the staircase of clusters is narrower.)
OVER_BUDGET: dict[str, str] = {}
BUDGET_PX = SCREEN_PX[0]


@functools.cache
def _gallery() -> dict[str, tuple[Graph, DrawOptions]]:
    return {
        entry.name: (Graph.load(GALLERY / f"{entry.name}.json"), entry.options)
        for entry in read_manifest(GALLERY / "models.toml")
    }


@functools.cache
def _case(name: str) -> tuple[Graph, DrawOptions]:
    if name.startswith("gallery/"):
        return _gallery()[name.removeprefix("gallery/")]
    spec, keywords, options = MODELS[name]
    return fxviz.trace(spec, **keywords), options  # type: ignore[arg-type]


CASES = [*MODELS, *(f"gallery/{entry.name}" for entry in read_manifest(GALLERY / "models.toml"))]


@functools.cache
def _drawn(name: str) -> tuple[Graph, str]:
    graph, options = _case(name)
    return picture(graph, options), to_dot(graph, options)


@pytest.mark.parametrize("name", CASES)
def test_every_drawn_value_is_read(name: str) -> None:
    drawn, _ = _drawn(name)
    dead = dead_ends(drawn)
    assert not dead, f"{name}: drawn but read by nothing: {dead[:10]}"


@pytest.mark.parametrize("name", CASES)
def test_no_label_repeats_itself(name: str) -> None:
    _, dot = _drawn(name)
    found = stutters(dot)
    assert not found, f"{name}: {found[:5]}"


@pytest.mark.parametrize("name", CASES)
def test_no_tracer_made_name_is_drawn(name: str) -> None:
    """`_tensor_constant12`, `lifted_tensor_0`: constants are named by what made them."""
    _, dot = _drawn(name)
    assert not UNNAMED.search(dot), f"{name}: {UNNAMED.findall(dot)[:5]}"


# Python's own operators take positional-only operands: nothing to name.
_POSITIONAL = ("operator.", "_operator.", "getitem", "builtins.")


@pytest.mark.parametrize("name", CASES)
def test_constant_arguments_are_named(name: str) -> None:
    drawn, _ = _drawn(name)
    unnamed = [
        f"{n.target}({n.arguments})"
        for n in drawn.nodes
        if n.kind in ("function", "method")
        and not n.target.startswith(_POSITIONAL)
        and any("=" not in item for item in split_hparams(n.arguments))
    ]
    assert not unnamed, f"{name}: constant arguments without their names: {unnamed[:8]}"


_ATTRIBUTE = re.compile(r'(fillcolor|style|shape|color|penwidth)=("[^"]*"|\S+)')


def _styles(dot: str) -> tuple[set[str], set[str]]:
    drawn, key = set(), set()
    for node, _, _, attributes in LABEL.findall(dot):
        style = " ".join(sorted(f"{k}={v}" for k, v in _ATTRIBUTE.findall(attributes)))
        if "fillcolor" in style:
            (key if node.startswith("legend_") else drawn).add(style)
    return drawn, key


@pytest.mark.parametrize("name", CASES)
def test_every_kind_of_box_is_in_the_key(name: str) -> None:
    drawn, key = _styles(_drawn(name)[1])
    assert drawn <= key, f"{name}: boxes the key does not explain: {sorted(drawn - key)}"


@pytest.mark.parametrize("name", CASES)
def test_identical_chained_blocks_are_folded(name: str) -> None:
    """Checked on the picture, independently of how fold_repeats finds runs: no module has
    3 consecutive submodules built the same (classes, hyper-parameters, parameter counts)
    that are all drawn, each reading the one before."""
    drawn, _ = _drawn(name)
    shapes = signatures(drawn)
    members: dict[str, set[str]] = {}
    for node in drawn.nodes:
        for path in {node.owner, node.scope}:
            parts = path.split(".") if path else []
            for k in range(1, len(parts) + 1):
                members.setdefault(".".join(parts[:k]), set()).add(node.id)
    reads = {node.id: set(node.inputs) for node in drawn.nodes}

    def chained(before: str, after: str) -> bool:
        return any(reads[i] & members[before] for i in members[after])

    unfolded = []
    for module in drawn.modules:
        run: list[str] = []
        for child in drawn.children(module.path):
            if (
                child in members
                and run
                and shapes[child] == shapes[run[-1]]
                and chained(run[-1], child)
            ):
                run.append(child)
            else:
                run = [child] if child in members else []
            if len(run) == 3:
                unfolded.append(run[0])
    assert not unfolded, f"{name}: identical blocks drawn one by one from {unfolded}"


def _size_px(name: str) -> tuple[int, int]:
    if name.startswith("gallery/"):
        svg = (GALLERY / f"{name.removeprefix('gallery/')}.svg").read_bytes()
    else:
        graph, options = _case(name)
        svg = file_bytes(graph, "svg", options)
    width, height = size_px(svg)
    assert width and height, f"{name}: no size in the SVG"
    return width, height


@pytest.mark.parametrize("name", CASES)
def test_each_picture_fits_the_screen_budget(name: str) -> None:
    width, height = _size_px(name)
    key = name.removeprefix("gallery/")
    if key in OVER_BUDGET:
        assert min(width, height) > BUDGET_PX, f"{name} fits now ({width}×{height} px)"
        return
    assert min(width, height) <= BUDGET_PX, (
        f"{name} is {width}×{height} px: over {BUDGET_PX} px on its shorter side"
    )
    assert max(width, height) <= SCREEN_PX[1], (
        f"{name} is {width}×{height} px: over {SCREEN_PX[1]:,} px on its longer side"
    )
