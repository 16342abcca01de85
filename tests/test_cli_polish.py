"""The command line a Typer user expects: completion, help people read, did-you-mean for every
closed vocabulary, one-line errors from every dependency, and argv fuzzed for tracebacks."""

from __future__ import annotations

import json
import os
import pty
import select
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.core import TyperGroup, TyperOption
from typer.testing import CliRunner

from fxviz.cli import app
from fxviz.cli.options import complete_model as _complete_model
from fxviz.humanize import format_params

REPO = Path(__file__).parent.parent
LENET = f"{REPO}/examples/lenet.py:LeNet"
TINY = f"{REPO}/examples/tiny.py:TinyNet"
runner = CliRunner()

VECTOR_NET = """
from torch import nn


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(10, 10)

    def forward(self, x):
        return self.fc(x)


class Net(nn.Module):
    def __init__(self, hidden: int = 10, num_classes: int = 2) -> None:
        super().__init__()
        self.block = Block()
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x, scale: float = 1.0, flag: bool = False):
        y = self.head(self.block(x)) * scale
        return -y if flag else y


class Helper(nn.Module):
    def forward(self, x):
        return x
"""


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "vec.py").write_text(VECTOR_NET)
    return tmp_path


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["hf:bert", "--weights", "DEFAULT"],
            2,
            "error: hf:bert is a model type, built from transformers' default config: it has no "
            "published weights. For weights give a hub id (hf:org/name) or a local folder with "
            "config.json and the weights (hf:./checkpoint); drop --weights to draw the type\n",
        ),
        (["help"], 2, "error: no command or model named 'help'; did you mean --help?\n"),
        (["lsit"], 2, "error: no command or model named 'lsit'; did you mean `fxviz list`?\n"),
        (
            ["resnet18", "--show", "parms"],
            2,
            "error: --show 'parms': unknown annotation 'parms'; did you mean params? use shapes, "
            "args, params, buffers, flops, memory, source, why, all, none\n",
        ),
        (
            ["resnet18", "--kwarg", "num_clases=10"],
            2,
            "error: building torchvision resnet18(weights=None, num_clases=10) failed: "
            "ResNet.__init__() got an unexpected keyword argument 'num_clases'; "
            "did you mean num_classes?\n",
        ),
        (
            ["vec.py:Net", "--kwarg", "num_clases=10"],
            2,
            "error: vec.py:Net(num_clases=10) raised TypeError: Net.__init__() got an unexpected "
            "keyword argument 'num_clases'; did you mean num_classes?\n",
        ),
        (
            ["resnet18", "--depth", "0"],
            2,
            "error: --depth 0: give a whole number of path components, 1 or more (1 draws each "
            "top-level module as one box), or all for every level\n",
        ),
        (
            ["vec.py:Net"],
            2,
            "error: vec.py: no inputs to trace with; pass --input per forward argument (x, "
            "scale, flag), e.g. --input 1,10, or define example_inputs() in the file\n",
        ),
        (
            ["vec.py", "--input", "1,10"],
            2,
            "error: vec.py defines several nn.Module classes (Block, Net, Helper); pick one: "
            "vec.py:Name\n",
        ),
        (["list", "xyz"], 1, "no torchvision model name contains 'xyz'; "),
        (["list", "--hf", "lamma"], 1, "no Hugging Face model type contains 'lamma'; did you mean"),
        (
            ["summary", LENET, "--format", "yaml"],
            2,
            "error: --format 'yaml': use table, csv, markdown, json\n",
        ),
    ],
)
def test_each_case_says_what_is_wrong_in_one_line(args: list[str], code: int, message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    assert result.stderr.startswith(message), result.stderr
    assert "Traceback" not in result.output


def test_several_classes_hint_names_the_outermost(in_tmp: Path) -> None:
    (in_tmp / "two.py").write_text(VECTOR_NET.split("class Helper")[0])
    result = runner.invoke(app, ["two.py", "--input", "1,10"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: two.py defines several nn.Module classes (Block, Net); pick one: two.py:Net\n"
    )


def test_list_filters_and_lists_hugging_face_types() -> None:
    result = runner.invoke(app, ["list", "wide_resnet"])
    assert result.exit_code == 0 and result.stdout.split() == [
        "wide_resnet101_2",
        "wide_resnet50_2",
    ]
    result = runner.invoke(app, ["list", "--hf", "llama"])
    assert result.exit_code == 0 and "hf:llama" in result.stdout.split()


def test_outputs_are_named_after_what_wrote_them(in_tmp: Path) -> None:
    assert runner.invoke(app, [LENET, "-o", "l.json", "-q"]).exit_code == 0
    result = runner.invoke(app, ["render", "l.json", "-o", "l.svg", "--renderer", "embedded"])
    assert result.stderr == "LeNet: 14 nodes, 61.7k params, traced with fx on meta -> l.svg\n"
    result = runner.invoke(app, ["diff", "l.json", "l.json", "-o", "d.json"])
    assert result.exit_code == 0 and result.stderr == "diff written to d.json\n"


def test_title_non_tensor_inputs_and_counts(in_tmp: Path) -> None:
    args = ["vec.py:Net", "--input", "1,10", "--input", "scale=2.0", "--input", "flag=true"]
    result = runner.invoke(app, [*args, "--title", "A <vector> net", "-o", "v.dot"])
    assert result.exit_code == 0, result.output
    assert 'label="A <vector> net\\n' in (in_tmp / "v.dot").read_text()
    assert 'scale [label="input · scale\\n2.0"' in (in_tmp / "v.dot").read_text()
    assert format_params(6_610_000_000) == "6.61B" and format_params(11_689_512) == "11.7M"
    result = runner.invoke(app, [LENET, "--show", "buffers", "-o", "l.dot"])
    assert result.exit_code == 0


def test_summary_formats_keep_every_name(in_tmp: Path) -> None:
    result = runner.invoke(app, ["summary", LENET, "--format", "csv"])
    lines = result.stdout.splitlines()
    assert lines[0] == "module,type,input,output,params,trainable,FLOPs"
    assert lines[1] == "(total),LeNet,1×1×32×32,1×10,61706,61706,833040"
    assert lines[2] == "conv1,Conv2d,1×1×32×32,1×6×28×28,156,156,235200"
    markdown = runner.invoke(app, ["summary", LENET, "-f", "markdown"]).stdout.splitlines()
    assert markdown[:3] == [
        "| module | type | input | output | params | trainable | FLOPs |",
        "|---|---|---|---|---:|---:|---:|",
        "| (total) | LeNet | 1×1×32×32 | 1×10 | 61,706 | 61,706 | 833,040 |",
    ]
    data = json.loads(runner.invoke(app, ["summary", LENET, "-f", "json"]).stdout)
    assert data["rows"][5] == {
        "module": "fc1",
        "type": "Linear",
        "input": "1×400",
        "output": "1×120",
        "params": 48120,
        "trainable": 48120,
        "FLOPs": 96000,
    }


LONG = "input_layernorm_with_a_name_longer_than_any_terminal_column"


def test_summary_table_is_not_cut_when_piped(in_tmp: Path) -> None:
    (in_tmp / "long.py").write_text(
        "import torch\nfrom torch import nn\n\n\ndef example_inputs():\n"
        "    return (torch.zeros(1, 4),)\n\n\nclass Long(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        f"        self.{LONG} = nn.LayerNorm(4)\n\n"
        "    def forward(self, x):\n"
        f"        return self.{LONG}(x)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    done = subprocess.run(
        [sys.executable, "-m", "fxviz", "summary", "long.py:Long"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert LONG in done.stdout


def test_every_option_has_a_readable_metavar_and_a_default() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    for name, command in [("fxviz", group), *group.commands.items()]:
        for param in command.params:
            if param.name in ("help", "install_completion", "show_completion"):
                continue
            where = f"{name} {param.opts[0]}"
            if isinstance(param, TyperOption):
                readable = param.is_flag or (param.metavar is not None and "[" not in param.metavar)
                assert readable, f"{where}: metavar {param.metavar!r}"
                shown = param.show_default
                assert shown not in (None, False, "") or param.default is not None, where
                if param.is_flag:
                    assert isinstance(shown, str) or param.secondary_opts, where
            else:
                assert param.metavar and param.metavar.isupper(), where
    shown = runner.invoke(app, ["draw", "--help"], env={"COLUMNS": "200"}).stdout
    help_text = "\n".join(line for line in shown.splitlines() if "Show this message" not in line)
    # Options show what to type; positional arguments keep Typer's own `<str>` beside their name.
    assert "<list[" not in help_text and "<bool>" not in help_text and "<int" not in help_text
    assert "PATH" in help_text and "SHAPE" in help_text and ".pt2" in help_text


def test_completion_is_on_and_completes_models() -> None:
    names = _complete_model("resnet1")
    assert names[:3] == ["resnet101", "resnet152", "resnet18"]
    assert "hf:llama" in _complete_model("hf:lla")
    assert _complete_model("h")[-1] == "hf:"
    assert "_FXVIZ_COMPLETE" in _completion_script()


def _completion_script() -> str:
    """`fxviz --show-completion` as a user runs it, from bash: Typer detects the shell from
    the parent processes (a pytest started by something other than a shell has none).
    `; true` keeps bash from replacing itself with python."""
    done = subprocess.run(
        ["bash", "-c", f"{shlex.quote(sys.executable)} -m fxviz --show-completion; true"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and done.stdout, done.stderr
    return done.stdout


def _pty_run(command: list[str], typed: bytes = b"", seconds: float = 60.0) -> str:
    """Run `command` on a pseudo-terminal, type `typed`, and return what the terminal showed."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the terminal's program
        os.execvpe(command[0], command, {**os.environ, "TERM": "xterm", "COLUMNS": "120"})
    output = b""
    if typed:
        time.sleep(1.0)
        os.write(fd, typed)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            if os.waitpid(pid, os.WNOHANG) != (0, 0):
                break
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    else:
        os.kill(pid, 9)
    return output.decode(errors="replace")


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash for its completion")
def test_completion_in_a_real_terminal(tmp_path: Path) -> None:
    script = _completion_script()
    fxviz = tmp_path / "bin" / "fxviz"
    fxviz.parent.mkdir()
    fxviz.write_text(f'#!/bin/sh\nexec {sys.executable} -m fxviz "$@"\n')
    fxviz.chmod(0o755)
    rc = tmp_path / "rc"
    rc.write_text(f"export PATH={fxviz.parent}:$PATH\nPS1='$ '\n{script}\n")
    shown = _pty_run(
        ["bash", "--rcfile", str(rc), "-i"], typed=b"fxviz resnet1\t\t\nexit\n", seconds=60
    )
    assert "resnet101" in shown and "resnet152" in shown, shown[-2000:]


def test_progress_in_a_real_terminal_and_in_a_pipe(tmp_path: Path) -> None:
    manifest = tmp_path / "models.toml"
    manifest.write_text(f'[[model]]\nname = "tiny"\nspec = "{TINY}"\n')
    shown = _pty_run([sys.executable, "-m", "fxviz", "gallery", str(manifest)])
    assert "gallery: drew 1/1 entries" in shown
    assert "drawn: tiny" not in shown  # a terminal gets a progress bar, not one line per entry
    piped = subprocess.run(
        [sys.executable, "-m", "fxviz", "gallery", str(manifest)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "drawn: tiny" in piped.stderr


WORDS = ["draw", "diff", "summary", "render", "list", "gallery", "help", "lsit"]
SPECS = [TINY, "resnet1234", "hf:nonexistent_type", "missing.py:Net", "g.json", "vec.py:Net"]
OPTIONS = [
    "--depth", "--show", "--input", "--kwarg", "--config", "--device", "--tracer",
    "--renderer", "--rankdir", "--format", "-o", "--title", "--expand", "--weights",
    "--fold", "--no-fold", "--all-ops", "--all", "--check", "--shard", "--merge", "--hf",
    "-q", "--debug", "--version", "--help",
]  # fmt: skip
VALUES = [
    "0", "2", "-1", "x", "1,4", "int64:1,4", "scale=2.0", "params,flops", "parms", "LR",
    "meta", "cuda", "fx", "export", "system", "out.svg", "out.jpeg", "out.json", "1/2", "4/3",
    "num_classes=3", "k=v", "", "é", "../x", "<b>",
]  # fmt: skip


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.lists(
        st.one_of(st.sampled_from(WORDS + SPECS + OPTIONS), st.sampled_from(VALUES)),
        min_size=1,
        max_size=6,
    )
)
def test_fuzzed_argv_never_gives_a_traceback(in_tmp: Path, argv: list[str]) -> None:
    (in_tmp / "g.json").write_text("{}")
    result = runner.invoke(app, argv)
    assert result.exit_code in (0, 1, 2), (argv, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        argv,
        repr(result.exception),
    )
    if "--debug" not in argv:  # --debug asks for the traceback of an error
        assert "Traceback" not in result.output, (argv, result.output)
