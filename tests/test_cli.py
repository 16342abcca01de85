"""The command line, through typer's CliRunner and through real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fxviz.cli import app
from fxviz.graph import Graph

REPO = Path(__file__).parent.parent
LENET = str(REPO / "examples" / "lenet.py")
runner = CliRunner()


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_model_is_the_default_command(in_tmp: Path) -> None:
    result = runner.invoke(app, [f"{LENET}:LeNet", "--renderer", "embedded"])
    assert result.exit_code == 0, result.output
    assert "LeNet: 14 nodes, 61.7k params, traced with fx on meta -> LeNet.svg" in result.stderr
    assert b"1\xc3\x9716\xc3\x975\xc3\x975" in (in_tmp / "LeNet.svg").read_bytes()  # 1×16×5×5


def test_explicit_draw_and_several_outputs(in_tmp: Path) -> None:
    args = ["draw", f"{LENET}:LeNet", "-o", "l.json", "-o", "l.dot", "-o", "l.svg", "-q"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert sorted(p.name for p in in_tmp.iterdir()) == ["l.dot", "l.json", "l.svg"]
    graph = Graph.from_json((in_tmp / "l.json").read_text())
    assert (in_tmp / "l.dot").read_text() == graph.to_dot()


def test_format_option_names_the_default_file(in_tmp: Path) -> None:
    result = runner.invoke(app, [f"{LENET}:LeNet", "--format", "json", "--rankdir", "LR"])
    assert result.exit_code == 0, result.output
    assert json.loads((in_tmp / "LeNet.json").read_text())["name"] == "LeNet"


def test_inputs_kwargs_and_device(in_tmp: Path) -> None:
    result = runner.invoke(
        app,
        [
            f"{LENET}:LeNet",
            "--kwarg",
            "num_classes=7",
            "--input",
            "2,1,32,32",
            "--device",
            "cpu",
            "-o",
            "g.json",
        ],
    )
    assert result.exit_code == 0, result.output
    graph = Graph.from_json((in_tmp / "g.json").read_text())
    assert graph.device == "cpu"
    assert graph.outputs[0].outputs[0].shape == (2, 7)


def test_show_annotations_and_all_ops(in_tmp: Path) -> None:
    result = runner.invoke(
        app, ["resnet50", "--show", "params,flops,memory", "-o", "r.dot", "-o", "r.json", "-q"]
    )
    assert result.exit_code == 0, result.output
    dot = (in_tmp / "r.dot").read_text()
    conv1 = next(line for line in dot.splitlines() if line.strip().startswith("conv1 ["))
    # 3·64·7·7 weights; 2·(3·7·7)·64·112·112 FLOPs; backward keeps its 1·3·224·224 input,
    # and its 1·64·112·112 output (3.06 MiB) joins the input live as it runs (3.64 MiB of
    # tensors); oneDNN's reorder of that output, counted of the allocator, is as much again
    # (give or take its buffers per thread).
    assert "9.41k params · 236M FLOPs · saved 588 KiB · live " in conv1
    live = float(conv1.split("live ")[1].split(" MiB")[0])
    assert 3.64 + 3.06 - 0.1 <= live <= 3.64 + 3.06 + 0.1
    assert "subgraph cluster_layer4" in dot and "layer3.1–5: Bottleneck ×5" in dot
    graph = Graph.from_json((in_tmp / "r.json").read_text())
    assert len(graph.nodes) > 170  # JSON keeps every node whatever the picture shows

    bert = ["hf:bert", "--config", "num_hidden_layers=1", "-q"]
    assert runner.invoke(app, [*bert, "-o", "grouped.dot"]).exit_code == 0
    assert runner.invoke(app, [*bert, "--all-ops", "-o", "all.dot"]).exit_code == 0
    grouped, every = (in_tmp / "grouped.dot").read_text(), (in_tmp / "all.dot").read_text()
    assert "create_bidirectional_mask(…)" in grouped and 'label="arange' not in grouped
    assert every.count("[label=") > grouped.count("[label=") + 10
    assert 'label="scaled_dot_product_attention' in every  # one of attention_interface's ops


def test_expand_opens_a_boxed_module_class(in_tmp: Path) -> None:
    llama = ["hf:llama", "--config", "num_hidden_layers=1", "--config", "hidden_size=64"]
    llama += ["--config", "intermediate_size=64", "--config", "num_attention_heads=2"]
    llama += ["--config", "num_key_value_heads=1", "--config", "vocab_size=50", "-q"]
    assert runner.invoke(app, [*llama, "-o", "boxed.dot"]).exit_code == 0
    assert runner.invoke(app, [*llama, "--expand", "LlamaRMSNorm", "-o", "open.dot"]).exit_code == 0
    boxed, opened = (in_tmp / "boxed.dot").read_text(), (in_tmp / "open.dot").read_text()
    assert "norm · LlamaRMSNorm" in boxed and "rsqrt" not in boxed
    assert "rsqrt" in opened and 'label="norm: LlamaRMSNorm"' in opened


def test_render_a_saved_graph(in_tmp: Path) -> None:
    assert runner.invoke(app, [f"{LENET}:LeNet", "-o", "g.json", "-q"]).exit_code == 0
    result = runner.invoke(app, ["render", "g.json", "--renderer", "embedded"])
    assert result.exit_code == 0, result.output
    assert b"</svg>" in (in_tmp / "g.svg").read_bytes()


def test_render_keeps_an_expanded_module_open(in_tmp: Path) -> None:
    """A graph traced with --expand LSTM holds the LSTM's ops; render --expand LSTM draws
    them again, one time step in its loop, as the first drawing did."""
    tagger = f"{REPO}/examples/lstm_tagger.py:LSTMTagger"
    args = [tagger, "--expand", "LSTM", "-o", "g.json", "-o", "first.dot", "-q"]
    assert runner.invoke(app, args).exit_code == 0
    result = runner.invoke(app, ["render", "g.json", "--expand", "LSTM", "-o", "again.dot"])
    assert result.exit_code == 0, result.output
    first, again = (in_tmp / "first.dot").read_text(), (in_tmp / "again.dot").read_text()
    assert first == again and "loop ×12" in again
    assert runner.invoke(app, ["render", "g.json", "-o", "boxed.dot"]).exit_code == 0
    assert "sigmoid" not in (in_tmp / "boxed.dot").read_text()


def test_list_filters_names() -> None:
    result = runner.invoke(app, ["list", "resnet"])
    assert result.exit_code == 0
    assert "resnet18" in result.stdout.split() and "vgg16" not in result.stdout


def test_version_and_help() -> None:
    assert runner.invoke(app, ["--version"]).stdout.startswith("fxviz ")
    help_text = runner.invoke(app, ["--help"]).stdout
    assert "draw" in help_text and "render" in help_text
    assert "--input" in runner.invoke(app, ["draw", "--help"]).stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["resnet81"], "did you mean resnet18"),
        (["resnet18", "--input", "1,3,x"], "dimension 3 is 'x'"),
        (
            ["resnet18", "--input", "1,3,32"],
            "node 'conv1', conv1 (Conv2d), failed with input shapes 1×3×32",
        ),
        (["resnet18", "--device", "tpu"], "--device 'tpu': choose one of meta, cpu, cuda"),
        (["resnet18", "-o", "x.jpeg"], "suffix '.jpeg'"),
        (["resnet18", "-o", "nowhere/x.svg"], "folder 'nowhere' does not exist"),
        (["resnet18", "--rankdir", "RL"], "--rankdir 'RL': choose TB or LR"),
        (["resnet18", "--renderer", "gpu"], "--renderer 'gpu'"),
        (
            ["resnet18", "--tracer", "magic"],
            "--tracer 'magic': choose one of auto, fx, export, record",
        ),
        (["missing.py:Net"], "no file 'missing.py'"),
        (["timm:resnet18"], "unknown prefix 'timm'"),
        (["render", "absent.json"], "cannot read 'absent.json'"),
        (["hf:bertt"], "did you mean hf:bert"),
        (["hf:no-org/no-model"], "no hub model 'no-org/no-model' in the cache"),
        (["hf:bert", "--config", "num_hiden_layers=2"], "did you mean num_hidden_layers"),
        (["resnet18", "--config", "depth=2"], "--config applies to Hugging Face models"),
        (["absent.pt2"], "no file 'absent.pt2'"),
    ],
)
def test_errors_are_one_line_exit_2_and_write_nothing(
    in_tmp: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert list(in_tmp.iterdir()) == []


def test_debug_shows_the_traceback(in_tmp: Path) -> None:
    result = runner.invoke(app, ["resnet81", "--debug"])
    assert result.exit_code == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert "ModelNotFoundError" in result.stderr


def test_hugging_face_model_with_config_and_tracer_note(in_tmp: Path) -> None:
    args = [
        "hf:bert",
        "--config",
        "num_hidden_layers=1",
        "-o",
        "b.json",
        "--input",
        "input_ids=int64:1,8",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("note: torch.fx could not trace it (")
    assert "drawn with a recorded run" in result.stderr
    assert "bert: " in result.stderr and "traced with record on meta -> b.json" in result.stderr
    graph = Graph.from_json((in_tmp / "b.json").read_text())
    assert graph.node("input_ids").outputs[0].shape == (1, 8)


def test_tracer_option_forces_one(in_tmp: Path) -> None:
    result = runner.invoke(app, [f"{LENET}:LeNet", "--tracer", "export", "-o", "g.json", "-q"])
    assert result.exit_code == 0, result.output
    assert Graph.from_json((in_tmp / "g.json").read_text()).tracer == "export"


def test_bad_program_file(in_tmp: Path) -> None:
    (in_tmp / "x.pt2").write_text("nope")
    result = runner.invoke(app, ["x.pt2"])
    assert result.exit_code == 2 and "x.pt2 is not a saved torch.export program" in result.stderr
    assert sorted(p.name for p in in_tmp.iterdir()) == ["x.pt2"]


def test_corrupt_json_for_render(in_tmp: Path) -> None:
    (in_tmp / "bad.json").write_text("{not json")
    result = runner.invoke(app, ["render", "bad.json"])
    assert result.exit_code == 2 and "bad.json: not valid JSON" in result.stderr
    assert sorted(p.name for p in in_tmp.iterdir()) == ["bad.json"]


def _run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
        check=False,
    )


def test_subprocess_draw_and_exit_codes(in_tmp: Path) -> None:
    done = _run("-m", "fxviz", f"{LENET}:LeNet", "-o", "l.svg", cwd=in_tmp)
    assert done.returncode == 0, done.stderr
    assert "<svg" in (in_tmp / "l.svg").read_text()
    bad = _run("-m", "fxviz", "resnet81", cwd=in_tmp)
    assert bad.returncode == 2 and bad.stderr.startswith(
        "error: no torchvision model named 'resnet81'"
    )
    assert "Traceback" not in bad.stderr


def test_help_does_not_import_torch() -> None:
    code = (
        "import sys\nsys.argv = ['fxviz', '--help']\nfrom fxviz.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules, file=sys.stderr)"
    )
    done = _run("-c", code)
    assert "Usage" in done.stdout and done.stderr.strip() == "False"


def test_a_user_file_imports_neither_torchvision_nor_transformers(in_tmp: Path) -> None:
    code = (
        "import sys\nsys.argv = ['fxviz', *sys.argv[1:]]\nfrom fxviz.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted({'torchvision', 'transformers'} & set(sys.modules)), file=sys.stderr)"
    )
    done = _run("-c", code, f"{REPO}/examples/tiny.py:TinyNet", "-o", "t.dot", "-q", cwd=in_tmp)
    assert done.stderr.strip() == "[]" and (in_tmp / "t.dot").exists()


BLOCK_TORCH = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'torchvision'):
            raise ImportError('torch is blocked in this test')
sys.meta_path.insert(0, Block())
sys.argv = ['fxviz', *sys.argv[1:]]
from fxviz.cli import main
main()
"""


