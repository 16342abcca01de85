"""The `fxviz` command: parses options, calls the API, prints, maps errors to exit codes.

Exit codes: 0 success, 2 the input was wrong or the model could not be drawn (one line on
stderr; --debug adds the traceback). Torch is imported only by commands that trace.
"""

from __future__ import annotations

import contextlib
import re
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer  # noqa: TID251 (the CLI is the one place typer belongs)
from typer.core import TyperGroup  # noqa: TID251

from fxviz.errors import FxvizError, SpecError
from fxviz.humanize import format_params
from fxviz.specs import check_tracer


class _DrawByDefault(TyperGroup):
    """`fxviz MODEL …` means `fxviz draw MODEL …`: no subcommand word needed."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        group_options = {"--help", "-h", "--version", "--install-completion", "--show-completion"}
        if args and args[0] not in self.commands and not set(args) & group_options:
            _not_a_command(args[0], list(self.commands))
            args = ["draw", *args]
        return super().parse_args(ctx, args)


def _not_a_command(word: str, commands: list[str]) -> None:
    """`fxviz help` or `fxviz lsit`: a word that is no model spec but close to a command is a
    mistyped command, said in one line (exit 2) rather than as a model that is not found."""
    from fxviz.errors import did_you_mean

    if not re.fullmatch(r"[a-z]+", word) or Path(word).exists():
        return
    hint = did_you_mean(word, commands, shown=lambda c: f"`fxviz {c}`")
    if word == "help" or hint:
        hint = "did you mean --help?" if word == "help" else hint
        typer.echo(f"error: no command or model named {word!r}; {hint}", err=True)
        raise typer.Exit(2)


app = typer.Typer(
    cls=_DrawByDefault,
    name="fxviz",
    help="Draw PyTorch models: `fxviz resnet18` writes resnet18.svg.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

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
Outputs = Annotated[
    list[Path] | None,
    typer.Option(
        "--output",
        "-o",
        metavar="PATH",
        help="File to write; the format comes from the suffix (.svg .png .pdf .dot .json "
        ".mmd .md). "
        "Repeat for several.",
        show_default="MODEL.svg",
    ),
]
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
ExpandOpt = Annotated[
    list[str] | None,
    typer.Option(
        metavar="CLASS",
        help="Draw inside this module class: LSTM shows its gates, LlamaRMSNorm its ops.",
        show_default="none",
    ),
]


def _complete_model(incomplete: str) -> list[str]:
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
        autocompletion=_complete_model,
    ),
]


def _version(value: bool) -> None:
    if value:
        from fxviz import __version__

        typer.echo(f"fxviz {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="Show the version.",
            metavar="",
            show_default="off",
        ),
    ] = False,
) -> None:
    """Draw PyTorch models: `fxviz resnet18` writes resnet18.svg.

    MODEL is a torchvision name (resnet18), a Python file (net.py:Net), …; see `fxviz draw --help`.
    """


@app.command("draw")
def draw_command(
    model: Annotated[
        str,
        typer.Argument(
            metavar="MODEL",
            help="resnet18 | torchvision:resnet18 | path/net.py:Net | hf:bert | hf:org/name "
            "| hf:./folder | program.pt2 (a saved torch.export program) | graph.json (a saved "
            "graph, drawn without tracing)",
            show_default=False,
            autocompletion=_complete_model,
        ),
    ],
    output: Outputs = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            metavar="svg|png|pdf|dot|json|mmd|md",
            help="Format when no -o is given.",
            show_default="svg",
        ),
    ] = None,
    inputs: InputsOpt = None,
    kwargs: KwargsOpt = None,
    device: DeviceOpt = None,
    weights: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="Load published weights: torchvision DEFAULT or a weights name; for Hugging "
            "Face any value loads the hub id's or folder's weights.",
            show_default="none: built from the config, nothing downloaded",
        ),
    ] = None,
    config: ConfigOpt = None,
    layers: LayersOpt = None,
    tracer: TracerOpt = "auto",
    renderer: RendererOpt = "auto",
    rankdir: RankdirOpt = "TB",
    depth: DepthOpt = None,
    fold: FoldOpt = True,
    show: ShowOpt = None,
    all_ops: AllOpsOpt = False,
    title: Annotated[
        str | None,
        typer.Option(
            metavar="TEXT", help="The diagram's heading.", show_default="the model's name"
        ),
    ] = None,
    expand: ExpandOpt = None,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Draw MODEL as a diagram with the shape of every tensor (default: MODEL.svg)."""
    with _errors(debug):
        from fxviz.drawing import save

        paths, options = _checked(
            output,
            tracer,
            depth=depth,
            fold=fold,
            all_ops=all_ops,
            expand=expand,
            show=show,
            rankdir=rankdir,
            renderer=renderer,
            title=title,
        )
        suffix = (fmt or "svg").lower()
        if _is_saved_graph(model):
            _no_model_options(model, inputs, kwargs, config, device, weights, layers)
            graph = _load_graph(model)
            paths = paths or _default_output(Path(model).stem, suffix)
        else:
            from fxviz import api

            with _progress(f"loading {model}", quiet):
                loaded = api.load(
                    model,
                    inputs=inputs or (),
                    model_kwargs=kwargs or (),
                    device=device,
                    weights=weights,
                    config=config or (),
                    layers=layers,
                )
            paths = paths or _default_output(_file_stem(loaded.name), suffix)
            with _progress(f"tracing {loaded.name} on {loaded.device}", quiet):
                graph = api.trace(loaded, tracer=tracer, expand=options.expand)
        with _progress("drawing", quiet):
            save(graph, paths, options)
        if not quiet:
            for note in (*graph.notes, _fit_note(graph, paths, options)):
                if note:
                    typer.echo(f"note: {note}", err=True)
            _report(graph, paths)


