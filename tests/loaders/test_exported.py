"""Saved torch.export programs drawn without their source, and damaged files refused clearly."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

import fxviz
from fxviz.errors import ModelLoadError, ModelNotFoundError


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(8 * 6 * 6, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)))


@pytest.fixture
def program(tmp_path: Path) -> Path:
    path = tmp_path / "small.pt2"
    torch.export.save(torch.export.export(Small().eval(), (torch.randn(2, 3, 8, 8),)), path)
    return path


def test_draws_a_saved_program_without_source(program: Path) -> None:
    graph = fxviz.trace(str(program))
    assert (graph.name, graph.tracer, graph.device) == ("small", "export", "meta")
    conv = graph.node("conv")
    assert (conv.module_class, conv.outputs[0].shape, conv.params.trainable) == (
        "Conv2d",
        (2, 8, 6, 6),
        224,
    )
    assert graph.node("head_1").module_class == "Linear"
    assert graph.outputs[0].outputs[0].shape == (2, 5)
    assert graph.totals.params.trainable == sum(p.numel() for p in Small().parameters())
    classes = {m.path: m.class_name for m in graph.modules}
    assert classes[""] == "Small" and classes["head"] == "Sequential"


def test_inputs_can_be_overridden(program: Path) -> None:
    graph = fxviz.trace(str(program), ["2,3,8,8"], device="cpu")
    assert graph.device == "cpu" and graph.outputs[0].outputs[0].shape == (2, 5)


def _rewrite_schema(program: Path, target: Path, major: int) -> None:
    with zipfile.ZipFile(program) as src, zipfile.ZipFile(target, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if "/models/" in item.filename and item.filename.endswith(".json"):
                doc = json.loads(data)
                doc["schema_version"]["major"] = major
                data = json.dumps(doc).encode()
            dst.writestr(item, data)


def test_program_from_a_newer_torch(program: Path, tmp_path: Path) -> None:
    newer = tmp_path / "newer.pt2"
    _rewrite_schema(program, newer, 99)
    with pytest.raises(
        ModelLoadError, match=r"saved by a newer torch \(export schema 99\.\d+\).*upgrade torch"
    ):
        fxviz.load(str(newer))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a zip", "not a saved torch.export program"),
        (None, "holds no torch.export program"),
    ],
)
def test_files_that_are_not_programs(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "bad.pt2"
    if content is None:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("x/readme.txt", "hello")
    else:
        path.write_bytes(content)
    with pytest.raises(ModelLoadError, match=message):
        fxviz.load(str(path))


def test_missing_program() -> None:
    with pytest.raises(ModelNotFoundError, match="no file 'absent.pt2'"):
        fxviz.load("absent.pt2")
