"""Model specs at git revisions (`HEAD~1:net.py:Net`): diffs of what a commit changed, read
from git without touching the work tree."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

import fxviz
from fxviz.cli import app
from fxviz.errors import SpecError
from fxviz.specs import parse_model_spec

runner = CliRunner()

BLOCKS = """from torch import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.Linear(16, 16)
        self.mlp = nn.Linear(16, 16)

    def forward(self, x):
        return self.mlp(self.attn(x))
"""
NET = """import torch
from torch import nn

from blocks import Block


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(Block(), Block())
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        return self.head(self.blocks(x))


def example_inputs():
    return (torch.randn(2, 16),)
"""


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two commits: `main` has the first; HEAD renames attn -> self_attn (in blocks.py, which
    net.py imports) and widens the head to 5; the work tree widens it to 7, uncommitted."""
    folder = tmp_path / "repo"
    (folder / "models").mkdir(parents=True)
    git(folder, "init", "-q")
    (folder / "models" / "blocks.py").write_text(BLOCKS)
    (folder / "models" / "net.py").write_text(NET)
    git(folder, "add", "-A")
    git(folder, "commit", "-qm", "first")
    git(folder, "branch", "-M", "main")
    git(folder, "checkout", "-qb", "work")
    (folder / "models" / "blocks.py").write_text(BLOCKS.replace("attn", "self_attn"))
    (folder / "models" / "net.py").write_text(NET.replace("Linear(16, 3)", "Linear(16, 5)"))
    git(folder, "commit", "-qam", "second")
    (folder / "models" / "net.py").write_text(NET.replace("Linear(16, 3)", "Linear(16, 7)"))
    monkeypatch.chdir(folder / "models")
    return folder


def report(*specs: str) -> tuple[int, list[str]]:
    result = runner.invoke(app, ["diff", *specs])
    return result.exit_code, [line.strip() for line in result.stdout.splitlines()]


def test_what_the_last_commit_changed(repo: Path) -> None:
    code, lines = report("HEAD~1:net.py:Net", "HEAD:net.py:Net")
    assert code == 1, lines
    assert lines[0].startswith("HEAD~1:net.py:Net -> HEAD:net.py:Net:")
    assert "~ 2 renamed attn -> self_attn (Linear): blocks.{0,1}.self_attn" in lines
    assert "* sizes 3 -> 5: head [+34 params; 1 shape follows]" in lines


def test_a_branch_against_the_work_tree_leaves_the_work_tree_alone(repo: Path) -> None:
    status = git(repo, "status", "--porcelain")
    before = {p: p.read_bytes() for p in (repo / "models").iterdir()}
    code, lines = report("main:net.py:Net", "net.py:Net")
    assert code == 1
    assert "* sizes 3 -> 7: head [+68 params; 1 shape follows]" in lines
    assert "~ 2 renamed attn -> self_attn (Linear): blocks.{0,1}.self_attn" in lines
    assert git(repo, "status", "--porcelain") == status
    assert {p: p.read_bytes() for p in (repo / "models").iterdir()} == before


def test_a_path_from_the_repository_root_and_the_python_api(repo: Path) -> None:
    os.chdir(repo)
    graph = fxviz.trace("main:models/net.py:Net")
    assert graph.source == "main:models/net.py:Net"
    assert graph.module("blocks.0.attn") is not None  # main's blocks.py, not the work tree's
    assert fxviz.trace("HEAD:models/net.py:Net").module("blocks.0.self_attn") is not None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nope:net.py:Net", "unknown git revision 'nope'"),
        ("HEAD:other.py:Net", "models/other.py is not in HEAD"),
        ("HEAD~5:net.py:Net", "unknown git revision 'HEAD~5'"),
    ],
)
def test_bad_revisions_and_paths_are_one_line(repo: Path, spec: str, message: str) -> None:
    result = runner.invoke(app, ["diff", spec, "net.py:Net"])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_outside_a_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.py").write_text(NET)
    result = runner.invoke(app, ["diff", "HEAD:net.py:Net", "net.py:Net"])
    assert result.exit_code == 2 and "is not in a git repository" in result.output


@pytest.mark.parametrize(
    ("text", "revision", "target", "attr"),
    [
        ("HEAD~1:net.py:Net", "HEAD~1", "net.py", "Net"),
        ("main:models/net.py:Net", "main", "models/net.py", "Net"),
        ("origin/main:net.py", "origin/main", "net.py", None),
        ("a1b2c3d:net.py:Net", "a1b2c3d", "net.py", "Net"),
        ("net.py:Net", None, "net.py", "Net"),
        ("C:\\\\models\\\\net.py:Net", None, "C:\\\\models\\\\net.py", "Net"),
    ],
)
def test_revision_specs_parse(
    text: str, revision: str | None, target: str, attr: str | None
) -> None:
    spec = parse_model_spec(text)
    assert (spec.kind, spec.revision, spec.target, spec.attr) == (
        "userfile",
        revision,
        target,
        attr,
    )


def test_a_revision_needs_a_python_file() -> None:
    with pytest.raises(SpecError, match=r"model spec 'HEAD:net.py:Net\(1': cannot parse"):
        parse_model_spec("HEAD:net.py:Net(1")


def test_a_gallery_entry_at_a_revision(repo: Path) -> None:
    from fxviz.gallery import draw_entry, read_manifest
    from fxviz.gallery.records import entry_key

    manifest = repo / "models" / "models.toml"
    manifest.write_text('[[model]]\nname = "net"\nspec = "main:net.py:Net"\nformats = ["json"]\n')
    (entry,) = read_manifest(manifest)
    drawn = draw_entry(entry)
    assert not drawn.error, drawn.error
    assert b'"blocks.0.attn"' in drawn.files["net.json"]  # main's blocks.py
    # The record's key follows the file at that revision, not the work tree's.
    before = entry_key(entry, {})
    (repo / "models" / "net.py").write_text(NET.replace("Linear(16, 3)", "Linear(16, 9)"))
    assert entry_key(entry, {}) == before
