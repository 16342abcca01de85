"""A graph with a memory estimate, hand-built (no torch): labels, heat fills, JSON, report."""

from __future__ import annotations

import json

import pytest
from handmade import chain_graph, memory_chain

from fxviz import memory_report
from fxviz.drawing import draw_options, to_dot
from fxviz.errors import SchemaError, SpecError
from fxviz.exporters.dot import HEAT, DotOptions, parse_show
from fxviz.exporters.dot import to_dot as dot_of
from fxviz.graph import Graph


def _lines(dot: str) -> dict[str, str]:
    return {line.split(" [")[0].strip(): line for line in dot.splitlines() if " [" in line}


def test_dot_golden(golden) -> None:  # type: ignore[no-untyped-def]
    options = DotOptions(show=parse_show("memory"), color="memory")
    golden("exporters/memory-chain.dot", dot_of(memory_chain(), options))


def test_show_memory_labels_each_module_with_saved_and_live_bytes() -> None:
    dot = dot_of(memory_chain(), DotOptions(show=parse_show("memory")))
    assert "saved 128 B · live 160 B" in _lines(dot)["fc1"]
    # A function has no module share: it says nothing (its bytes are in its module's).
    assert "saved" not in _lines(dot)["relu"] and "out " not in _lines(dot)["relu"]


def test_inference_shows_live_bytes_only() -> None:
    dot = dot_of(memory_chain("inference"), DotOptions(show=parse_show("memory")))
    assert "live 160 B" in _lines(dot)["fc1"] and "saved" not in dot


def test_without_an_estimate_show_memory_is_the_output_bytes() -> None:
    dot = dot_of(chain_graph(), DotOptions(show=parse_show("memory")))
    assert "out 32 B" in _lines(dot)["fc1"]


def test_color_memory_fills_the_box_that_saves_most_deepest_and_draws_the_scale() -> None:
    dot = dot_of(memory_chain(), DotOptions(color="memory"))
    assert f'fillcolor="{HEAT[-1]}"' in _lines(dot)["fc1"]
    assert "memory: saved for backward" in dot
    assert "heat_0" in dot and "128 B" in _lines(dot)[f"heat_{len(HEAT) - 1}"]
    # No estimate: nothing to colour by, and no scale.
    assert "heat_0" not in dot_of(chain_graph(), DotOptions(color="memory"))


def test_color_is_checked_and_reaches_dot_through_the_drawing_path() -> None:
    options = draw_options(color="memory", views=False)
    assert f'fillcolor="{HEAT[-1]}"' in to_dot(memory_chain(), options)
    with pytest.raises(SpecError, match="give memory"):
        draw_options(color="flops")


def test_json_round_trips_and_validates() -> None:
    graph = memory_chain()
    text = graph.to_json()
    data = json.loads(text)
    assert data["memory"]["peak_bytes"] == 512 and data["memory"]["peak_at"] == "fc1"
    fc1 = next(m for m in data["modules"] if m["path"] == "fc1")
    assert fc1["memory"] == {"saved": 128, "live": 160}
    again = Graph.from_json(text)
    assert again == graph and again.to_json() == text
    assert "memory" not in json.loads(chain_graph().to_json())


def test_a_corrupt_estimate_is_a_schema_error() -> None:
    data = json.loads(memory_chain().to_json())
    data["memory"]["peak_phase"] = "sideways"
    with pytest.raises(SchemaError, match="memory.peak_phase"):
        Graph.from_dict(data)


def test_report_table_and_json() -> None:
    graph = memory_chain()
    table = memory_report.render(graph, "table")
    assert table.splitlines()[0] == "Chain: training step (sgd), fp32, batch 1"
    assert "peak                512 B  in backward, at fc1" in table
    assert "saved for backward, by module:" in table and "fc1: Linear" in table
    data = json.loads(memory_report.render(graph, "json", fit=1024))
    for key in ("peak_bytes", "params_bytes", "grads_bytes", "optimizer_bytes"):
        assert isinstance(data[key], int)
    assert data["activations_bytes"] == 192 and data["batch"] == 1 and data["fit_bytes"] == 1024
    assert data["modules"] == [
        {"path": "fc1", "class": "Linear", "saved_bytes": 128, "live_bytes": 160}
    ]
    with pytest.raises(SpecError, match="fxviz memory"):
        memory_report.render(chain_graph(), "table")
    with pytest.raises(SpecError, match="--format 'md'"):
        memory_report.render(graph, "md")
