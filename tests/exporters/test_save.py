"""Writing outputs: formats from suffixes, all-or-nothing, atomic, never clobbering."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from fxviz.drawing import save
from fxviz.errors import OutputError, RenderError
from fxviz.exporters import check_outputs, output_format, write_atomic
from fxviz.graph import Graph


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("a.svg", "svg"), ("a.PNG", "png"), ("a.pdf", "pdf"), ("a.gv", "dot"), ("a.json", "json")],
)
def test_format_from_suffix(name: str, fmt: str) -> None:
    assert output_format(Path(name)) == fmt


def test_save_writes_every_format(tmp_path: Path, chain: Graph) -> None:
    paths = [tmp_path / "g.json", tmp_path / "g.dot", tmp_path / "g.svg"]
    chain.save(*paths, renderer="embedded")
    assert Graph.from_json(paths[0].read_text()) == chain
    assert paths[1].read_text() == chain.to_dot()
    assert b"</svg>" in paths[2].read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["g.dot", "g.json", "g.svg"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("g.jpeg", "suffix '.jpeg'"),
        ("noext", "no suffix"),
        ("missing/g.svg", "does not exist"),
    ],
)
def test_bad_outputs_fail_before_writing(
    tmp_path: Path, chain: Graph, name: str, message: str
) -> None:
    with pytest.raises(OutputError, match=message):
        save(chain, [tmp_path / "ok.json", tmp_path / name])
    assert not (tmp_path / "ok.json").exists()


def test_a_folder_is_not_an_output(tmp_path: Path) -> None:
    (tmp_path / "d.svg").mkdir()
    with pytest.raises(OutputError, match="is a folder"):
        check_outputs([tmp_path / "d.svg"])


def test_unwritable_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # os.access, not chmod: the suite may run as root, who can write anywhere.
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(OutputError, match="not writable"):
        check_outputs([tmp_path / "g.svg"])


def test_failed_render_writes_nothing_and_keeps_old_files(
    tmp_path: Path, chain: Graph, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = tmp_path / "g.json"
    old.write_text("previous good file")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RenderError):
        save(chain, [old, tmp_path / "g.png"])
    assert old.read_text() == "previous good file"
    assert sorted(os.listdir(tmp_path)) == ["g.json"]


def test_write_atomic_leaves_no_temp_file_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "g.json"
    target.write_text("old")

    def fail(src: str, dst: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, b"new")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["g.json"]


def test_written_files_get_normal_permissions(tmp_path: Path, chain: Graph) -> None:
    path = tmp_path / "g.json"
    chain.save(path)
    assert json.loads(path.read_text())["name"] == "Chain"
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
