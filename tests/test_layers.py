"""The layering of DESIGN.md is checked by a tool (import-linter), and the check has teeth."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parent.parent


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """Run lint-imports on the copy of fxviz under `root`, with this repository's contracts."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlinter.cli import lint_imports_command; lint_imports_command()",
            "--config",
            str(REPO / "pyproject.toml"),
            "--no-cache",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    shutil.copytree(
        REPO / "fxviz", tmp_path / "fxviz", ignore=shutil.ignore_patterns("__pycache__")
    )
    return tmp_path


def test_the_contracts_hold(package_copy: Path) -> None:
    done = lint_imports(package_copy)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "broken" in done.stdout and "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("where", "planted", "broken"),
    [
        ("exporters/planted.py", "import torch\n", "never import torch"),
        ("views/collapse.py", "from fxviz.tracing import trace_module\n", "never import torch"),
        ("graph.py", "from fxviz import drawing\n", "each layer imports only the layers below"),
        ("diff/report.py", "import typer\n", "typer and rich only in the CLI"),
        ("summary.py", "import graphviz\n", "graphviz only in the exporters"),
    ],
)
def test_a_planted_import_breaks_a_contract(
    package_copy: Path, where: str, planted: str, broken: str
) -> None:
    path = package_copy / "fxviz" / where
    path.write_text(planted + (path.read_text() if path.exists() else ""))
    done = lint_imports(package_copy)
    assert done.returncode != 0
    assert broken in done.stdout and "BROKEN" in done.stdout
    assert str(where.replace("/", ".").removesuffix(".py")) in done.stdout
