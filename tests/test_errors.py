"""Every wrong thing a user can type: exit 2, one line naming the culprit, no traceback, and no
file written. The same table with --debug shows the full traceback."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import fxviz
from fxviz.cli import app

REPO = Path(__file__).parent.parent
TAGGER = f"{REPO}/examples/lstm_tagger.py:LSTMTagger"
runner = CliRunner()

NET = """
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)

def example_inputs():
    return (torch.zeros(1, 4),)
"""

FILES: dict[str, str] = {
    "syntax.py": "def broken(:\n",
    "importerr.py": "import not_a_module_xyz\n",
    "empty.py": "x = 1\n",
    "two.py": NET + "\nclass Other(nn.Module):\n    pass\n",
    "ctor.py": NET
    + "\nclass Bad(nn.Module):\n    def __init__(self):\n        raise ValueError('bad width')\n",
    "fwd.py": NET.replace("return self.fc(x)", "raise ValueError('forward refuses')"),
    "corrupt.json": "{not json",
    "notes.json": json.dumps({"hello": "world"}),
    "notaprogram.pt2": "plain text",
    "bad.toml": '[[model]]\nname = "a"\nspec = "resnet18"\ninptus = ["1,3"]\n',
    "renderer.toml": '[[model]]\nname = "a"\nspec = "resnet18"\nrenderer = "sytem"\n',
    "depth.toml": '[[model]]\nname = "a"\nspec = "resnet18"\ndepth = 0\n',
    "tracer.toml": '[defaults]\ntracer = "fxx"\n[[model]]\nname = "a"\nspec = "resnet18"\n',
}


def _newer_graph(folder: Path) -> None:
    data = json.loads(fxviz.trace(f"{REPO}/examples/tiny.py:TinyNet").to_json())
    data["schema_version"] = 99
    (folder / "newer.json").write_text(json.dumps(data))


def _graph(folder: Path) -> None:
    fxviz.trace(f"{REPO}/examples/tiny.py:TinyNet").save(folder / "a.json")


def _diff_file(folder: Path) -> None:
    graph = fxviz.trace(f"{REPO}/examples/tiny.py:TinyNet")
    (folder / "d.json").write_text(fxviz.diff(graph, graph).to_json())


def _bad_tracer(folder: Path) -> None:
    data = json.loads(fxviz.trace(f"{REPO}/examples/tiny.py:TinyNet").to_json())
    data["tracer"] = "banana"
    (folder / "banana.json").write_text(json.dumps(data))


def _no_dot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)


def _unwritable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "access", lambda path, mode: False)


def _newer_program(folder: Path) -> None:
    src, dst = folder / "src.pt2", folder / "newer.pt2"
    torch.export.save(torch.export.export(torch.nn.Linear(2, 2), (torch.zeros(1, 2),)), src)
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst, "w") as b:
        for item in a.infolist():
            data = a.read(item)
            if "/models/" in item.filename and item.filename.endswith(".json"):
                doc = json.loads(data)
                doc["schema_version"]["major"] = 99
                data = json.dumps(doc).encode()
            b.writestr(item, data)
    src.unlink()


Setup = Callable[..., None] | None

CASES: list[tuple[str, list[str], str, Setup]] = [
    (
        "unknown torchvision name",
        ["resnet81"],
        "no torchvision model named 'resnet81'; did you mean resnet18",
        None,
    ),
    ("unknown prefix", ["timm:resnet18"], "unknown prefix 'timm'", None),
    (
        "input with a letter",
        ["resnet18", "--input", "1,3,x"],
        "--input '1,3,x': dimension 3 is 'x'",
        None,
    ),
    ("input with a gap", ["resnet18", "--input", "1,,3"], "dimension 2 is empty", None),
    ("negative input", ["resnet18", "--input", "-1"], "dimension 1 is '-1'", None),
    ("empty input", ["resnet18", "--input", ""], "--input '': no shape", None),
    ("unknown dtype", ["resnet18", "--input", "int65:1,3"], "unknown dtype 'int65'", None),
    (
        "input of the wrong rank",
        ["resnet18", "--input", "1,3,224"],
        "node 'conv1', conv1 (Conv2d), failed with input shapes 1×3×224",
        None,
    ),
    (
        "wrong channel count",
        ["resnet18", "--input", "1,1,64,64"],
        "conv1 (Conv2d) expects 3 channels but gets 1 (1×1×64×64): the input is the likely "
        "culprit (--input 1,3,64,64)",
        None,
    ),
    (
        "floats into an embedding",
        [TAGGER, "--input", "1,12"],
        "node 'embedding', embedding (Embedding), failed with input shapes 1×12",
        None,
    ),
    ("user file missing", ["missing.py:Net"], "no file 'missing.py'", None),
    ("user file syntax error", ["syntax.py:Net"], "syntax.py has a syntax error at line 1", None),
    (
        "import error inside the file",
        ["importerr.py:Net"],
        "importing importerr.py raised ModuleNotFoundError",
        None,
    ),
    ("no module in the file", ["empty.py"], "empty.py defines no nn.Module class", None),
    ("ambiguous file", ["two.py"], "several nn.Module classes (Net, Other); pick one", None),
    ("misspelled class", ["two.py:Nte"], "no 'Nte' in two.py; did you mean Net?", None),
    ("constructor raising", ["ctor.py:Bad"], "ctor.py:Bad() raised ValueError: bad width", None),
    (
        "forward raising",
        ["fwd.py:Net"],
        "no tracer can draw Net: torch.fx: forward refuses at fwd.py:11",
        None,
    ),
    (
        "hub id unreachable offline",
        ["hf:no-org/no-model"],
        "no hub model 'no-org/no-model' in the cache and offline",
        None,
    ),
    ("unknown model type", ["hf:bertt"], "did you mean hf:bert", None),
    (
        "bad --config key",
        ["hf:bert", "--config", "num_hiden_layers=2"],
        "BertConfig has no 'num_hiden_layers'; did you mean num_hidden_layers",
        None,
    ),
    (
        "bad --config value",
        ["hf:bert", "--config", "num_hidden_layers=two"],
        "num_hidden_layers is a number (now 12), not 'two'",
        None,
    ),
    (
        "--config on a torchvision model",
        ["resnet18", "--config", "depth=2"],
        "--config applies to Hugging Face models",
        None,
    ),
    ("bad --kwarg", ["resnet18", "--kwarg", "novalue"], "--kwarg 'novalue': write key=value", None),
    (
        "constructor rejects a kwarg",
        ["resnet18", "--kwarg", "num_clases=10"],
        "building torchvision resnet18(",
        None,
    ),
    (
        "unknown device",
        ["resnet18", "--device", "tpu"],
        "--device 'tpu': choose one of meta, cpu, cuda",
        None,
    ),
    (
        "weights on meta",
        ["resnet18", "--weights", "DEFAULT", "--device", "meta"],
        "--weights needs real memory",
        None,
    ),
    (
        "output folder missing",
        ["resnet18", "-o", "nowhere/x.svg"],
        "folder 'nowhere' does not exist",
        None,
    ),
    (
        "output folder unwritable",
        ["resnet18", "-o", "x.svg"],
        "folder '.' is not writable",
        _unwritable,
    ),
    ("unknown output suffix", ["resnet18", "-o", "x.jpeg"], "has suffix '.jpeg'", None),
    (
        "no renderer for PNG",
        ["resnet18", "-o", "x.png"],
        "PNG output needs Graphviz's `dot` on PATH",
        _no_dot,
    ),
    (
        "--renderer system without dot",
        ["resnet18", "--renderer", "system"],
        "--renderer system needs Graphviz's `dot`",
        _no_dot,
    ),
    ("bad --rankdir", ["resnet18", "--rankdir", "RL"], "--rankdir 'RL': choose TB or LR", None),
    ("bad --tracer", ["resnet18", "--tracer", "magic"], "--tracer 'magic': choose one of", None),
    (
        "bad --show",
        ["resnet18", "--show", "params,flop"],
        "--show 'params,flop': unknown annotation 'flop'; did you mean flops?",
        None,
    ),
    ("corrupt JSON", ["render", "corrupt.json"], "corrupt.json: not valid JSON", None),
    (
        "JSON that is not a graph",
        ["render", "notes.json"],
        "notes.json: graph: missing field",
        None,
    ),
    (
        "JSON from a newer schema",
        ["render", "newer.json"],
        "saved with schema version 99, newer than this fxviz reads",
        _newer_graph,
    ),
    (
        ".pt2 that is not one",
        ["notaprogram.pt2"],
        "notaprogram.pt2 is not a saved torch.export program",
        None,
    ),
    (
        ".pt2 from a newer torch",
        ["newer.pt2"],
        "newer.pt2 was saved by a newer torch (export schema 99.",
        _newer_program,
    ),
    (
        "gallery manifest error",
        ["gallery", "bad.toml"],
        "bad.toml: [[model]] #1 (a): unknown key 'inptus'",
        None,
    ),
    (
        "a diff file where a graph belongs",
        ["render", "d.json"],
        "d.json: this is a diff saved by `fxviz diff -o diff.json`, not a graph",
        _diff_file,
    ),
    (
        "a value the graph schema forbids",
        ["banana.json"],
        "banana.json: graph.tracer: 'banana' is not one of ['fx', 'export', 'record']",
        _bad_tracer,
    ),
    (
        "model options with a saved graph",
        ["a.json", "--input", "1,4"],
        "a.json is a saved graph, drawn as it was traced; --input",
        _graph,
    ),
    ("--depth 0", ["resnet18", "--depth", "0"], "--depth 0: give a whole number", None),
    ("summary --depth -1", ["summary", "resnet18", "--depth", "-1"], "--depth -1: give 0", None),
    (
        "manifest renderer typo",
        ["gallery", "renderer.toml"],
        "renderer.toml: [[model]] #1 (a): key 'renderer' 'sytem': did you mean system?",
        None,
    ),
    (
        "manifest depth 0",
        ["gallery", "depth.toml"],
        "depth.toml: [[model]] #1 (a): key 'depth' 0: give a whole number",
        None,
    ),
    (
        "manifest tracer typo",
        ["gallery", "tracer.toml"],
        "tracer.toml: [[model]] #1 (a): key 'tracer' 'fxx': choose one of",
        None,
    ),
    (
        "diff with a non-graph file",
        ["diff", "a.json", "notes.json"],
        "notes.json: graph: missing field 'schema_version'",
        _graph,
    ),
]
if not torch.cuda.is_available():
    CASES.append(
        (
            "cuda without a GPU",
            ["resnet18", "--device", "cuda"],
            "--device cuda: torch sees no CUDA GPU here",
            None,
        )
    )


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _prepare(setup: Setup, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if setup in (_no_dot, _unwritable):
        setup(monkeypatch)  # type: ignore[misc]
    elif setup is not None:
        setup(folder)


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize(
    ("args", "message", "setup"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_error(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str, setup: Setup
) -> None:
    _prepare(setup, workdir, monkeypatch)
    before = sorted(p.name for p in workdir.rglob("*"))
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    assert sorted(p.name for p in workdir.rglob("*")) == before


@pytest.mark.parametrize(
    ("args", "message", "setup"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_error_with_debug_shows_the_traceback(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str, setup: Setup
) -> None:
    _prepare(setup, workdir, monkeypatch)
    result = runner.invoke(app, [*args, "--debug"])
    assert result.exit_code == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("error: ")
    assert message in result.stderr
