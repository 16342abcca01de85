"""`fxviz compile` end to end: through CliRunner and through a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fxviz.cli import app
from fxviz.graph import Graph

REPO = Path(__file__).parent.parent
EXAMPLES = REPO / "examples" / "graph_breaks.py"
runner = CliRunner()


def test_draws_the_picture_and_prints_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["compile", f"{EXAMPLES}:ItemScale"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ItemScale: 2 graphs, 1 graph break")
    assert "1 × x.item(): a Python number from a tensor" in result.stdout
    assert "graph_breaks.py:57" in result.stdout or "graph_breaks.py:" in result.stdout
    svg = (tmp_path / "ItemScale.compile.svg").read_bytes()
    texts = "".join(
        t.text or "" for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")
    )
    assert "graph break 1 (after graph 1): x.item(): a Python number from a tensor" in texts
    assert "torch.compile: 2 graphs, 1 graph break" in texts


def test_json_report_and_graph(tmp_path: Path) -> None:
    out = tmp_path / "g.json"
    result = runner.invoke(app, ["compile", f"{EXAMPLES}:Printing", "-f", "json", "-o", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # the model's own print() went to stderr
    assert report["graphs"] == 2 and report["breaks"][0]["reason"].startswith("print()")
    graph = Graph.load(out)
    assert graph.compilation is not None and graph.compilation.breaks[0].after == 1
    # The saved graph draws again without torch.compile, with its colours.
    picture = tmp_path / "again.dot"
    assert runner.invoke(app, ["render", str(out), "-o", str(picture)]).exit_code == 0
    assert "graph break 1" in picture.read_text()


def test_markdown_report(tmp_path: Path) -> None:
    result = runner.invoke(app, ["compile", f"{EXAMPLES}:DataDependentIf", "-f", "md", "--no-draw"])
    assert result.exit_code == 0, result.output
    assert "| data-dependent branch | `graph_breaks.py:" in result.stdout


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--check"], 1),
        (["--max-breaks", "0"], 1),
        (["--max-breaks", "1"], 0),
        (["--max-breaks", "1", "--check"], 0),
        ([], 0),
    ],
)
def test_check_exits_1_above_the_bound(args: list[str], code: int) -> None:
    result = runner.invoke(app, ["compile", f"{EXAMPLES}:NumpyMedian", "--no-draw", *args])
    assert result.exit_code == code, result.output
    if code:
        assert "check: 1 graph break, more than the 0 allowed (--max-breaks)" in result.output


def test_check_passes_on_a_clean_model() -> None:
    result = runner.invoke(app, ["compile", f"{EXAMPLES}:Clean", "--no-draw", "--check"])
    assert result.exit_code == 0, result.output
    assert "Clean: 1 graph, 0 graph breaks" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-breaks", "-1"], "--max-breaks -1: give 0 or more"),
        (["-f", "xml"], "--format 'xml'"),
        (["--no-draw", "-o", "x.svg"], "--no-draw writes no picture"),
        (["-o", "x.txt"], "x.txt"),
        (["--depth", "0"], "--depth"),
    ],
)
def test_bad_options_are_one_line_and_write_nothing(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["compile", f"{EXAMPLES}:Clean", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not list(tmp_path.iterdir())


def test_a_saved_graph_cannot_be_compiled(tmp_path: Path) -> None:
    saved = tmp_path / "g.json"
    saved.write_text("{}")
    result = runner.invoke(app, ["compile", str(saved)])
    assert result.exit_code == 2 and "not a saved graph" in result.output


def test_a_real_subprocess_checks_for_breaks(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "fxviz",
            "compile",
            f"{EXAMPLES}:ItemScale",
            "--check",
            "-o",
            str(tmp_path / "x.svg"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "Graph break" not in done.stderr  # torch's own warnings stay quiet
    assert "check: 1 graph break" in done.stderr
    assert (tmp_path / "x.svg").read_bytes().startswith(b"<?xml")