def _fit_note(graph: Any, paths: list[Path], options: Any) -> str:
    """How the picture was chosen to fit a screen, when a picture was written."""
    from fxviz.drawing import fitted

    if all(p.suffix.lower() == ".json" for p in paths):
        return ""
    return fitted(graph, options)[1]


def _default_output(stem: str, suffix: str) -> list[Path]:
    from fxviz.exporters import check_outputs

    paths = [Path(f"{stem}.{suffix}")]
    check_outputs(paths)
    return paths


def _report(graph: Any, paths: list[Path]) -> None:
    totals = graph.totals
    typer.echo(
        f"{graph.name}: {len(graph.nodes)} nodes, {format_params(totals.params.total)} "
        f"params, traced with {graph.tracer} on {graph.device} -> "
        f"{', '.join(str(p) for p in paths)}",
        err=True,
    )


def _no_model_options(spec: str, *given: object) -> None:
    """Options that build or trace a model mean nothing for a saved graph: say so."""
    if any(given):
        raise SpecError(
            f"{spec} is a saved graph, drawn as it was traced; --input, --kwarg, --config, "
            "--layers, --device and --weights apply only to models"
        )


@app.command("diff")
def diff_command(
    model_a: Annotated[
        str,
        typer.Argument(
            metavar="MODEL_A",
            help="A model spec or a saved graph.json.",
            show_default=False,
            autocompletion=_complete_model,
        ),
    ],
    model_b: Annotated[
        str,
        typer.Argument(
            metavar="MODEL_B",
            help="The model to compare it with.",
            show_default=False,
            autocompletion=_complete_model,
        ),
    ],
    output: Outputs = None,
    inputs: InputsOpt = None,
    inputs_b: Annotated[
        list[str] | None,
        typer.Option(
            "--input-b",
            metavar="SHAPE",
            help="Input shape for B only, if it differs.",
            show_default="--input's",
        ),
    ] = None,
    kwargs: KwargsOpt = None,
    config: ConfigOpt = None,
    layers: LayersOpt = None,
    config_b: Annotated[
        list[str] | None,
        typer.Option(
            "--config-b",
            metavar="KEY=VALUE",
            help="Config key=value for B only, after --config.",
            show_default="none",
        ),
    ] = None,
    device: DeviceOpt = None,
    tracer: TracerOpt = "auto",
    renderer: RendererOpt = "auto",
    rankdir: RankdirOpt = "TB",
    depth: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            help="Collapse both sides to N levels before matching (N >= 1).",
            show_default="every level",
        ),
    ] = None,
    every: Annotated[
        bool,
        typer.Option(
            "--all",
            help="List every change, the output shapes that follow from another included.",
            metavar="",
            show_default="off",
        ),
    ] = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Compare two models or saved graphs. Exit 0 if identical, 1 if they differ, 2 on error."""
    with _errors(debug):
        from fxviz.diff import diff, format_report
        from fxviz.exporters import save_diff

        paths, options = _checked(output, tracer, depth=depth, rankdir=rankdir, renderer=renderer)
        sides = []
        for spec, side_inputs, side_config in (
            (model_a, inputs, config),
            (
                model_b,
                inputs_b if inputs_b is not None else inputs,
                [*(config or []), *(config_b or [])],
            ),
        ):
            with _progress(f"tracing {spec}", quiet):
                sides.append(
                    _graph_for(spec, side_inputs, kwargs, side_config, device, tracer, layers)
                )
        a, b = sides
        if options.depth is not None:
            from fxviz.views import collapse

            a, b = collapse(a, options.depth), collapse(b, options.depth)
        result = diff(a, b)
        if paths:
            save_diff(a, b, result, paths, options.dot, options.renderer)
        if not quiet:
            typer.echo(format_report(result, every=every), nl=False)
            if paths:
                typer.echo(f"diff written to {', '.join(str(p) for p in paths)}", err=True)
    raise typer.Exit(0 if result.identical else 1)


def _graph_for(
    spec: str,
    inputs: list[str] | None,
    kwargs: list[str] | None,
    config: list[str] | None,
    device: str | None,
    tracer: str,
    layers: int | None = None,
) -> Any:
    """A saved graph (.json, read without torch) or a model traced now."""
    if _is_saved_graph(spec):
        _no_model_options(spec, inputs, kwargs, config, device, layers)
        return _load_graph(spec)
    from fxviz import api

    loaded = api.load(
        spec,
        inputs=inputs or (),
        model_kwargs=kwargs or (),
        device=device,
        config=config or (),
        layers=layers,
    )
    return api.trace(loaded, tracer=tracer)


@app.command("gallery")
def gallery_command(
    manifest: Annotated[
        Path,
        typer.Argument(
            metavar="MANIFEST",
            help="A models.toml with one [[model]] per diagram.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="Folder to write or check; created if missing.",
            show_default="the manifest's folder",
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Write nothing; exit 1 naming each stale entry and what changed in it.",
            metavar="",
            show_default="off",
        ),
    ] = False,
    shard: Annotated[
        str | None,
        typer.Option(
            metavar="I/N",
            help="Draw only shard I of N (a stable split by entry name) into --out, with a "
            "record for --merge; no index.",
            show_default="every entry",
        ),
    ] = None,
    merge: Annotated[
        list[Path] | None,
        typer.Option(
            metavar="DIR",
            help="Assemble the folders that --shard runs wrote (repeat per folder) and write "
            "or --check the whole gallery.",
            show_default="none",
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            metavar="PATH",
            help="Also write what changed as Markdown (a PR comment, $GITHUB_STEP_SUMMARY).",
            show_default="none",
        ),
    ] = None,
    jobs: Annotated[
        int, typer.Option(metavar="N", help="Entries drawn in parallel processes.")
    ] = 1,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Draw every model of a manifest and write an index (README.md, index.html)."""
    with _errors(debug):
        from fxviz.exporters import write_atomic
        from fxviz.gallery import draw_all, index_files, read_manifest
        from fxviz.gallery.check import drifts, markdown
        from fxviz.gallery.shards import in_shard, merge_shards, parse_shard, record

        entries = read_manifest(manifest)
        folder = out or manifest.parent
        part = parse_shard(shard) if shard else None
        if part and merge:
            raise SpecError("--shard draws one part and --merge assembles them: give one")
        if part:
            entries = in_shard(entries, *part)
        if merge:
            drawn = merge_shards(entries, merge)
        else:
            with _progress_bar(len(entries), quiet) as advance:
                drawn = draw_all(entries, jobs=max(1, jobs), on_done=advance)
        failed = [d for d in drawn if d.error]
        index = {} if part else index_files(drawn)
        drift = drifts(folder, drawn, index) if check or report else []
        if report:
            write_atomic(report, markdown(drift, drawn, folder).encode())
        if check:
            for x in drift:
                for name in x.files:
                    typer.echo(f"stale: {folder / name}", err=True)
                for line in x.explanation:
                    typer.echo(f"  {x.name}: {line}", err=True)
            problems = len(drift) + len(failed)
        else:
            folder.mkdir(parents=True, exist_ok=True)
            files = {name: data for d in drawn for name, data in d.files.items()} | index
            if part:
                files.update([record(drawn, *part)])
            for name, data in files.items():
                write_atomic(folder / name, data)
            problems = len(failed)
        for d in failed:
            typer.echo(f"failed: {d.entry.name} ({d.entry.spec}): {d.error}", err=True)
        if not quiet:
            verb = "checked" if check else "drew" if not merge else "merged"
            where = f" of shard {part[0]}/{part[1]}" if part else ""
            typer.echo(
                f"gallery: {verb} {len(drawn) - len(failed)}/{len(drawn)} entries{where}"
                + (f", {len(drift)} stale" if check else f" into {folder}"),
                err=True,
            )
    raise typer.Exit(1 if problems else 0)


