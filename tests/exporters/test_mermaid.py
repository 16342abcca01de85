"""Mermaid output: the default picture as a `flowchart` (module subgraphs, folded runs as
`×N`, shapes on the nodes), escaped for Mermaid's grammar, and accepted by Mermaid's own
parser where .ci/run has installed it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from handmade import compiled_chain, hostile_graph, hostile_names_graph
from typer.testing import CliRunner

import fxviz
from fxviz.cli import app
from fxviz.drawing import to_mermaid
from fxviz.errors import OutputError
from fxviz.graph import Graph

REPO = Path(__file__).parent.parent.parent
LENET = f"{REPO}/examples/lenet.py:LeNet"
PARSER = REPO / ".ci" / "mermaid-parse.mjs"


def test_lenet_mermaid_golden(golden) -> None:  # type: ignore[no-untyped-def]
    golden("exporters/lenet.mmd", to_mermaid(fxviz.trace(LENET)))


def test_folded_runs_are_one_subgraph_with_their_count() -> None:
    text = to_mermaid(fxviz.trace("hf:bert", layers=3))
    assert 'subgraph c3["encoder.layer.0–2: BertLayer ×3"]' in text
    assert text.count("BertLayer ×3") == 1
    assert re.search(r'\["encoder\.layer\.0–2\.attention\.self\.query · Linear<br/>', text)


@pytest.mark.parametrize(
    "graph", [hostile_graph(), hostile_names_graph()], ids=["hostile", "names"]
)
def test_hostile_names_stay_text(graph: Graph) -> None:
    text = to_mermaid(graph)
    _, front, body = text.split("---\n", 2)
    # The title is one single-quoted YAML line, with no markup for Mermaid's sanitizer.
    assert re.fullmatch(r"title: '([^'\n<>]|'')*'\n", front), front
    for line in body.splitlines():
        if '["' in line:  # a node or a subgraph: one quoted label, nothing after but a class
            label = line.split('["', 1)[1].replace("<br/>", "\n")  # fxviz's line breaks
            assert re.fullmatch(r'[^"<>`]*"\](:::\w+)?', label), line
    assert "<img" not in body and "</script>" not in body and "-->B" not in body
    statements = [line.strip() for line in body.splitlines()]
    edges = [s for s in statements if "-->" in s]
    assert all(re.fullmatch(r"n\d+ --> n\d+", s) for s in edges)


def test_markdown_fences_it_and_the_cli_writes_both(tmp_path: Path) -> None:
    runner = CliRunner()
    mmd, md = tmp_path / "lenet.mmd", tmp_path / "lenet.md"
    result = runner.invoke(app, [LENET, "-o", str(mmd), "-o", str(md), "-q"])
    assert result.exit_code == 0, result.output
    assert md.read_text() == f"```mermaid\n{mmd.read_text()}```\n"
    assert mmd.read_text().startswith("---\ntitle: 'LeNet'\n---\nflowchart TB\n")


def test_a_diff_refuses_mermaid_and_writes_nothing(tmp_path: Path) -> None:
    from fxviz.exporters import save_files

    target = tmp_path / "d.mmd"
    with pytest.raises(OutputError, match="Mermaid draws one model"):
        save_files([tmp_path / "d.json", target], lambda: "{}", lambda: "digraph {}", "auto")
    assert not list(tmp_path.iterdir())


def _parser() -> list[str] | None:
    node = shutil.which("node")
    if node is None or not (REPO / ".ci" / "node_modules" / "mermaid").is_dir():
        return None
    return [node, str(PARSER)]


@pytest.mark.skipif(
    _parser() is None,
    reason="Mermaid's parser needs node and `npm install --prefix .ci mermaid jsdom` "
    "(.ci/run does both)",
)
def test_mermaids_own_parser_accepts_what_fxviz_writes(tmp_path: Path) -> None:
    graphs = {
        "lenet": fxviz.trace(LENET),
        "bert": fxviz.trace("hf:bert", layers=3),
        "gates": fxviz.trace(f"{REPO}/examples/lstm_tagger.py:LSTMTagger", expand=("LSTM",)),
        "hostile": hostile_graph(),
        "names": hostile_names_graph(),
        "compiled": compiled_chain(),  # torch.compile's classes and break notes
    }
    files = []
    for name, graph in graphs.items():
        options = {"expand": ("LSTM",)} if name == "gates" else {}
        path = tmp_path / f"{name}.mmd"
        path.write_text(to_mermaid(graph, fxviz.drawing.draw_options(**options)))
        files.append(str(path))
    command = _parser()
    assert command is not None
    done = subprocess.run([*command, *files], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("flowchart") == len(files)
