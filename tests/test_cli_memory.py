"""`fxviz memory` end to end: through CliRunner and through a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fxviz.cli import app
from fxviz.exporters.dot import HEAT
from fxviz.graph import Graph
from fxviz.tracing import scratch

REPO = Path(__file__).parent.parent
EXAMPLES = REPO / "examples"
LOOP = f"{EXAMPLES}/shared_loop.py:SharedLoop"
runner = CliRunner()


def _svg_text(path: Path) -> str:
    root = ET.fromstring(path.read_bytes())
    return " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))


def test_table_report() -> None:
    result = runner.invoke(app, ["memory", LOOP, "--train", "adam", "--batch", "4"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "SharedLoop: training step (adam), fp32, batch 4"
    assert lines[1].startswith("peak ") and "in backward" in lines[1]
    for part in ("weights", "gradients", "optimizer state", "activations"):
        assert any(line.strip().startswith(part) for line in lines), part
    assert "step: Step" in result.stdout  # the layer reused 8 times saves the most


def test_json_keys_and_the_picture(tmp_path: Path) -> None:
    svg, saved = tmp_path / "m.svg", tmp_path / "m.json"
    args = ["memory", LOOP, "--train", "sgd", "--batch", "2", "-f", "json"]
    result = runner.invoke(app, [*args, "-o", str(svg), "-o", str(saved)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    keys = ("peak_bytes", "params_bytes", "grads_bytes", "optimizer_bytes", "activations_bytes")
    assert all(isinstance(report[k], int) for k in keys)
    parts = (*keys[1:], "buffers_bytes", "scratch_bytes")
    assert report["peak_bytes"] == sum(report[k] for k in parts)
    assert report["batch"] == 2 and report["peak_at"] and report["mode"] == "sgd"
    step = next(m for m in report["modules"] if m["path"] == "step")
    assert step["saved_bytes"] > 0
    # The picture: each module's saved and live bytes, on the heat scale, with its key.
    text = _svg_text(svg)
    assert "saved" in text and "live" in text and "memory: saved for backward" in text
    assert f'fill="{HEAT[-1]}"' in svg.read_text()
    graph = Graph.load(saved)
    assert graph.memory is not None and graph.memory.peak == report["peak_bytes"]
    # A saved graph draws again, with its memory, without running anything.
    again = tmp_path / "again.dot"
    assert runner.invoke(app, ["render", str(saved), "-o", str(again)]).exit_code == 0
    assert "memory: " in again.read_text()


def test_the_pictures_shapes_are_those_of_the_step_measured(tmp_path: Path) -> None:
    """--batch and --fit: the graph is traced again at the batch its memory is (on meta)."""
    saved = tmp_path / "m.json"
    for args, batch in ((["--batch", "6"], 6), (["--fit", "600MiB"], None)):
        result = runner.invoke(app, ["memory", LOOP, *args, "-f", "json", "-o", str(saved)])
        assert result.exit_code == 0, result.output
        batch = batch or json.loads(result.stdout)["batch"]
        assert batch > 1
        graph = Graph.load(saved)
        assert graph.memory is not None and graph.memory.batch == batch
        shapes = [o.shape for n in graph.nodes for o in n.outputs if o.shape]
        assert shapes and all(shape[0] == batch for shape in shapes), shapes[:3]


def test_inputs_with_values_are_drawn_as_traced_and_say_so() -> None:
    import torch

    from fxviz import api

    model = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU())
    graph = api.memory(model, torch.randn(2, 8), batch=16)
    assert graph.memory is not None and graph.memory.batch == 16
    assert graph.nodes[0].outputs[0].shape == (2, 8)
    assert any("as traced, at batch 2" in note for note in graph.notes)


@pytest.mark.skipif(not scratch.measurable(), reason="kernel scratch is measured on Linux only")
def test_a_depthwise_cnns_kernel_scratch_and_no_scratch() -> None:
    args = ["memory", "mobilenet_v3_small", "--batch", "32"]
    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    assert any(line.startswith("  kernel scratch") for line in table.stdout.splitlines())
    with_it = json.loads(runner.invoke(app, [*args, "-f", "json"]).stdout)
    without = json.loads(runner.invoke(app, [*args, "-f", "json", "--no-scratch"]).stdout)
    assert with_it["scratch_bytes"] > 0 and without["scratch_bytes"] == 0
    # oneDNN's reorders of a depthwise convolution: a tenth of inference's peak, or more.
    assert with_it["peak_bytes"] >= 1.05 * without["peak_bytes"]
    assert without["activations_bytes"] >= with_it["activations_bytes"]


def test_frozen_backbone_needs_no_gradient_or_state_for_it() -> None:
    spec = f"{EXAMPLES}/finetune.py:FineTune"
    args = ["memory", spec, "--train", "adamw", "--input", "2,3,64,64", "-f", "json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    trainable = report["trainable_params"]
    assert report["frozen_params"] > 10 * trainable
    assert report["optimizer_bytes"] == 2 * 4 * trainable + 4 * 6  # and 6 step counts
    saved = {m["path"]: m["saved_bytes"] for m in report["modules"]}
    assert saved["backbone.0"] == 0 and saved["backbone.7"] > 0


def test_fit_answers_the_largest_batch(tmp_path: Path) -> None:
    result = runner.invoke(app, ["memory", LOOP, "--train", "adam", "--fit", "64MiB"])
    assert result.exit_code == 0, result.output
    assert "largest batch within 64 MiB: " in result.stdout
    batch = int(result.stdout.split("largest batch within 64 MiB: ")[1].split()[0])
    over = runner.invoke(
        app, ["memory", LOOP, "--train", "adam", "--batch", str(batch + 1), "-f", "json"]
    )
    assert json.loads(over.stdout)["peak_bytes"] > 64 * 2**20


def test_draw_show_memory_runs_an_estimate(tmp_path: Path) -> None:
    out = tmp_path / "t.dot"
    spec = f"{EXAMPLES}/lstm_tagger.py:LSTMTagger"
    result = runner.invoke(app, [spec, "--show", "memory", "--color", "memory", "-o", str(out)])
    assert result.exit_code == 0, result.output
    dot = out.read_text()
    assert "saved " in dot and "memory: saved for backward" in dot
    assert "at the peak of a training step (sgd" in dot


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch", "0"], "--batch 0: give a batch size"),
        (["--batch", "two"], "--batch two: give a batch size"),
        (["--fit", "banana"], "--fit banana: give the memory to fit in"),
        (["--fit", "1GiB", "--batch", "2"], "give --fit or --batch, not both"),
        (["--train", "lion"], "--train lion: not an optimizer"),
        (["--dtype", "fp8"], "--dtype fp8: give one of fp32, bf16, fp16"),
        (["--master-weights"], "--master-weights keeps fp32 copies"),
        (["--kernels", "tpu"], "--kernels tpu: give cpu or cuda"),
        (["--format", "md"], "--format 'md'"),
        (["--train", "sgd", "--fit", "1KiB"], "even a batch of 1 needs"),
    ],
)
def test_bad_values_are_one_line_errors(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "m.svg"
    result = runner.invoke(app, ["memory", LOOP, *args, "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2 and "Traceback" not in result.stderr
    assert not out.exists()


def test_a_saved_graph_is_refused(tmp_path: Path) -> None:
    saved = tmp_path / "g.json"
    saved.write_text("{}")
    result = runner.invoke(app, ["memory", str(saved)])
    assert result.exit_code == 2 and "give the model, not a saved graph" in result.stderr


def test_a_real_subprocess() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fxviz", "memory", "resnet18", "--train", "sgd", "-f", "json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["params_bytes"] == 11_689_512 * 4 and report["grads_bytes"] > 0
    assert report["batch"] == 1 and report["peak_phase"] in ("forward", "backward")


def test_summary_gains_saved_and_live_columns(tmp_path: Path) -> None:
    spec = f"{EXAMPLES}/lstm_tagger.py:LSTMTagger"
    result = runner.invoke(app, ["summary", spec, "--memory", "-f", "json"])
    assert result.exit_code == 0, result.output
    rows = {r["module"]: r for r in json.loads(result.stdout)["rows"]}
    assert rows["lstm"]["saved"] > 0 and rows["(total)"]["saved"] >= rows["lstm"]["saved"]
    plain = json.loads(runner.invoke(app, ["summary", spec, "-f", "json"]).stdout)
    assert "saved" not in plain["rows"][0]
    # A graph saved by `fxviz memory` has the columns without running anything.
    saved = tmp_path / "g.json"
    runner.invoke(app, ["memory", spec, "--train", "sgd", "-o", str(saved)])
    table = runner.invoke(app, ["summary", str(saved), "-f", "markdown"]).stdout
    assert table.splitlines()[0].endswith("| saved | live |")


def test_the_html_page_shows_each_modules_share(tmp_path: Path) -> None:
    page = tmp_path / "m.html"
    result = runner.invoke(app, ["memory", LOOP, "--train", "sgd", "-o", str(page)])
    assert result.exit_code == 0, result.output
    assert '"held":"saved ' in page.read_text()


def test_a_deep_stack_is_measured_small_unless_whole_is_asked() -> None:
    from handmade import TINY_LLAMA

    config = [arg for item in TINY_LLAMA for arg in ("--config", item)]
    reports = {}
    for extra in ([], ["--whole"]):
        result = runner.invoke(
            app, ["memory", "hf:llama", *config, "--train", "sgd", "-f", "json", *extra]
        )
        assert result.exit_code == 0, result.output
        said = "2, 3 and 4 layers in layers instead of 12" in result.stderr
        assert said == (not extra), result.stderr
        reports[bool(extra)] = json.loads(result.stdout)
    assert reports[True] == reports[False]  # the same bytes, every module's share included
