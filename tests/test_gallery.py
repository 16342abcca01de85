"""`fxviz gallery`: manifests, reproducible output, --check, failures that do not stop the rest."""

from __future__ import annotations

import hashlib
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

import fxviz
from fxviz.cli import app
from fxviz.diff import format_report
from fxviz.drawing import to_dot
from fxviz.errors import SpecError
from fxviz.gallery import Entry, draw_all, draw_entry, index_files, read_manifest
from fxviz.graph import Graph

REPO = Path(__file__).parent.parent
runner = CliRunner()
SVG = "{http://www.w3.org/2000/svg}"

MANIFEST = f"""
[defaults]
renderer = "embedded"

[[model]]
name = "tiny"
spec = "{REPO}/examples/tiny.py:TinyNet"
title = "Tiny | net"

[[model]]
name = "lenet"
spec = "{REPO}/examples/lenet.py:LeNet"
formats = ["svg", "json", "dot"]
"""


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(MANIFEST)
    return path


def _hashes(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.suffix != ".toml"
    }


def test_draws_every_entry_and_an_index(manifest: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["gallery", str(manifest)])
    assert result.exit_code == 0, result.output
    assert sorted(_hashes(tmp_path)) == [
        ".fxviz-gallery.json",  # what was drawn, for --resume
        "README.md",
        "index.html",
        "lenet.dot",
        "lenet.json",
        "lenet.svg",
        "tiny.json",
        "tiny.svg",
    ]
    readme = (tmp_path / "README.md").read_text()
    assert "| [tiny](tiny.svg) | Tiny \\| net | 67 | 112 | fx |" in readme
    assert '<img src="lenet.svg"' in (tmp_path / "index.html").read_text()
    assert "drawn: tiny" in result.stderr and "gallery: drew 2/2 entries" in result.stderr


def test_two_runs_are_byte_identical(manifest: Path, tmp_path: Path) -> None:
    assert runner.invoke(app, ["gallery", str(manifest)]).exit_code == 0
    first = _hashes(tmp_path)
    assert runner.invoke(app, ["gallery", str(manifest), "--jobs", "2"]).exit_code == 0
    assert _hashes(tmp_path) == first


def test_check_passes_then_names_what_is_stale(manifest: Path, tmp_path: Path) -> None:
    assert runner.invoke(app, ["gallery", str(manifest)]).exit_code == 0
    clean = runner.invoke(app, ["gallery", str(manifest), "--check"])
    assert clean.exit_code == 0, clean.output
    manifest.write_text(
        MANIFEST.replace(
            'formats = ["svg", "json", "dot"]', 'formats = ["svg", "json", "dot"]\nrankdir = "LR"'
        )
    )
    before = _hashes(tmp_path)
    stale = runner.invoke(app, ["gallery", str(manifest), "--check"])
    assert stale.exit_code == 1
    assert (
        f"stale: {tmp_path / 'lenet.svg'}" in stale.stderr
        and f"stale: {tmp_path / 'lenet.dot'}" in stale.stderr
    )
    assert "tiny.svg" not in stale.stderr
    assert _hashes(tmp_path) == before  # --check writes nothing


def test_missing_files_are_stale(manifest: Path, tmp_path: Path) -> None:
    assert runner.invoke(app, ["gallery", str(manifest)]).exit_code == 0
    os.remove(tmp_path / "tiny.json")
    result = runner.invoke(app, ["gallery", str(manifest), "--check"])
    assert result.exit_code == 1 and "tiny.json (missing)" in result.stderr


def test_entries_choose_annotations_views_and_expansion(tmp_path: Path) -> None:
    manifest = tmp_path / "models.toml"
    manifest.write_text(
        f"""
[defaults]
renderer = "embedded"
formats = ["dot"]

[[model]]
name = "annotated"
spec = "{REPO}/examples/lenet.py:LeNet"
show = "params,-args"

[[model]]
name = "gates"
spec = "{REPO}/examples/lstm_tagger.py:LSTMTagger"
expand = ["LSTM"]
all_ops = true
"""
    )
    result = runner.invoke(app, ["gallery", str(manifest)])
    assert result.exit_code == 0, result.output
    annotated = (tmp_path / "annotated.dot").read_text()
    assert "conv1 · Conv2d\\n1×6×28×28\\n156 params" in annotated
    gates = (tmp_path / "gates.dot").read_text()
    # One time step's 3 sigmoid gates, each its own node, in a loop cluster of 12 steps.
    assert gates.count('[label="sigmoid') == 3
    assert "loop ×12" in gates


