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
from fxviz.diff.groups import pattern

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


def shown(d: GraphDiff) -> list[tuple[str, str, str]]:
    """The changes a reviewer reads: every one that is not a consequence."""
    return [(c.kind, c.path_a, c.path_b) for c in d.changes if not c.is_consequence]


def test_identical_models() -> None:
    d = diff(trace(Two()), trace(Two()))
    assert d.identical and d.changes == () and d.groups == ()
    assert format_report(d) == "Two and Two are identical\n"


def test_a_renamed_submodule_is_one_rename() -> None:
    d = diff(trace(Two()), trace(Renamed()))
    assert kinds(d) == [("renamed", "block", "stage")]
    assert d.params_a == d.params_b


def test_a_widened_layer_is_the_cause_and_the_shapes_after_it_follow() -> None:
    d = diff(trace(Two(width=8)), trace(Two(width=16)))
    assert shown(d) == [("changed", "block.0", "block.0"), ("changed", "head", "head")]
    widened, head = d.changes[0], d.changes[1]
    assert widened.details == (
        "in_features=4, out_features=8 -> in_features=4, out_features=16",
        "params 40 -> 80",
    )
    assert widened.facets == ("sizes ×2 (8 -> 16)",)
    assert head.facets == ("sizes ×2 (8 -> 16)",)
    follows = {c.path: (c.details, c.cause) for c in d.changes if c.is_consequence}
    # The Linear's own output and the ReLU after it both follow from the Linear's change.
    assert follows == {
        "block.0": (("output 1×8 -> 1×16",), 0),
        "block.1": (("output 1×8 -> 1×16",), 0),
    }
    assert d.first_divergence == "block.0: 1×8 -> 1×16"
    assert d.params_b - d.params_a == sum(c.params_delta for c in d.changes) == 56
    # The same edit twice is one line.
    assert [(g.what, g.where, g.consequences) for g in d.groups] == [
        ("sizes ×2 (8 -> 16)", "block.0, head (2 modules)", 2)
    ]


def test_changed_class() -> None:
    d = diff(trace(Two(act=nn.ReLU)), trace(Two(act=nn.GELU)))
    assert kinds(d) == [("changed", "block.1", "block.1")]
    assert d.changes[0].details == ("class ReLU -> GELU",)
    assert d.changes[0].facets == ("class ReLU -> GELU",)


def test_an_input_shape_is_a_cause_and_every_shape_after_it_follows() -> None:
    d = diff(trace(Two(), (1, 4)), trace(Two(), (3, 4)))
    assert shown(d) == [("input", "x", "x")]
    assert d.changes[0].details == ("1×4 -> 3×4",)
    assert {c.cause for c in d.changes if c.kind == "shape"} == {0}
    report = format_report(d)
    assert report.splitlines()[1] == "  * input x: 1×4 -> 3×4 [3 shapes follow]"
    assert "block.0" not in report.split("params:")[0]
    assert "block.0 (Linear); output 1×8 -> 3×8; follows #0 x" in format_report(d, every=True)


def test_added_and_removed_report_the_top_module_only() -> None:
    d = diff(trace(Two()), trace(Skips()))
    assert ("added", "", "pre") in kinds(d)
    d_back = diff(trace(Skips()), trace(Two()))
    assert ("removed", "pre", "") in kinds(d_back)


def test_two_modules_swapped_are_one_swap() -> None:
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
    assert [(c.kind, c.facets) for c in d.changes] == [("rewired", ("swapped",))]
    assert d.changes[0].details == ("b and a swapped: now <input x> -> b -> a",)


def test_an_insertion_into_a_sequential_renumbers_rather_than_changes() -> None:
    before = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU())
    after = nn.Sequential(
        nn.Linear(4, 8), nn.LayerNorm(8), nn.ReLU(), nn.Linear(8, 8), nn.LayerNorm(8), nn.ReLU()
    )
    d = diff(trace(before), trace(after))
    assert shown(d) == [
        ("added", "", "1"),
        ("renumbered", "1", "2"),
        ("renumbered", "2", "3"),
        ("added", "", "4"),
        ("renumbered", "3", "5"),
    ]
    assert [(g.kind, g.what, g.where) for g in d.groups] == [
        ("added", "2 LayerNorm, each after a Linear", "{1,4}"),
        ("renumbered", "3 renumbered", "1 -> 2 … 3 -> 5"),
    ]


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (["layer1.2"], "layer1.2"),
        (
            ["layer1.2", "layer2.2", "layer2.3", "layer3.2", "layer3.3", "layer3.4", "layer4.2"],
            "layer1.2, layer2.{2,3}, layer3.{2..4}, layer4.2",
        ),
        (["features.4.4", "features.5.4", "features.6.5"], "features.{4,5}.4, features.6.5"),
        (
            [f"encoder.layer.{i}.{n}" for i in (0, 1) for n in ("attention.ln", "output.ln")],
            "encoder.layer.{0,1}.{attention,output}.ln",
        ),
        (
            [
                f"layer{i}.{j}.{n}"
                for i, blocks in ((1, 3), (2, 4), (3, 23), (4, 3))
                for j in range(blocks)
                for n in ("conv1", "bn1", "conv2")
            ],
            "layer{1..4}.*.{conv1,bn1,conv2}",
        ),
    ],
)
def test_path_patterns(paths: list[str], expected: str) -> None:
    assert pattern(paths) == expected


