"""`fxviz diff`: the matcher on hand-made models, real torchvision pairs, saved graphs, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import fxviz
from fxviz.cli import app
from fxviz.diff import GraphDiff, diff, format_report

REPO = Path(__file__).parent.parent
BEFORE = f"{REPO}/examples/refactor_before.py"
AFTER = f"{REPO}/examples/refactor_after.py"
runner = CliRunner()


def trace(model: nn.Module, shape: tuple[int, ...] = (1, 4)) -> fxviz.Graph:
    return fxviz.trace(model, torch.zeros(shape))


def kinds(d: GraphDiff) -> list[tuple[str, str, str]]:
    return [(c.kind, c.path_a, c.path_b) for c in d.changes]


class Two(nn.Module):
    def __init__(self, width: int = 8, act: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Linear(4, width), act())
        self.head = nn.Linear(width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(x))


class Renamed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stage = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stage(x))


class Skips(nn.Module):
    """Same modules as Two, but the head reads the input: a rewiring."""

    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
        self.head = nn.Linear(8, 2)
        self.pre = nn.Linear(4, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.block(x)
        return self.head(self.pre(x))


def test_identical_models() -> None:
    d = diff(trace(Two()), trace(Two()))
    assert d.identical and d.changes == ()
    assert format_report(d).endswith("are identical\n")


def test_a_renamed_submodule_is_one_rename() -> None:
    d = diff(trace(Two()), trace(Renamed()))
    assert kinds(d) == [("renamed", "block", "stage")]
    assert d.params_a == d.params_b


def test_changed_hyperparameters_params_and_shapes() -> None:
    d = diff(trace(Two(width=8)), trace(Two(width=16)))
    changed = {c.path: c for c in d.changes}
    assert set(changed) == {"block.0", "block.1", "head"}
    assert changed["block.1"].details == ("output 1×8 -> 1×16",)  # the ReLU after it
    assert (
        "in_features=4, out_features=8 -> in_features=4, out_features=16"
        in changed["block.0"].details
    )
    assert "params 40 -> 80" in changed["block.0"].details
    assert "output 1×8 -> 1×16" in changed["block.0"].details
    assert d.first_divergence == "block.0: 1×8 -> 1×16"
    assert d.params_b - d.params_a == sum(c.params_delta for c in d.changes) == 56


def test_changed_class() -> None:
    d = diff(trace(Two(act=nn.ReLU)), trace(Two(act=nn.GELU)))
    assert kinds(d) == [("changed", "block.1", "block.1")]
    assert d.changes[0].details[0] == "class ReLU -> GELU"


def test_added_and_removed_report_the_top_module_only() -> None:
    d = diff(trace(Two()), trace(Skips()))
    assert ("added", "", "pre") in kinds(d)
    d_back = diff(trace(Skips()), trace(Two()))
    assert ("removed", "pre", "") in kinds(d_back)


def test_rewiring_that_no_insertion_explains() -> None:
    class Reordered(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(4, 4)
            self.b = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(self.a(x))

    class Swapped(Reordered):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.a(self.b(x))

    d = diff(trace(Reordered()), trace(Swapped()))
    assert [c.kind for c in d.changes] == ["rewired", "rewired"]
    assert d.changes[0].details == ("inputs <input x> -> b",)


def test_resnet18_vs_resnet34_reports_exactly_the_added_blocks() -> None:
    d = diff(fxviz.trace("resnet18"), fxviz.trace("resnet34"))
    assert kinds(d) == [
        ("added", "", path)
        for path in [
            "layer1.2",
            "layer2.2",
            "layer2.3",
            "layer3.2",
            "layer3.3",
            "layer3.4",
            "layer3.5",
            "layer4.2",
        ]
    ]
    assert d.params_b - d.params_a == 10_108_160


def test_saved_graphs_give_the_same_diff(tmp_path: Path) -> None:
    a, b = fxviz.trace(BEFORE), fxviz.trace(AFTER)
    a.save(tmp_path / "a.json")
    b.save(tmp_path / "b.json")
    from_json = diff(fxviz.Graph.load(tmp_path / "a.json"), fxviz.Graph.load(tmp_path / "b.json"))
    assert from_json.changes == diff(a, b).changes


def test_example_refactor_goldens(golden, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(REPO)
    result = runner.invoke(
        app,
        [
            "diff",
            "examples/refactor_before.py",
            "examples/refactor_after.py",
            "-o",
            f"{tmp_path}/d.json",
            "-o",
            f"{tmp_path}/d.dot",
        ],
    )
    assert result.exit_code == 1, result.output
    changes = json.loads((tmp_path / "d.json").read_text())["changes"]
    assert [(c["kind"], c["path_b"]) for c in changes] == [
        ("renamed", "stage"),
        ("added", "dropout"),
        ("changed", "head"),
    ]
    golden("diff/refactor.json", (tmp_path / "d.json").read_text())
    golden("diff/refactor.dot", (tmp_path / "d.dot").read_text())
    golden("diff/refactor.txt", result.stdout)


def test_diff_json_matches_its_schema(tmp_path: Path) -> None:
    from importlib.resources import files

    import jsonschema

    schema = json.loads(files("fxviz").joinpath("schema/diff.schema.json").read_text())
    document = json.loads(diff(fxviz.trace(BEFORE), fxviz.trace(AFTER)).to_json())
    jsonschema.validate(document, schema)
    assert document["schema_version"] == 1 and document["params"]["delta"] == 170


def test_cli_exit_codes_and_outputs(tmp_path: Path) -> None:
    same = runner.invoke(app, ["diff", BEFORE, BEFORE])
    assert same.exit_code == 0 and "are identical" in same.stdout
    result = runner.invoke(app, ["diff", BEFORE, AFTER, "-o", str(tmp_path / "d.svg")])
    assert result.exit_code == 1
    assert "~ renamed  block -> stage (Sequential)" in result.stdout
    assert "params: 2,970 -> 3,140 (+170)" in result.stdout
    svg = (tmp_path / "d.svg").read_text()
    assert svg.count('fill="#c9d7f8"') >= 4  # stage and its three layers drawn as renamed, + legend
    assert 'fill="#b7e4b0"' in svg and 'fill="#fbd38d"' in svg  # dropout added, head changed


def test_per_side_inputs(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["diff", BEFORE, BEFORE, "--input", "1,3,32,32", "--input-b", "2,3,32,32"]
    )
    assert result.exit_code == 1
    assert "first shape that diverges: stem: 1×16×32×32 -> 2×16×32×32" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["diff", "resnet81", "resnet18"], "did you mean resnet18"),
        (["diff", "resnet18", "resnet18", "-o", "d.jpeg"], "suffix '.jpeg'"),
    ],
)
def test_cli_errors_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and message in result.stderr


def test_diff_of_a_graph_with_a_non_graph_file(tmp_path: Path) -> None:
    fxviz.trace(BEFORE).save(tmp_path / "a.json")
    (tmp_path / "notes.json").write_text('{"hello": "world"}')
    result = runner.invoke(app, ["diff", str(tmp_path / "a.json"), str(tmp_path / "notes.json")])
    assert result.exit_code == 2 and "notes.json: graph: missing field" in result.stderr


def test_diff_of_saved_graphs_never_imports_torch(tmp_path: Path) -> None:
    fxviz.trace(BEFORE).save(tmp_path / "a.json")
    fxviz.trace(AFTER).save(tmp_path / "b.json")
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch': raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "sys.argv = ['fxviz', 'diff', 'a.json', 'b.json', '-o', 'd.dot']\n"
        "from fxviz.cli import main\nmain()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode == 1, done.stderr
    assert "1 added, 1 changed, 1 renamed" in done.stdout
    assert (tmp_path / "d.dot").exists()
