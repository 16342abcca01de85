"""The public Python API: what `import fxviz` offers and costs."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
from torch import nn

import fxviz

REPO = Path(__file__).parent.parent


def test_all_is_sorted_and_complete() -> None:
    assert fxviz.__all__ == sorted(fxviz.__all__)
    # Submodules become package attributes once anything imports them: not public API.
    public = {
        name
        for name, value in vars(fxviz).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    public -= {"annotations", "version", "PackageNotFoundError"}
    assert public | {"__version__"} == set(fxviz.__all__)


def test_import_fxviz_does_not_import_torch() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys, fxviz; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "False"


def test_trace_a_module_and_save(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=-1))
    graph = fxviz.trace(model, torch.zeros(2, 4))
    assert graph.outputs[0].outputs[0].shape == (2, 3)
    assert graph.name == "Sequential" and graph.device == "cpu"
    graph.save(tmp_path / "g.json", tmp_path / "g.dot")
    assert fxviz.Graph.load(tmp_path / "g.json") == graph
    assert "0 · Linear" in graph.to_dot(rankdir="LR") and "rankdir=LR" in graph.to_dot(rankdir="LR")


def test_trace_a_spec_with_inputs() -> None:
    graph = fxviz.trace("resnet18", ["2,3,64,64"])
    assert graph.node("fc").outputs[0].shape == (2, 1000)
    assert graph.device == "meta" and graph.source == "resnet18"


def test_load_then_trace() -> None:
    loaded = fxviz.load(f"{REPO}/examples/tiny.py:TinyNet", model_kwargs={"classes": 5})
    graph = fxviz.trace(loaded)
    assert graph.outputs[0].outputs[0].shape == (1, 5)


def test_trace_a_spec_with_a_tensor() -> None:
    """A tensor where a shape spec is expected is traced as given (on the model's device)."""
    graph = fxviz.trace("resnet18", torch.randn(1, 3, 64, 64))
    assert graph.node("fc").outputs[0].shape == (1, 1000)
    assert graph.node("layer4_1_relu_1").outputs[0].shape == (1, 512, 2, 2)
    assert graph.device == "meta"
    several = fxviz.trace("resnet18", [torch.zeros(2, 3, 32, 32)])
    assert several.node("x").outputs[0].shape == (2, 3, 32, 32)
    on_cpu = fxviz.trace("resnet18", torch.randn(1, 3, 64, 64), device="cpu")
    assert on_cpu.node("fc").outputs[0].device == "cpu"


def test_trace_refuses_what_is_neither_a_spec_nor_a_tensor() -> None:
    with pytest.raises(fxviz.SpecError, match="inputs: int is neither a shape"):
        fxviz.trace("resnet18", 3)


def test_trace_reads_a_saved_graph(tmp_path: Path) -> None:
    graph = fxviz.trace(f"{REPO}/examples/tiny.py:TinyNet")
    graph.save(tmp_path / "t.json")
    assert fxviz.trace(tmp_path / "t.json") == graph == fxviz.trace(str(tmp_path / "t.json"))