class Traced(dict[str, fxviz.Graph]):
    """`zoo["hf:gpt2 n_layer=2"]`: the spec, then its config overrides; each traced once."""

    def __missing__(self, key: str) -> fxviz.Graph:
        spec, *config = key.split()
        self[key] = fxviz.trace(spec, config=config)
        return self[key]


@pytest.fixture(scope="module")
def zoo() -> Traced:
    """The real pairs a reviewer diffs, traced once for this module's tests."""
    return Traced()


def report_lines(d: GraphDiff) -> list[str]:
    lines = format_report(d).splitlines()
    assert len(lines) <= 15, format_report(d)
    return lines


def test_resnet18_vs_resnet34_reports_exactly_the_added_blocks(zoo: Traced) -> None:
    d = diff(zoo["resnet18"], zoo["resnet34"])
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
    assert report_lines(d) == [
        "resnet18 -> resnet34: 8 added",
        "  + 8 BasicBlock: layer1.2, layer2.{2,3}, layer3.{2..5}, layer4.2 [+10,108,160 params]",
        "params: 11,689,512 -> 21,797,672 (+10,108,160)",
        "FLOPs: 3,628,146,688 -> 7,327,522,816 (+3,699,376,128)",
    ]


def test_vgg13_vs_vgg13_bn_inserted_batchnorms_and_renumbering(zoo: Traced) -> None:
    d = diff(zoo["vgg13"], zoo["vgg13_bn"])
    inserted = [1, 4, 8, 11, 15, 18, 22, 25, 29, 32]
    assert [(c.path_b, c.class_name) for c in d.changes if c.kind == "added"] == [
        (f"features.{i}", "BatchNorm2d") for i in inserted
    ]
    assert not [c for c in d.changes if c.kind == "changed"]
    renumbered = [c for c in d.changes if c.kind == "renumbered"]
    assert len(renumbered) == 24 and all(
        zoo["vgg13"].module(c.path_a).class_name == zoo["vgg13_bn"].module(c.path_b).class_name
        for c in renumbered
    )
    assert report_lines(d)[:3] == [
        "vgg13 -> vgg13_bn: 10 added, 24 renumbered",
        "  + 10 BatchNorm2d, each after a Conv2d: features.{1,4,8,11,15,18,22,25,29,32} "
        "[+5,888 params]",
        "  ~ 24 renumbered in features: features.1 -> features.2 … features.24 -> features.34",
    ]


def test_resnet101_vs_wide_resnet101_2_is_one_grouped_width_change(zoo: Traced) -> None:
    d = diff(zoo["resnet101"], zoo["wide_resnet101_2"])
    assert len(d.groups) == 1
    (width,) = d.groups
    assert width.what == "sizes ×2 (64 -> 128, 128 -> 256, …)"
    assert width.where == "layer{1..4}.*.{conv1,bn1,conv2,bn2,conv3} (165 modules in 33 Bottleneck)"
    assert width.params_delta == d.params_b - d.params_a == 82_337_536
    lines = report_lines(d)
    assert len(lines) == 5 and not any("relu" in line for line in lines)


def test_efficientnet_b2_vs_b3_input_first_blocks_named_consequences_hidden(zoo: Traced) -> None:
    d = diff(zoo["efficientnet_b2"], zoo["efficientnet_b3"])
    first, *rest = d.groups
    assert (first.kind, first.what) == ("input", "input x: 1×3×288×288 -> 1×3×300×300")
    added = [g for g in rest if g.kind == "added"]
    assert [(g.what, g.where) for g in added] == [("3 MBConv", "features.{4,5}.4, features.6.5")]
    assert "shape" not in {g.kind for g in d.groups}
    lines = report_lines(d)
    assert lines[1] == "  * input x: 1×3×288×288 -> 1×3×300×300"
    assert lines[-1].startswith("first output that changes shape: features.0.0: ")
    assert not any("; output" in line for line in lines)  # no consequence listed
    every = format_report(d, every=True)
    assert "features.0.2 (SiLU); output 1×32×144×144 -> 1×40×150×150; follows" in every


