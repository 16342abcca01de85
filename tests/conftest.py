"""Shared fixtures: golden files and hand-built graphs (no torch needed)."""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from handmade import branch_graph, chain_graph, hostile_graph

from fxviz.graph import Graph

# No test may reach the Hugging Face hub: models are built from configs, offline.
os.environ["HF_HUB_OFFLINE"] = "1"

GOLDEN_DIR = Path(__file__).parent / "golden"
REPO = Path(__file__).parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        help="Rewrite tests/golden/* from the current output instead of comparing.",
    )


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[str, str], None]:
    """Compare text with tests/golden/<name>; `pytest --update-goldens` rewrites it."""
    update = bool(request.config.getoption("--update-goldens"))

    def check(name: str, actual: str) -> None:
        path = GOLDEN_DIR / name
        if update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(actual, encoding="utf-8")
            return
        assert path.exists(), f"no golden {path}; run pytest --update-goldens and review it"
        expected = path.read_text(encoding="utf-8")
        if actual != expected:
            diff = "".join(
                difflib.unified_diff(
                    expected.splitlines(True), actual.splitlines(True), str(path), "actual", n=2
                )
            )
            pytest.fail(f"{name} differs from its golden (pytest --update-goldens):\n{diff[:4000]}")

    return check


@pytest.fixture
def restore_imports() -> Iterator[None]:
    """Undo what importing a user file does to sys.path and sys.modules."""
    path, modules = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        del sys.modules[name]


@pytest.fixture(params=["chain", "branch", "hostile"])
def handmade(request: pytest.FixtureRequest) -> Graph:
    return {"chain": chain_graph, "branch": branch_graph, "hostile": hostile_graph}[request.param]()


@pytest.fixture
def chain() -> Graph:
    return chain_graph()


@pytest.fixture
def branch() -> Graph:
    return branch_graph()


@pytest.fixture
def hostile() -> Graph:
    return hostile_graph()
