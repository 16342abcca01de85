"""A graph drawn with torch.compile's graphs, hand-built (no torch): DOT, JSON, report."""

from __future__ import annotations

import json

import pytest
from handmade import chain_graph, compiled_chain

from fxviz import compile_report
from fxviz.errors import SpecError
from fxviz.exporters.dot import BREAK_RED, graph_fill, to_dot
from fxviz.graph import (
    Graph,
)


def test_dot_golden(golden) -> None:  # type: ignore[no-untyped-def]
    golden("exporters/compiled-chain.dot", to_dot(compiled_chain()))


def test_each_graph_has_its_fill_and_the_break_is_a_red_note_at_its_node() -> None:
    dot = to_dot(compiled_chain())
    lines = {line.split(" [")[0].strip(): line for line in dot.splitlines() if " [" in line}
    assert f'fillcolor="{graph_fill(1)}"' in lines["fc1"]
    assert f'fillcolor="{graph_fill(2)}"' in lines["relu"]
    assert "dashed" in lines["item"] and BREAK_RED in lines["item"]
    assert "runs in Python, between graphs" in lines["item"]
    note = lines["breaks_item"]
    assert "graph break 1 (after graph 1): x.item(): a Python number from a tensor" in note
    assert "chain.py:11" in note and "shape=note" in note
    assert f'breaks_item -> item [arrowhead=none color="{BREAK_RED}"' in dot
    # The value leaving graph 1 for Python is a red edge; graph 1's key says its FLOPs share.
    assert f'fc1 -> item [color="{BREAK_RED}"' in dot
    assert "graph 1\\n3 ops · 100.0% of FLOPs" in dot
    assert "torch.compile: 2 graphs, 1 graph break, 1 recompile" in dot
    assert "recompiles: guard self.calls == 1 failed (chain.py:9)" in dot


def test_hostile_code_in_a_break_stays_text() -> None:
    dot = to_dot(compiled_chain())
    assert '\\"<b>|{}\\"' in dot  # escaped once, by the one escaping function
    assert "<<" not in dot


def test_a_picture_without_compilation_has_no_compile_marks() -> None:
    dot = to_dot(chain_graph())
    assert "break_" not in dot and "cluster_compile" not in dot and "torch.compile" not in dot


def test_json_round_trips_and_validates() -> None:
    graph = compiled_chain()
    text = graph.to_json()
    data = json.loads(text)
    assert data["compile"]["breaks"][0]["node"] == "item"
    assert data["nodes"][2]["compiled"] == [0] and data["nodes"][2]["breaks"] == [0]
    again = Graph.from_json(text)
    assert again == graph and again.to_json() == text
    assert "compile" not in json.loads(chain_graph().to_json())


def test_schema_rejects_a_bad_compile_record() -> None:
    from fxviz.errors import SchemaError

    data = json.loads(compiled_chain().to_json())
    data["compile"]["graphs"][0]["number"] = 0
    with pytest.raises(SchemaError, match="compile"):
        Graph.from_dict(data)


def test_report_formats() -> None:
    graph = compiled_chain()
    table = compile_report.render(graph, "table")
    assert table.splitlines()[0] == (
        "CompiledChain: 2 graphs, 1 graph break, 1 recompile on a second call · 100% of FLOPs "
        "in compiled graphs"
    )
    assert "1 × x.item(): a Python number from a tensor" in table
    assert "chain.py:11" in table and "self.calls == 1  at chain.py:9" in table
    data = json.loads(compile_report.render(graph, "json"))
    assert data["graphs"] == 2 and data["graph_breaks"] == 1 and data["ops_per_graph"] == [3, 2]
    assert data["breaks"][0]["line"] == 11 and data["compiled_flops_share"] == 1.0
    assert data["breaks_by_reason"] == {"x.item(): a Python number from a tensor": 1}
    md = compile_report.render(graph, "md")
    assert "| x.item(): a Python number from a tensor | `chain.py:11` |" in md
    assert "\\|" in md  # a | in the code cannot end the cell


def test_report_errors() -> None:
    with pytest.raises(SpecError, match="--format 'tabel': did you mean table"):
        compile_report.render(compiled_chain(), "tabel")
    with pytest.raises(SpecError, match="fxviz compile MODEL"):
        compile_report.render(chain_graph(), "table")


def test_mermaid_fills_each_graph_and_notes_each_break() -> None:
    from fxviz.exporters.mermaid import to_mermaid

    text = to_mermaid(compiled_chain())
    assert ":::graph1" in text and ":::graph2" in text and ":::graph0" in text
    assert f"classDef graph1 fill:{graph_fill(1)}" in text
    assert f"classDef graph0 fill:#ffffff,stroke:{BREAK_RED}" in text
    assert 'b0>"graph break 1: x.item(): a Python number from a tensor at chain.py:11"]' in text
    assert "b0 -.- n2" in text
    assert "graph" not in to_mermaid(chain_graph()).split("classDef")[0].replace("flowchart", "")
