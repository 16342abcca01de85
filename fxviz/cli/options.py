"""The options several commands share, spelled once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

Quiet = Annotated[
    bool,
    typer.Option("--quiet", "-q", help="Print nothing but errors.", metavar="", show_default="off"),
]
Debug = Annotated[
    bool,
    typer.Option(
        "--debug", help="Show the full traceback of an error.", metavar="", show_default="off"
    ),
]


def outputs_option(default: str) -> Any:
    """`-o/--output`, repeatable, with what a command writes when it is left out."""
    return Annotated[
        list[Path] | None,
        typer.Option(
            "--output",
            "-o",
            metavar="PATH",
            help="File to write; the format comes from the suffix (.svg .png .pdf .dot .json "
            ".mmd .md .html). Repeat for several.",
            show_default=default,
        ),
    ]


Outputs = outputs_option("MODEL.svg")
CompileOutputs = outputs_option("MODEL.compile.svg")
MemoryOutputs = outputs_option("none: the report only")
RendererOpt = Annotated[
    str,
    typer.Option(
        metavar="auto|system|embedded",
        help="auto: Graphviz's `dot` when on PATH, else the embedded one (SVG only). "
        "system | embedded force one.",
    ),
]
RankdirOpt = Annotated[
    str, typer.Option(metavar="TB|LR", help="Layout direction: TB (top to bottom) or LR.")
]
InputsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--input",
        "-i",
        metavar="SHAPE",
        help="Input shape, repeat per forward argument: 1,3,224,224 | int64:1,16 | "
        "input_ids=int64:1,16; a keyword that is not a tensor: scale=2.0, flag=true.",
        show_default="the model's own example inputs",
    ),
]
KwargsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--kwarg",
        metavar="KEY=VALUE",
        help="Constructor argument key=value (file models, torchvision).",
        show_default="none",
    ),
]
ConfigOpt = Annotated[
    list[str] | None,
    typer.Option(
        metavar="KEY=VALUE",
        help="Hugging Face config override key=value, e.g. num_hidden_layers=2.",
        show_default="none",
    ),
]
LayersOpt = Annotated[
    int | None,
    typer.Option(
        metavar="N",
        help="Hugging Face models: cap every layer count of the config at N (num_hidden_layers, "
        "n_layer, encoder_layers, text_config's, …), whatever the fields are called.",
        show_default="the config's own",
    ),
]
DeviceOpt = Annotated[
    str | None,
    typer.Option(
        metavar="meta|cpu|cuda",
        help="Where shapes are computed: meta needs no memory for weights.",
        show_default="meta; cpu with --weights",
    ),
]
DepthOpt = Annotated[
    str | None,
    typer.Option(
        metavar="N|all",
        help=(
            "Draw modules deeper than N path components as one node each (N >= 1); all: "
            "every level, however big."
        ),
        show_default="every level, shallower when that is too big for a screen",
    ),
]
FoldOpt = Annotated[
    bool,
    typer.Option(
        "--fold/--no-fold",
        metavar="",
        help="Draw 3 or more identical consecutive blocks once, as 'Block ×N'.",
    ),
]
ShowOpt = Annotated[
    str | None,
    typer.Option(
        metavar="ITEMS",
        help="Annotations to add to the boxes, comma-separated: params, buffers, flops, memory, "
        "source, why (-args hides one; all; none).",
        show_default="shapes,args",
    ),
]
ColorOpt = Annotated[
    str | None,
    typer.Option(
        metavar="memory|none",
        help="memory: fill each module's box on a heat scale of the bytes it saves for "
        "backward (runs a memory estimate, as --show memory does).",
        show_default="none",
    ),
]
AllOpsOpt = Annotated[
    bool,
    typer.Option(
        "--all-ops",
        help="Draw every traced op: no grouping of one source line's ops, no boxing of modules "
        "without submodules.",
        metavar="",
        show_default="off",
    ),
]
TracerOpt = Annotated[
    str,
    typer.Option(
        metavar="auto|fx|export|record",
        help="auto tries fx, then torch.export, then a recorded run.",
    ),
]
SymbolicOpt = Annotated[
    bool,
    typer.Option(
        "--symbolic",
        help="Shapes as expressions of named input dims (B×L×768, B×64×⌈H/2⌉×⌈W/2⌉): the "
        "batch B, tokens L (a decoder's S), an image's H and W, audio's T; and the sizes the "
        "model only works for (H, W = 224, L ≤ 512).",
        metavar="",
        show_default="off: this call's numbers",
    ),
]
DimOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--dim",
        metavar="NAME=INPUT.AXIS",
        help="Name an input dim for --symbolic (N=x.0), or rename one; implies --symbolic.",
        show_default="none",
    ),
]
ExpandOpt = Annotated[
    list[str] | None,
    typer.Option(
        metavar="CLASS",
        help="Draw inside this module class: LSTM shows its gates, LlamaRMSNorm its ops.",
        show_default="none",
    ),
]


def complete_model(incomplete: str) -> list[str]:
    """Shell completion of MODEL: torchvision names, `hf:` model types, and files."""
    import glob

    if "/" in incomplete or incomplete.startswith((".", "~")) or incomplete.endswith(".py"):
        return sorted(p + ("/" if Path(p).is_dir() else "") for p in glob.glob(incomplete + "*"))
    if incomplete.startswith("hf:"):
        from fxviz.loaders.hf_types import model_types

        return [f"hf:{t}" for t in model_types() if f"hf:{t}".startswith(incomplete)]
    from fxviz.loaders.torchvision import list_torchvision_models

    names = [n for n in list_torchvision_models() if n.startswith(incomplete)]
    files = [p for p in glob.glob(incomplete + "*") if p.endswith((".py", ".pt2", ".json"))]
    return names + files + (["hf:"] if "hf:".startswith(incomplete) else [])


# A command's MODEL argument where a saved graph.json does as well (summary, explain).
SavedOrModel = Annotated[
    str,
    typer.Argument(
        metavar="MODEL",
        help="A model spec or a saved graph.json.",
        show_default=False,
        autocompletion=complete_model,
    ),
]
