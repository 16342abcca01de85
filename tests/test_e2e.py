"""End to end: real models to DOT/JSON/SVG, checked the way a user would look at them."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest
import torch
import torchvision

import fxviz
from fxviz.graph import Graph

REPO = Path(__file__).parent.parent
SVG = "{http://www.w3.org/2000/svg}"
SCHEMA = json.loads(files("fxviz").joinpath("schema/graph.schema.json").read_text())


def node_texts(svg: bytes) -> dict[str, list[str]]:
    """Node title (its id) -> the lines of text drawn in it."""
    root = ET.fromstring(svg)
    return {
        str(g.findtext(f"{SVG}title")): [t.text or "" for t in g.iter(f"{SVG}text")]
        for g in root.iter(f"{SVG}g")
        if g.get("class") == "node"
    }


@pytest.fixture(scope="module")
def resnet18_outputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's first command, run for real: `fxviz resnet18 --input 1,3,224,224`."""
    folder = tmp_path_factory.mktemp("r18")
    for extra in (
        [],
        ["-o", "r18.json", "-o", "r18.dot", "-o", "embedded.svg", "--renderer", "embedded"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "fxviz", "resnet18", "--input", "1,3,224,224", *extra],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    return folder


@pytest.mark.parametrize("svg_name", ["resnet18.svg", "embedded.svg"])
def test_resnet18_svg_names_modules_and_shapes(resnet18_outputs: Path, svg_name: str) -> None:
    texts = node_texts((resnet18_outputs / svg_name).read_bytes())
    assert texts["conv1"] == [
        "conv1 · Conv2d",
        "3, 64, kernel_size=7, stride=2, padding=3, bias=False",
        "1×64×112×112",
    ]
    assert texts["fc"][0] == "fc · Linear" and texts["fc"][-1] == "1×1000"
    drawn = {line for lines in texts.values() for line in lines}
    model = torchvision.models.resnet18()
    expected = {
        f"{path} · {type(m).__name__}"
        for path, m in model.named_modules()
        if isinstance(m, torch.nn.Conv2d | torch.nn.BatchNorm2d | torch.nn.ReLU)
    }
    assert len(expected) == 49 and expected <= drawn
    assert texts["x"] == ["input · x", "1×3×224×224"]


def test_resnet18_json_validates_and_round_trips(resnet18_outputs: Path) -> None:
    text = (resnet18_outputs / "r18.json").read_text()
    jsonschema.validate(json.loads(text), SCHEMA)
    graph = Graph.from_json(text)
    assert Graph.from_json(graph.to_json()) == graph
    assert graph.to_json() == text
    assert (
        graph.totals.params.total
        == 11_689_512
        == sum(p.numel() for p in torchvision.models.resnet18().parameters())
    )
    assert graph.node("layer1_0_conv1").source is not None
    assert graph.node("layer1_0_conv1").source.file == "torchvision/models/resnet.py"
    assert (resnet18_outputs / "r18.dot").read_text() == graph.to_dot()


def _shapes(graph: Graph) -> list[tuple[str, list[object]]]:
    return [(n.id, [(v.path, v.kind, v.shape, v.dtype) for v in n.outputs]) for n in graph.nodes]


@pytest.mark.parametrize("name", ["resnet18", "vit_b_16", "convnext_tiny"])
def test_meta_and_cpu_give_identical_shapes(name: str) -> None:
    on_meta = fxviz.trace(name, device="meta")
    on_cpu = fxviz.trace(name, device="cpu")
    assert (on_meta.device, on_cpu.device) == ("meta", "cpu")
    assert _shapes(on_meta) == _shapes(on_cpu)
    assert on_meta.totals == on_cpu.totals
    assert all(v.device == "meta" for n in on_meta.nodes for v in n.outputs if v.is_tensor)


def test_lenet_shows_the_textbook_shapes() -> None:
    graph = fxviz.trace(f"{REPO}/examples/lenet.py:LeNet")
    shapes = [n.outputs[0].shape for n in graph.nodes if n.kind == "module" and n.outputs]
    assert shapes == [
        (1, 6, 28, 28),
        (1, 6, 14, 14),
        (1, 16, 10, 10),
        (1, 16, 5, 5),
        (1, 120),
        (1, 84),
        (1, 10),
    ]


@pytest.mark.parametrize(
    ("spec", "stem"),
    [
        ("examples/tiny.py:TinyNet", "tiny"),
        ("examples/lenet.py:LeNet", "lenet"),
        ("examples/lstm_tagger.py", "lstm_tagger"),
    ],
)
def test_example_goldens(spec: str, stem: str, golden, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(REPO)
    graph = fxviz.trace(spec)
    golden(f"e2e/{stem}.json", graph.to_json())
    golden(f"e2e/{stem}.dot", graph.to_dot())


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
def test_cuda_shapes_match_meta() -> None:
    on_cuda = fxviz.trace("resnet18", device="cuda")
    assert on_cuda.device == "cuda"
    assert _shapes(on_cuda) == _shapes(fxviz.trace("resnet18"))
    assert all(v.device == "cuda" for n in on_cuda.nodes for v in n.outputs if v.is_tensor)
