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
    timeout: Annotated[
        float,
        typer.Option(
            metavar="S",
            help="Seconds an entry may take before it is stopped as hung; an entry's own "
            "`timeout` key wins.",
        ),
    ] = 600.0,
    max_memory: Annotated[
        str | None,
        typer.Option(
            metavar="SIZE",
            help="Memory each entry's process may hold, torch included (~0.9 GiB), e.g. 8GiB; "
            "an entry's own `max_memory` key wins.",
            show_default="no bound",
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Keep the entries whose files are current (same manifest entry, model file and "
            "versions) and draw only the rest.",
            metavar="",
            show_default="off",
        ),
    ] = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Draw every model of a manifest and write an index (README.md, index.html)."""
    from fxviz.gallery.workers import StopSignals

    with exit_on_error(debug), StopSignals() as stop:
        from fxviz.exporters import write_atomic
        from fxviz.gallery import Bounds, draw_all, index_files, read_manifest
        from fxviz.gallery.check import drifts, markdown
        from fxviz.gallery.manifest import check_memory, check_timeout
        from fxviz.gallery.records import Writer, current, entry_key, record_name, versions
        from fxviz.gallery.shards import in_shard, merge_shards, parse_shard

        entries = read_manifest(manifest)
        folder = out or manifest.parent
        part = parse_shard(shard) if shard else None
        if part and merge:
            raise SpecError("--shard draws one part and --merge assembles them: give one")
        if resume and (check or merge):
            raise SpecError(
                "--resume draws what is missing into --out; --check and --merge draw nothing: give "
                "it alone"
            )
        bounds = Bounds(
            check_timeout(timeout, "--timeout"), check_memory(max_memory, "--max-memory")
        )
        if part:
            entries = in_shard(entries, *part)
        # What drew each entry: only a run that writes (or resumes) needs it.
        found = {} if check else versions(entries)
        keys = {} if check else {e.name: entry_key(e, found) for e in entries}
        writer = Writer(folder, keys, part)
        kept = current(entries, folder, record_name(part), keys) if resume else {}
        if merge:
            drawn = merge_shards(entries, merge)
        else:
            todo = [e for e in entries if e.name not in kept]
            with _progress_bar(len(todo), quiet) as advance:

                def done(d: Any) -> None:
                    if not check:
                        writer.add(d, entries)
                    advance(d)

                for d in kept.values():
                    writer.add(d, entries, files=False)
                fresh = {
                    d.entry.name: d for d in draw_all(todo, jobs, done, bounds=bounds, stop=stop)
                }
            drawn = [kept.get(e.name) or fresh[e.name] for e in entries]
        failed = [d for d in drawn if d.error]
        index = {} if part else index_files(drawn)
        drift = drifts(folder, drawn, index) if (check or report) and not stop.signum else []
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
            writer.finish(drawn, index)
            problems = len(failed)
        for d in failed:
            if d.outcome != "interrupted":
                typer.echo(f"{d.status}: {d.entry.name} ({d.entry.spec}): {d.error}", err=True)
                if debug and d.detail:
                    typer.echo(d.detail.rstrip(), err=True)
        if not quiet or stop.signum:
            verb = "checked" if check else "drew" if not merge else "merged"
            where = f" of shard {part[0]}/{part[1]}" if part else ""
            ok = len(drawn) - len(failed)
            kept_said = f" ({len(kept)} kept as current)" if kept else ""
            line = f"gallery: {verb} {ok}/{len(drawn)} entries{where}{kept_said}"
            line += f", {len(drift)} stale" if check else f" into {folder}"
            if stop.signum:
                rest = sum(d.outcome == "interrupted" for d in drawn)
                line = f"gallery: stopped by {stop.name}; " + line.removeprefix("gallery: ")
                line += f"; {rest} not drawn" + ("" if check else ": --resume draws them")
            typer.echo(line, err=True)
    raise typer.Exit(stop.exit_code if stop.signum else 1 if problems else 0)


@contextlib.contextmanager
def _progress_bar(total: int, quiet: bool) -> Iterator[Any]:
    """A progress bar on a terminal; one plain line per entry in pipes and CI."""
    if quiet:
        yield lambda drawn: None
        return
    if not sys.stderr.isatty():
        yield lambda drawn: typer.echo(f"{drawn.status}: {drawn.entry.name}", err=True)
        return
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        task = progress.add_task("drawing", total=total)
        yield lambda drawn: progress.update(task, advance=1, description=drawn.entry.name)