def test_render_from_json_works_without_torch(in_tmp: Path) -> None:
    assert runner.invoke(app, [f"{LENET}:LeNet", "-o", "g.json", "-q"]).exit_code == 0
    done = _run("-c", BLOCK_TORCH, "render", "g.json", "-o", "out.svg", "-o", "out.dot", cwd=in_tmp)
    assert done.returncode == 0, done.stderr
    assert "1×16×5×5" in (in_tmp / "out.svg").read_text()


def test_svg_renders_with_no_dot_on_path(in_tmp: Path) -> None:
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    done = _run("-m", "fxviz", f"{LENET}:LeNet", "-o", "l.svg", env=env, cwd=in_tmp)
    assert done.returncode == 0, done.stderr
    svg = (in_tmp / "l.svg").read_text()
    assert "conv1 · Conv2d" in svg and "1×6×28×28" in svg
    png = _run("-m", "fxviz", f"{LENET}:LeNet", "-o", "l.png", env=env, cwd=in_tmp)
    assert png.returncode == 2 and "PNG output needs Graphviz's `dot` on PATH" in png.stderr
    assert not (in_tmp / "l.png").exists()


def test_a_saved_graph_is_a_model_spec_too(in_tmp: Path) -> None:
    """`fxviz r18.json` draws the saved graph, as `fxviz render r18.json` and `summary` do."""
    assert runner.invoke(app, [f"{LENET}:LeNet", "-o", "lenet.json", "-q"]).exit_code == 0
    result = runner.invoke(app, ["lenet.json", "--renderer", "embedded"])
    assert result.exit_code == 0, result.output
    assert "LeNet: 14 nodes, 61.7k params, traced with fx on meta -> lenet.svg" in result.stderr
    rendered = runner.invoke(
        app, ["render", "lenet.json", "-o", "again.svg", "--renderer", "embedded"]
    )
    assert rendered.exit_code == 0, rendered.output
    assert (in_tmp / "again.svg").read_bytes() == (in_tmp / "lenet.svg").read_bytes()
    assert "LeNet: 14 nodes, 61.7k params, traced with fx on meta -> again.svg" in rendered.stderr
    summary = runner.invoke(app, ["summary", "lenet.json"])
    assert summary.exit_code == 0 and "61,706" in summary.stdout