@contextlib.contextmanager
def _progress_bar(total: int, quiet: bool) -> Iterator[Any]:
    """A progress bar on a terminal; one plain line per entry in pipes and CI."""
    if quiet:
        yield lambda drawn: None
        return
    if not sys.stderr.isatty():
        yield lambda drawn: typer.echo(
            f"{'failed' if drawn.error else 'drawn'}: {drawn.entry.name}", err=True
        )
        return
    from rich.progress import Progress  # noqa: TID251

    with Progress(transient=True) as progress:
        task = progress.add_task("drawing", total=total)
        yield lambda drawn: progress.update(task, advance=1, description=drawn.entry.name)


@app.command("summary")
def summary_command(
    model: SavedOrModel,
    inputs: InputsOpt = None,
    kwargs: KwargsOpt = None,
    config: ConfigOpt = None,
    layers: LayersOpt = None,
    device: DeviceOpt = None,
    tracer: TracerOpt = "auto",
    depth: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            help="Show modules down to N path components (0: totals).",
            show_default="every level",
        ),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            metavar="table|csv|markdown|json",
            help="table for a terminal; csv, markdown and json keep every name whole.",
        ),
    ] = "table",
    debug: Debug = False,
) -> None:
    """A table of the module tree: class, input and output shapes, parameters, FLOPs."""
    with _errors(debug):
        from fxviz.summary import FORMATS, render_rows, summary_rows

        check_tracer(tracer)
        if fmt not in FORMATS:
            from fxviz.errors import did_you_mean

            hint = did_you_mean(fmt, FORMATS) or f"use {', '.join(FORMATS)}"
            raise SpecError(f"--format {fmt!r}: {hint}")
        if depth is not None and depth < 0:
            raise SpecError(f"--depth {depth}: give 0 (totals only) or more")
        with _progress(f"tracing {model}", False):
            graph = _graph_for(model, inputs, kwargs, config, device, tracer, layers)
        rows = summary_rows(graph, depth)
        if fmt != "table":
            typer.echo(render_rows(graph, rows, fmt), nl=False)
            return
        _print_table(graph, rows)


