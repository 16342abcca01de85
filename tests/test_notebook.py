"""examples/explore.ipynb, executed by a real Jupyter kernel (nbclient): a graph and a diff
are cells' values and show themselves as HTML, through the same drawing path as the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).parent.parent


def test_the_example_notebook_runs_and_shows_html(tmp_path: Path) -> None:
    for name in ("explore.ipynb", "refactor_before.py", "refactor_after.py"):
        shutil.copy(REPO / "examples" / name, tmp_path / name)
    notebook = nbformat.read(tmp_path / "explore.ipynb", as_version=4)
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    errors = [o for cell in code for o in cell.outputs if o.output_type == "error"]
    assert not errors, errors
    shown = [o.data for cell in code for o in cell.outputs if o.output_type == "execute_result"]
    graph_page, diff_page = [d for d in shown if "text/html" in d]
    for data in (graph_page, diff_page):
        assert data["text/html"].startswith("<iframe srcdoc=")
        assert data["image/svg+xml"].lstrip().startswith("<?xml")
    assert "layer3.1.conv2" in graph_page["text/html"]
    assert "&quot;kind&quot;:&quot;diff&quot;" in diff_page["text/html"]
    printed = "".join(o.get("text", "") for cell in code for o in cell.outputs)
    assert "traced with fx" in printed
    assert any("<svg" in d.get("image/svg+xml", "") and "text/html" not in d for d in shown)
    assert (tmp_path / "resnet18-depth1.svg").stat().st_size > 1000
