"""`fxviz gallery MANIFEST`: every model of a manifest, drawn, checked, sharded or merged."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from fxviz.cli.app import app
from fxviz.cli.common import exit_on_error
from fxviz.cli.options import Debug, Quiet
from fxviz.errors import SpecError


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
    with exit_on_error(debug):
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
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        task = progress.add_task("drawing", total=total)
        yield lambda drawn: progress.update(task, advance=1, description=drawn.entry.name)
