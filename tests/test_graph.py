"""The Graph model: JSON round trip, schema validity, determinism, and refusing bad JSON."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from handmade import branch_graph
from hypothesis import given, settings
from hypothesis import strategies as st

import fxviz
from fxviz.errors import SchemaError
from fxviz.graph import SCHEMA_VERSION, Graph

SCHEMA = json.loads(files("fxviz").joinpath("schema/graph.schema.json").read_text())


def test_round_trip(handmade: Graph) -> None:
    assert Graph.from_json(handmade.to_json()) == handmade


def test_json_validates_against_shipped_schema(handmade: Graph) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(json.loads(handmade.to_json()), SCHEMA)


def test_schema_version_in_schema_matches_code() -> None:
    # Every version fxviz wrote is read; the newest is the one it writes.
    assert SCHEMA["properties"]["schema_version"]["enum"] == list(range(1, SCHEMA_VERSION + 1))


def test_json_is_deterministic_and_sorted(branch: Graph) -> None:
    text = branch.to_json()
    assert text == Graph.from_json(text).to_json()
    data = json.loads(text)
    assert list(data) == sorted(data)
    assert [n["id"] for n in data["nodes"]] == [n.id for n in branch.nodes]


def test_json_keeps_unicode_readable(hostile: Graph) -> None:
    assert "é×中" in hostile.to_json()


def test_lookup_helpers(branch: Graph) -> None:
    assert branch.node("add").inputs == ("block_0_conv", "stem")
    assert [n.id for n in branch.inputs] == ["x"]
    assert [n.id for n in branch.outputs] == ["output"]
    module = branch.module("block.0")
    assert module is not None and module.class_name == "Block"
    assert branch.module("nope") is None


def test_load_reads_a_saved_file(tmp_path: Path, chain: Graph) -> None:
    path = tmp_path / "g.json"
    path.write_text(chain.to_json())
    assert Graph.load(path) == chain


def _mutate(data: dict[str, Any], change: str) -> dict[str, Any]:
    if change == "newer":
        data["schema_version"] = SCHEMA_VERSION + 1
    elif change == "zero":
        data["schema_version"] = 0
    elif change == "missing":
        del data["nodes"]
    elif change == "kind":
        data["nodes"][0]["kind"] = "banana"
    elif change == "dangling":
        data["nodes"][1]["inputs"] = ["ghost"]
    elif change == "duplicate":
        data["nodes"][1]["id"] = data["nodes"][0]["id"]
    elif change == "shape":
        data["nodes"][0]["outputs"][0]["shape"] = [1, "x"]
    elif change == "bool_count":
        data["totals"]["flops"] = True
    elif change == "negative":
        data["totals"]["buffers"] = -1
    elif change == "tracer":
        data["tracer"] = "banana"
    elif change == "unknown_key":
        data["modules"][0]["colour"] = "red"
    elif change == "float_count":
        data["nodes"][0]["flops"] = 1.5
    return data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("newer", "newer than this fxviz reads"),
        ("zero", "not a version fxviz ever wrote"),
        ("missing", "graph: 'nodes' is a required property"),
        ("kind", "graph.nodes[0].kind: 'banana' is not one of"),
        ("dangling", "reads 'ghost', which no earlier node defines"),
        ("duplicate", "appears twice"),
        ("shape", "graph.nodes[0].outputs[0].shape[1]: 'x' is not of type 'integer'"),
        ("bool_count", "graph.totals.flops: True is not of type 'integer'"),
        ("negative", "graph.totals.buffers: -1 is less than the minimum of 0"),
        ("tracer", "graph.tracer: 'banana' is not one of ['fx', 'export', 'record']"),
        ("unknown_key", "graph.modules[0]: Additional properties are not allowed ('colour'"),
        ("float_count", "graph.nodes[0].flops: 1.5 is not of type 'integer'"),
    ],
)
def test_bad_graph_json_is_a_schema_error(chain: Graph, change: str, message: str) -> None:
    data = _mutate(json.loads(chain.to_json()), change)
    with pytest.raises(SchemaError, match=re.escape(message)):
        Graph.from_json(json.dumps(data))


def test_the_reader_accepts_exactly_what_the_shipped_schema_accepts(chain: Graph) -> None:
    """One definition of the format: every mutation the schema rejects, the reader rejects."""
    schema = SCHEMA
    for change in ("kind", "shape", "bool_count", "negative", "tracer", "unknown_key"):
        data = _mutate(json.loads(chain.to_json()), change)
        assert not jsonschema.Draft202012Validator(schema).is_valid(data)
        with pytest.raises(SchemaError):
            Graph.from_dict(data)
    jsonschema.validate(json.loads(chain.to_json()), schema)


def test_a_diff_file_is_named_as_one(chain: Graph) -> None:
    diff_json = fxviz.diff(chain, chain).to_json()
    with pytest.raises(SchemaError, match="this is a diff saved by `fxviz diff -o diff.json`"):
        Graph.from_json(diff_json)


@pytest.mark.parametrize("text", ["", "{", "[]", "null", '"graph"', "\xff\xfe", "[" * 100_000])
def test_non_graph_text_is_a_schema_error(text: str) -> None:
    with pytest.raises(SchemaError):
        Graph.from_json(text)


def test_missing_file_is_a_schema_error(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="cannot read"):
        Graph.load(tmp_path / "absent.json")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_any_json_value_loads_or_raises_schema_error(value: object) -> None:
    try:
        Graph.from_dict(value)
    except SchemaError:
        pass


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_corruption_of_a_real_graph_loads_or_raises_schema_error(data: st.DataObject) -> None:
    graph = json.loads(branch_graph().to_json())
    node = data.draw(st.sampled_from(graph["nodes"]))
    key = data.draw(st.sampled_from(sorted(node)))
    node[key] = data.draw(json_values)
    try:
        Graph.from_dict(graph)
    except SchemaError:
        pass


def test_a_version_2_memory_estimate_reads_as_one_without_scratch() -> None:
    from handmade import memory_chain

    graph = replace(memory_chain(), memory=replace(memory_chain().memory, scratch=64))
    data = json.loads(graph.to_json())
    assert data["memory"]["scratch_bytes"] == 64
    del data["memory"]["scratch_bytes"]
    data["schema_version"] = 2
    old = Graph.from_json(json.dumps(data))
    assert old.memory is not None and old.memory.scratch == 0
    assert old.memory.peak == graph.memory.peak  # what it said, counted as it was
