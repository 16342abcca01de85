"""Views make a big graph readable: pure functions from Graph to Graph, composable.

- `fold_repeats`: consecutive sibling modules with the same structure (classes, hyper-
  parameters, parameter counts, node shapes; names ignored), each reading the one before,
  are drawn once: the first keeps its nodes, relabelled `encoder.layer.0–11` with
  `repeat=12`, and whatever read the last one now reads it.
- `fold_periods`: blocks that take turns (three linear-attention layers, then one full, ×8)
  are drawn once as a group, in a cluster `layers.0–31` marked ×8, whatever read the last
  group reading the kept one.
- `fold_ranges`: runs of blocks built alike but for their sizes (DenseNet's layers, an
  EfficientNet stage) drawn once, with what varies (`_DenseLayer ×6, in 64 → 224 (+32
  each)`); asked for only when the picture would not fit a screen otherwise.
- `drop_dead_ends`: ops whose values nothing reads (an attention call's unused `[1]`) are
  left out.
- `box_leaf_modules`: a module with no submodules of its own (Llama's `LlamaRMSNorm`, a GELU
  wrapper) is drawn as one box, as torch.nn's own leaves (`LayerNorm`) are.
- `group_lines`: the ops one source line ran back to back (`apply_rotary_pos_emb(q, k, cos,
  sin)`: 16 ATen ops) are drawn as one node that lists them.
- `fold_steps`: a loop the model ran step by step (an expanded LSTM's 12 time steps, a cell
  called once per token) is drawn as one step in a cluster marked `×12`; what every step
  reads (the weights) is drawn once, beside it.
- `collapse`: every module deeper than `depth` becomes one node with its inputs, outputs,
  total parameters and FLOPs.

All of them only change the picture: JSON output is always the full traced graph.
"""

from __future__ import annotations

from fxviz.graph import Graph
from fxviz.views.collapse import collapse
from fxviz.views.dead_ends import drop_dead_ends
from fxviz.views.leaves import box_leaf_modules
from fxviz.views.lines import group_lines
from fxviz.views.periods import fold_periods
from fxviz.views.ranges import fold_ranges
from fxviz.views.repeats import fold_repeats
from fxviz.views.steps import fold_steps
from fxviz.views.structure import MIN_REPEAT, signatures

__all__ = [
    "MIN_REPEAT",
    "apply_views",
    "box_leaf_modules",
    "collapse",
    "drop_dead_ends",
    "fold_periods",
    "fold_ranges",
    "fold_repeats",
    "fold_steps",
    "group_lines",
    "signatures",
]


def apply_views(
    graph: Graph,
    *,
    depth: int | None = None,
    fold: bool = True,
    every_op: bool = False,
    expand: tuple[str, ...] = (),
    ranges: bool = False,
) -> Graph:
    """The default picture: repeated blocks folded, leaf modules boxed, each source line's ops
    grouped, a loop's steps folded, then modules deeper than `depth` collapsed. `every_op`
    draws every traced op; `expand` names module classes to keep open (`--expand LSTM`);
    `ranges` also folds runs of blocks alike but for their sizes, and loops whose steps do
    not read each other."""
    if fold:
        graph = fold_periods(fold_repeats(graph))
    if fold and ranges:
        graph = fold_ranges(graph)
    if not every_op:
        graph = group_lines(box_leaf_modules(drop_dead_ends(graph), expand), expand)
    if fold:
        graph = fold_steps(graph, independent=ranges)
    if depth is not None:
        graph = collapse(graph, depth)
    return graph