def _print_table(graph: Any, rows: list[Any]) -> None:
    """The summary as a terminal table; piped, it is as wide as its longest row (nothing
    cut), unless COLUMNS says otherwise."""
    import os

    from rich.console import Console  # noqa: TID251
    from rich.table import Table  # noqa: TID251

    from fxviz.summary import columns

    table = Table(title=f"{graph.name} · traced with {graph.tracer} on {graph.device}")
    shown = columns(rows)
    for column in shown:
        numeric = column in ("params", "trainable", "FLOPs")
        table.add_column(column, justify="right" if numeric else "left", no_wrap=True)
    for row in rows:
        name = "  " * max(row.depth - 1, 0) + (
            row.path.rpartition(".")[2] if row.path else "(total)"
        )
        table.add_row(
            name,
            row.class_name,
            row.input,
            row.output,
            f"{row.params.total:,}",
            f"{row.params.trainable:,}",
            f"{row.flops:,}",
            *([row.shared] if "shared" in shown else []),
            end_section=not row.path,
        )
    terminal = sys.stdout.isatty() or "COLUMNS" in os.environ
    width = max(100, Console().width) if terminal else 10_000
    Console(width=width).print(table, crop=False)


@app.command("explain")
def explain_command(
    model: SavedOrModel,
    inputs: InputsOpt = None,
    kwargs: KwargsOpt = None,
    config: ConfigOpt = None,
    layers: LayersOpt = None,
    device: DeviceOpt = None,
    tracer: TracerOpt = "auto",
    debug: Debug = False,
) -> None:
    """Walk through MODEL layer by layer: why each shape and parameter count is what it is."""
    with _errors(debug):
        from fxviz.explain import explain_lines

        check_tracer(tracer)
        with _progress(f"tracing {model}", False):
            graph = _graph_for(model, inputs, kwargs, config, device, tracer, layers)
        typer.echo("\n".join(explain_lines(graph)))