def test_a_broken_entry_does_not_stop_the_rest(manifest: Path, tmp_path: Path) -> None:
    manifest.write_text(MANIFEST + '\n[[model]]\nname = "broken"\nspec = "resnet81"\n')
    result = runner.invoke(app, ["gallery", str(manifest)])
    assert result.exit_code == 1
    assert (
        "failed: broken (resnet81): no torchvision model named 'resnet81'; did you mean resnet18"
        in result.stderr
    )
    assert (tmp_path / "tiny.svg").exists() and (tmp_path / "lenet.svg").exists()
    assert "| broken | `resnet81` | — | — | failed |" in (tmp_path / "README.md").read_text()
    assert "gallery: drew 2/3 entries" in result.stderr


def test_specs_are_relative_to_the_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "nets").mkdir()
    (tmp_path / "nets" / "models.toml").write_text(
        '[[model]]\nname = "t"\nspec = "../tiny.py:TinyNet"\nrenderer = "embedded"\n'
    )
    (tmp_path / "tiny.py").write_text((REPO / "examples" / "tiny.py").read_text())
    monkeypatch.chdir(REPO)
    result = runner.invoke(app, ["gallery", str(tmp_path / "nets" / "models.toml")])
    assert result.exit_code == 0, result.output
    assert '"source": "../tiny.py:TinyNet"' in (tmp_path / "nets" / "t.json").read_text()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[model]]\nname = "a"\n', r"\[\[model\]\] #1 \(a\): missing key 'spec'"),
        ('[[model]]\nspec = "resnet18"\n', r"\[\[model\]\] #1: missing key 'name'"),
        (
            '[[model]]\nname = "a"\nspec = "resnet18"\ninptus = ["1,3"]\n',
            r"#1 \(a\): unknown key 'inptus'",
        ),
        (
            '[[model]]\nname = "a"\nspec = "resnet18"\ninputs = "1,3"\n',
            r"#1 \(a\): key 'inputs' must be a list, not str",
        ),
        (
            '[[model]]\nname = "a"\nspec = "r"\n[[model]]\nname = "a"\nspec = "r"\n',
            r"#2 \(a\): name 'a' is used twice",
        ),
        ('[[model]]\nname = "../a"\nspec = "r"\n', "must be a plain file name"),
        (
            '[[model]]\nname = "a"\nspec = "r"\nformats = ["gif"]\n',
            "key 'formats': unknown format 'gif'",
        ),
        (
            '[defaults]\nname = "x"\n[[model]]\nname = "a"\nspec = "r"\n',
            r"\[defaults\]: unknown key 'name'",
        ),
        ("[models]\n", "unknown table 'models'"),
        ("", r"no \[\[model\]\] entries"),
        ("[[model]\n", "not valid TOML"),
    ],
)
def test_manifest_errors_name_the_entry_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "models.toml"
    path.write_text(text)
    with pytest.raises(SpecError, match=message):
        read_manifest(path)


def test_manifest_error_through_the_cli(tmp_path: Path) -> None:
    (tmp_path / "m.toml").write_text('[[model]]\nname = "a"\n')
    result = runner.invoke(app, ["gallery", str(tmp_path / "m.toml")])
    assert result.exit_code == 2 and "missing key 'spec'" in result.stderr


def test_this_repositorys_gallery_matches_the_code() -> None:
    """Every committed diagram shows the architecture the code draws today: the same module
    calls, classes, hyper-parameters, parameters and shapes (fxviz.diff finds nothing), the
    same totals and the same drawn nodes. Structural on purpose: the bytes of SVG, DOT and
    JSON belong to torch, transformers and Graphviz too, and are checked byte for byte by
    .ci/run with the versions in constraints.txt."""
    folder = REPO / "gallery"
    entries = read_manifest(folder / "models.toml")
    for drawn in draw_all(entries, jobs=2):
        name = drawn.entry.name
        assert not drawn.error, f"{name}: {drawn.error}"
        new = Graph.from_json(drawn.files[f"{name}.json"])
        old = Graph.load(folder / f"{name}.json")
        assert fxviz.diff(old, new).identical, f"{name}: {format_report(fxviz.diff(old, new))}"
        assert (old.totals, old.tracer, old.device) == (new.totals, new.tracer, new.device), name
        assert _drawn_nodes(folder / f"{name}.svg") == _drawn_nodes_of(new, drawn.entry), name


def _drawn_nodes(svg: Path) -> list[str]:
    """The ids of the boxes an SVG draws (each node's <title>)."""
    root = ET.fromstring(svg.read_bytes())
    return sorted(
        str(g.findtext(f"{SVG}title")) for g in root.iter(f"{SVG}g") if g.get("class") == "node"
    )


