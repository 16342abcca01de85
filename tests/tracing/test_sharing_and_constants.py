"""What tracers hide and fxviz says: constants named by the code that made them, inside the
module that reads them; a module called twice or held under two names; a tied weight. Each on
a small handmade model, through every tracer, and through every reader (picture, JSON,
`summary`, `explain`, the HTML panel)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import fxviz
from fxviz.cli import app
from fxviz.drawing import to_dot
from fxviz.explain import explain_lines
from fxviz.exporters.dot import Labels
from fxviz.exporters.html import picture_data
from fxviz.graph import Call, Graph
from fxviz.summary import render_rows, summary_rows
from fxviz.tracing.constants import assigned, factory_call, is_tracer_name

TRACERS = ("fx", "export", "record")
UNNAMED = re.compile(r"_(tensor|param|lifted_tensor)_constant\d|lifted_tensor_\d")


class Attention(nn.Module):
    """Swin's and MaxViT's pattern: a buffer of indices viewed in forward (fx runs the view
    eagerly and keeps its result as a constant), plus tensors the forward makes itself."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("relative_position_index", torch.arange(16).view(4, 4))
        self.table = nn.Parameter(torch.zeros(16, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.table[self.relative_position_index.view(-1)].view(4, 4, 2).sum(-1)
        coords = torch.arange(4)
        return x @ bias + coords + torch.tensor([1.0, 2.0, 3.0, 4.0])


class WithConstants(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attn = Attention()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x)


def _constants(graph: Graph) -> dict[str, tuple[str, list[str]]]:
    """Each constant's drawn name: (scope, the ids of its readers)."""
    readers: dict[str, list[str]] = {}
    for n in graph.nodes:
        for i in n.inputs:
            readers.setdefault(i, []).append(n.id)
    return {n.target: (n.scope, readers.get(n.id, [])) for n in graph.nodes if n.kind == "constant"}


@pytest.mark.parametrize("tracer", ["fx", "export"])
def test_a_viewed_buffer_is_named_by_the_buffer_in_its_module(tracer: str) -> None:
    graph = fxviz.trace(WithConstants(), torch.randn(2, 4), tracer=tracer)
    constants = _constants(graph)
    scope, readers = constants["attn.relative_position_index"]
    assert scope == "attn" and readers


def test_fx_names_a_made_tensor_by_the_expression_that_made_it() -> None:
    graph = fxviz.trace(WithConstants(), torch.randn(2, 4), tracer="fx")
    constants = _constants(graph)
    # held in a variable: named by the variable's assignment; inline: by the call itself
    assert constants["torch.arange(4)"][0] == "attn"
    assert constants["torch.tensor([1.0, 2.0, 3.0, 4.0])"][0] == "attn"
    ids = [n.id for n in graph.nodes if n.kind == "constant"]
    assert "torch_arange_4" in ids


def test_export_names_a_lifted_tensor_by_the_line_that_made_it() -> None:
    graph = fxviz.trace(WithConstants(), torch.randn(2, 4), tracer="export")
    assert _constants(graph)["torch.tensor([1.0, 2.0, 3.0, 4.0])"][0] == "attn"


@pytest.mark.parametrize("tracer", TRACERS)
def test_no_tracer_name_reaches_a_picture_or_an_explanation(tracer: str) -> None:
    graph = fxviz.trace(WithConstants(), torch.randn(2, 4), tracer=tracer)
    for constant, (_, readers) in _constants(graph).items():
        assert readers, f"{constant} is read by nothing"
    texts = [to_dot(graph), graph.to_json(), "\n".join(explain_lines(graph))]
    for text in texts:
        assert not UNNAMED.search(text), UNNAMED.search(text)


def test_constant_names_from_source() -> None:
    assert factory_call("coords = torch.arange(49).view(7, 7)") == "torch.arange(49)"
    assert factory_call("x + torch.ones(2, 3) * torch.zeros(3)") is None  # two: neither
    assert factory_call("y = x + 1") is None
    assert assigned(Attention.forward.__code__, "coords") == "torch.arange(4)"
    assert is_tracer_name("_tensor_constant12") and is_tracer_name("attn.lifted_tensor_0")
    assert not is_tracer_name("attn.relative_position_index")


class Shared(nn.Module):
    """One Linear under two names, called twice; a head whose weight is the embedding's."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 8)
        self.proj = nn.Linear(8, 8)
        self.head_proj = self.proj
        self.head = nn.Linear(8, 10, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.proj(self.emb(ids))
        return self.head(self.head_proj(torch.relu(x)))


def _shared_graph(tracer: str) -> Graph:
    return fxviz.trace(Shared(), torch.zeros(2, 5, dtype=torch.long), tracer=tracer)


@pytest.mark.parametrize("tracer", TRACERS)
def test_a_module_called_twice_says_which_call_and_its_other_name(tracer: str) -> None:
    graph = _shared_graph(tracer)
    calls = [n for n in graph.nodes if n.kind == "module" and n.target == "proj"]
    assert [n.call for n in calls] == [Call(1, 2), Call(2, 2)]
    assert graph.module("proj").aliases == ("head_proj",)  # type: ignore[union-attr]
    # totals count each parameter once: 80 (embedding, tied head) + 72 (proj)
    assert graph.totals.params.total == 80 + 72
    assert sum(n.params.total for n in graph.nodes) == 80 + 72
    dot = to_dot(graph)
    assert "proj (2nd call; also head_proj) · Linear" in dot
    assert "proj (1st of 2 calls; also head_proj) · Linear" in dot


@pytest.mark.parametrize("tracer", TRACERS)
def test_a_tied_weight_says_where_it_lives(tracer: str) -> None:
    graph = _shared_graph(tracer)
    assert graph.module("head").tied == (("weight", "emb.weight"),)  # type: ignore[union-attr]
    assert graph.module("emb").tied == ()  # type: ignore[union-attr]
    assert "head (weight tied to emb.weight) · Linear" in to_dot(graph)


def test_sharing_is_a_json_field_that_round_trips() -> None:
    graph = _shared_graph("fx")
    data = json.loads(graph.to_json())
    modules = {m["path"]: m for m in data["modules"]}
    assert modules["proj"]["aliases"] == ["head_proj"]
    assert modules["head"]["tied"] == {"weight": "emb.weight"}
    calls = [n["call"] for n in data["nodes"] if n.get("target") == "proj"]
    assert calls == [{"index": 1, "count": 2}, {"index": 2, "count": 2}]
    assert Graph.from_json(graph.to_json()) == graph


def test_summary_explain_and_html_say_the_same() -> None:
    graph = _shared_graph("fx")
    table = render_rows(graph, summary_rows(graph), "markdown")
    assert "| called 2×; also head_proj |" in table
    assert "| weight tied to emb.weight |" in table
    explained = "\n".join(explain_lines(graph))
    assert "proj (2nd call; also head_proj) · Linear" in explained
    assert "head (weight tied to emb.weight) · Linear" in explained
    panels = picture_data(graph, {}, Labels.of(graph, frozenset()))
    shared = [d.get("shared") for d in panels["nodes"] if d["target"] == "proj"]
    assert shared == [["1st of 2 calls", "also head_proj"], ["2nd call", "also head_proj"]]
    assert all("shared" in c for c in panels["clusters"])


def test_a_module_without_parameters_run_twice_draws_no_call_count() -> None:
    """ResNet's one `relu` per block, run twice: nothing to miss, so nothing said."""

    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.act = nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.act(self.fc(self.act(x)))

    graph = fxviz.trace(Twice(), torch.randn(1, 4))
    assert [n.call for n in graph.nodes if n.target == "act"] == [Call(1, 2), Call(2, 2)]
    dot = to_dot(graph)
    assert "2nd call" not in dot and "calls" not in dot


def test_summary_has_no_shared_column_when_nothing_is_shared() -> None:
    graph = fxviz.trace(WithConstants(), torch.randn(2, 4))
    assert "shared" not in render_rows(graph, summary_rows(graph), "csv").splitlines()[0]


def test_cli_summary_shows_sharing(tmp_path: Path) -> None:
    net = tmp_path / "shared_net.py"
    net.write_text(
        "import torch\nfrom torch import nn\n\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.emb = nn.Embedding(10, 8)\n"
        "        self.head = nn.Linear(8, 10, bias=False)\n"
        "        self.head.weight = self.emb.weight\n"
        "    def forward(self, ids):\n"
        "        return self.head(self.emb(ids))\n\n"
        "def example_inputs():\n"
        "    return (torch.zeros(1, 3, dtype=torch.long),)\n"
    )
    result = CliRunner().invoke(app, ["summary", f"{net}:Net", "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].endswith(",shared")
    assert "weight tied to emb.weight" in result.output