@app.command("render")
def render_command(
    graph_file: Annotated[
        Path,
        typer.Argument(
            metavar="GRAPH_JSON", help="A graph saved with -o graph.json.", show_default=False
        ),
    ],
    output: Outputs = None,
    renderer: RendererOpt = "auto",
    rankdir: RankdirOpt = "TB",
    depth: DepthOpt = None,
    fold: FoldOpt = True,
    show: ShowOpt = None,
    all_ops: AllOpsOpt = False,
    expand: ExpandOpt = None,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Draw a saved graph JSON again, without PyTorch (the same picture `fxviz MODEL` draws)."""
    with _errors(debug):
        from fxviz.drawing import save

        paths, options = _checked(
            output or [graph_file.with_suffix(".svg")],
            "auto",
            depth=depth,
            fold=fold,
            all_ops=all_ops,
            expand=expand,
            show=show,
            rankdir=rankdir,
            renderer=renderer,
        )
        graph = _load_graph(str(graph_file))
        save(graph, paths, options)
        if not quiet:
            if note := _fit_note(graph, paths, options):
                typer.echo(f"note: {note}", err=True)
            _report(graph, paths)


@app.command("list")
def list_command(
    pattern: Annotated[
        str | None,
        typer.Argument(metavar="TEXT", help="Show only names containing this.", show_default=False),
    ] = None,
    hf: Annotated[
        bool,
        typer.Option(
            "--hf",
            help="List the Hugging Face model types (hf:TYPE) instead of torchvision names.",
            metavar="",
            show_default="off",
        ),
    ] = False,
) -> None:
    """List the model names fxviz can draw by name. Exit 1 when none matches, like grep."""
    if hf:
        from fxviz.loaders.hf_types import model_types

        names, what = [f"hf:{t}" for t in model_types()], "Hugging Face model type"
    else:
        from fxviz.loaders.torchvision import list_torchvision_models

        names, what = list_torchvision_models(), "torchvision model name"
    shown = [n for n in names if pattern is None or pattern.lower() in n.lower()]
    for name in shown:
        typer.echo(name)
    if not shown:
        from fxviz.errors import did_you_mean

        hint = did_you_mean(pattern or "", names, n=3)
        other = "" if hf else "; `fxviz list --hf` lists Hugging Face model types"
        typer.echo(f"no {what} contains {pattern!r}{'; ' + hint if hint else ''}{other}", err=True)
        raise typer.Exit(1)


def _checked(output: list[Path] | None, tracer: str, **drawing: Any) -> tuple[list[Path], Any]:
    """The output paths and the drawing path's one options object (`drawing` as the command
    line spells them: depth, fold, show, …), every option checked before any slow work."""
    from fxviz.drawing import cli_spelling, draw_options
    from fxviz.exporters import check_outputs

    check_tracer(tracer)
    paths = list(output or [])
    check_outputs(paths)
    depth = drawing.get("depth")
    if isinstance(depth, str) and depth.strip().lstrip("-").isdigit():
        drawing["depth"] = int(depth)  # the command line gives every value as text
    return paths, draw_options(cli_spelling, **drawing)


def _is_saved_graph(spec: str) -> bool:
    from fxviz.api import is_saved_graph

    return is_saved_graph(spec)


def _load_graph(spec: str) -> Any:
    from fxviz.graph import Graph

    return Graph.load(spec)


def _file_stem(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("._") or "model"


@contextlib.contextmanager
def _errors(debug: bool) -> Iterator[None]:
    """FxvizError -> one line on stderr and exit 2; --debug shows the traceback too."""
    try:
        yield
    except FxvizError as exc:
        if debug:
            traceback.print_exc()
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@contextlib.contextmanager
def _progress(message: str, quiet: bool) -> Iterator[None]:
    """A spinner on a terminal; nothing in pipes and CI."""
    if quiet or not sys.stderr.isatty():
        yield
        return
    from rich.console import Console  # noqa: TID251

    with Console(stderr=True).status(message):
        yield


def main() -> None:
    # One name however it was started (`python -m fxviz` too): completion scripts name it.
    app(prog_name="fxviz")