def test_bert_vs_electra_projection_added_and_family_renamed(zoo: Traced) -> None:
    d = diff(zoo["hf:bert num_hidden_layers=2"], zoo["hf:electra num_hidden_layers=2"])
    by_kind = {(g.kind, g.what) for g in d.groups}
    assert ("added", "embeddings_project (Linear)") in by_kind
    assert ("removed", "pooler (BertPooler)") in by_kind
    renames = [g for g in d.groups if g.what.startswith("classes")]
    assert [g.what for g in renames] == ["classes Bert* -> Electra*"]
    assert len(renames[0].members) == 14
    report_lines(d)


def test_gpt2_at_2_vs_4_layers_two_blocks_added(zoo: Traced) -> None:
    d = diff(zoo["hf:gpt2 n_layer=2"], zoo["hf:gpt2 n_layer=4"])
    assert shown(d) == [("added", "", "h.2"), ("added", "", "h.3")]
    assert [(g.what, g.where) for g in d.groups] == [("2 GPT2Block", "h.{2,3}")]
    assert len(report_lines(d)) == 4


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
        ("shape", "head"),
    ]
    assert changes[-1]["cause"] == 2  # the head's output follows from the head's own change
    golden("diff/refactor.json", (tmp_path / "d.json").read_text())
    golden("diff/refactor.dot", (tmp_path / "d.dot").read_text())
    golden("diff/refactor.txt", result.stdout)


def test_diff_json_matches_its_schema(tmp_path: Path) -> None:
    from importlib.resources import files

    import jsonschema

    schema = json.loads(files("fxviz").joinpath("schema/diff.schema.json").read_text())
    document = json.loads(diff(fxviz.trace(BEFORE), fxviz.trace(AFTER)).to_json())
    jsonschema.validate(document, schema)
    assert document["schema_version"] == 2 and document["params"]["delta"] == 170


def test_cli_exit_codes_and_outputs(tmp_path: Path) -> None:
    same = runner.invoke(app, ["diff", BEFORE, BEFORE])
    assert same.exit_code == 0 and same.stdout == f"{BEFORE} and {BEFORE} are identical\n"
    fxviz.trace(BEFORE).save(tmp_path / "before.json")
    saved = runner.invoke(app, ["diff", BEFORE, str(tmp_path / "before.json")])
    assert saved.exit_code == 0 and len(saved.stdout.splitlines()) == 1, saved.stdout
    result = runner.invoke(app, ["diff", BEFORE, AFTER, "-o", str(tmp_path / "d.svg")])
    assert result.exit_code == 1
    assert "  ~ block -> stage (Sequential)" in result.stdout
    assert "params: 2,970 -> 3,140 (+170)" in result.stdout
    svg = (tmp_path / "d.svg").read_text()
    assert svg.count('fill="#c9d7f8"') >= 4  # stage and its three layers drawn as renamed, + legend
    assert 'fill="#b7e4b0"' in svg and 'fill="#fbd38d"' in svg  # dropout added, head changed


def test_per_side_inputs(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["diff", BEFORE, BEFORE, "--input", "1,3,32,32", "--input-b", "2,3,32,32"]
    )
    assert result.exit_code == 1
    assert "  * input x: 1×3×32×32 -> 2×3×32×32 [" in result.stdout
    assert "first output that changes shape: stem: 1×16×32×32 -> 2×16×32×32" in result.stdout


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


def test_the_picture_colours_what_the_report_says() -> None:
    from fxviz.exporters.diffdot import diff_to_dot
    from fxviz.exporters.dot import STATUS_COLORS
    from fxviz.views import collapse

    before = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU())
    after = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.ReLU(), nn.Linear(8, 16), nn.ReLU())
    a, b = trace(before), trace(after)
    dot = diff_to_dot(a, b, diff(a, b))
    lines = {line.split(" [")[0].strip(): line for line in dot.splitlines() if " [label=" in line}
    assert 'fillcolor="#b7e4b0"' in lines["_1"]  # the inserted LayerNorm: added
    assert 'fillcolor="#fbd38d"' in lines["_3"]  # the widened Linear: changed
    assert not any(c in lines["_2"] for c in STATUS_COLORS.values())  # renumbered ReLU: plain
    assert "+ 1 LayerNorm" not in dot and "+ 1 (LayerNorm)" in dot  # the report, in the key

    class Outer(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x)

    a, b = collapse(trace(Outer(before)), 1), collapse(trace(Outer(after)), 1)
    collapsed = diff_to_dot(a, b, diff(a, b))
    inner = next(line for line in collapsed.splitlines() if line.strip().startswith("inner "))
    assert 'fillcolor="#fbd38d"' in inner  # the strongest change inside the collapsed module