def _drawn_nodes_of(graph: Graph, entry: Entry) -> list[str]:
    dot = to_dot(graph, entry.options)
    return sorted(re.findall(r"^\t+(\S+) \[label=", dot, flags=re.M))


def test_an_entry_can_be_a_saved_graph(tmp_path: Path) -> None:
    fxviz.trace(f"{REPO}/examples/tiny.py:TinyNet").save(tmp_path / "tiny.json")
    (tmp_path / "m.toml").write_text(
        '[[model]]\nname = "again"\nspec = "tiny.json"\nformats = ["dot"]\nrankdir = "LR"\n'
    )
    (entry,) = read_manifest(tmp_path / "m.toml")
    drawn = draw_entry(entry)
    assert not drawn.error
    graph = Graph.load(tmp_path / "tiny.json")
    assert drawn.files["again.dot"] == graph.to_dot(rankdir="LR").encode()


def test_an_entry_can_be_drawn_as_mermaid(tmp_path: Path) -> None:
    """Formats are file suffixes: mmd writes Mermaid, md the same in a Markdown fence."""
    manifest = tmp_path / "models.toml"
    manifest.write_text(
        f'[[model]]\nname = "lenet"\nspec = "{REPO}/examples/lenet.py:LeNet"\n'
        'formats = ["mmd", "md", "json"]\n'
    )
    result = CliRunner().invoke(app, ["gallery", str(manifest), "-q"])
    assert result.exit_code == 0, result.output
    mermaid = (tmp_path / "lenet.mmd").read_text()
    assert "flowchart TB" in mermaid and "conv1 · Conv2d" in mermaid
    assert (tmp_path / "lenet.md").read_text() == f"```mermaid\n{mermaid}```\n"


def test_an_entry_can_be_a_page_to_explore_and_the_index_links_it(tmp_path: Path) -> None:
    manifest = tmp_path / "models.toml"
    manifest.write_text(
        f'[defaults]\nrenderer = "embedded"\n\n[[model]]\nname = "lenet"\n'
        f'spec = "{REPO}/examples/lenet.py:LeNet"\nformats = ["svg", "html"]\n\n'
        f'[[model]]\nname = "tiny"\nspec = "{REPO}/examples/tiny.py:TinyNet"\nformats = ["html"]\n'
    )
    result = CliRunner().invoke(app, ["gallery", str(manifest), "-q"])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "lenet.html").read_text()
    assert page.startswith("<!doctype html>") and "conv1 · Conv2d" in page
    index = (tmp_path / "index.html").read_text()
    assert '<a href="lenet.html"><img src="lenet.svg"' in index
    assert '<a href="tiny.html"><b>tiny</b></a>' in index
    readme = (tmp_path / "README.md").read_text()
    assert "| [lenet](lenet.svg) · [explore](lenet.html) |" in readme
    assert "| tiny · [explore](tiny.html) |" in readme
    # Drawn again, every byte is the same: the gallery's --check can hold pages too.
    again = CliRunner().invoke(app, ["gallery", str(manifest), "--check", "-q"])
    assert again.exit_code == 0, again.output


def test_an_entry_can_be_drawn_with_torch_compiles_graphs(tmp_path: Path) -> None:
    (tmp_path / "m.toml").write_text(
        f'[[model]]\nname = "item"\nspec = "{REPO}/examples/graph_breaks.py:ItemScale"\n'
        'formats = ["dot", "json"]\ncompile = true\n'
        f'[[model]]\nname = "plain"\nspec = "{REPO}/examples/graph_breaks.py:ItemScale"\n'
        'formats = ["dot"]\n'
    )
    compiled, plain = read_manifest(tmp_path / "m.toml")
    assert compiled.compile and not plain.compile
    drawn = draw_entry(compiled)
    assert not drawn.error, drawn.error
    assert "graph break 1 (after graph 1): x.item()" in drawn.files["item.dot"].decode()
    graph = Graph.from_json(drawn.files["item.json"])
    assert graph.compilation is not None and len(graph.compilation.breaks) == 1
    assert graph.source == f"{REPO}/examples/graph_breaks.py:ItemScale"
    assert "graph break" not in draw_entry(plain).files["plain.dot"].decode()
    assert drawn.compiled == "torch.compile: 2 graphs, 1 graph break"
    index = index_files([drawn])
    assert "| fx · torch.compile: 2 graphs, 1 graph break |" in index["README.md"].decode()
