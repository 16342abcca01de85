"""User files: choosing the model in a file, calling it, and every way that can go wrong."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

from fxviz.errors import FxvizError, ModelLoadError, ModelNotFoundError, SpecError
from fxviz.loaders import LoadOptions, load
from fxviz.loaders.userfile import import_user_file, pick_model
from fxviz.specs import InputSpec

pytestmark = pytest.mark.usefixtures("restore_imports")

NET = """
import torch
from torch import nn

class Block(nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.fc = nn.Linear(width, width)

    def forward(self, x):
        return self.fc(x)

class Net(nn.Module):
    def __init__(self, width=4, classes=2):
        super().__init__()
        self.block = Block(width)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        return self.head(self.block(x))
"""


BAD_INIT = (
    "\nclass Bad(torch.nn.Module):\n    def __init__(self):\n        raise ValueError('no')\n"
)


def write(tmp_path: Path, source: str, name: str = "net.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


@pytest.mark.parametrize(
    ("extra", "attr", "chosen", "kind"),
    [
        ("", "Net", "Net", "class"),
        ("def get_model():\n    return Net(width=8)\n", None, "get_model", "factory"),
        ("model = Net()\n", None, "model", "instance"),
        ("def make(width=4):\n    return Net(width)\n", "make", "make", "factory"),
    ],
)
def test_pick_model(tmp_path: Path, extra: str, attr: str | None, chosen: str, kind: str) -> None:
    module = import_user_file(write(tmp_path, NET + extra))
    choice = pick_model(module, attr, "net.py")
    assert (choice.name, choice.kind) == (chosen, kind)


def test_single_class_is_picked(tmp_path: Path) -> None:
    source = (
        "import torch\nclass Only(torch.nn.Module):\n    def forward(self, x):\n        return x\n"
    )
    module = import_user_file(write(tmp_path, source))
    assert pick_model(module, None, "net.py").name == "Only"


def test_imported_classes_are_not_candidates(tmp_path: Path) -> None:
    source = "import torch\nfrom torch.nn import Linear\nclass Mine(torch.nn.Module):\n    pass\n"
    module = import_user_file(write(tmp_path, source))
    assert pick_model(module, None, "net.py").name == "Mine"


@pytest.mark.parametrize(
    ("source", "attr", "message"),
    [
        (NET, None, r"several nn.Module classes \(Block, Net\); pick one: net.py:Net"),
        (NET, "Nte", "no 'Nte' in net.py; did you mean Net\\? found: Block, Net"),
        ("x = 1\n", None, "defines no nn.Module class"),
        (NET + "CONST = 3\n", "CONST", "is a int, not an nn.Module"),
    ],
)
def test_pick_model_errors(tmp_path: Path, source: str, attr: str | None, message: str) -> None:
    module = import_user_file(write(tmp_path, source))
    with pytest.raises(ModelNotFoundError, match=message):
        pick_model(module, attr, "net.py")


def test_load_builds_on_meta_with_kwargs_and_inputs(tmp_path: Path) -> None:
    path = write(tmp_path, NET)
    loaded = load(
        f"{path}:Net(width=6)",
        LoadOptions(inputs=(InputSpec((3, 6)),), kwargs=(("classes", 5),)),
    )
    assert loaded.name == "Net" and loaded.device == "meta"
    assert loaded.module.head.out_features == 5 and loaded.module.head.in_features == 6
    assert all(p.is_meta for p in loaded.module.parameters())
    assert loaded.args[0].shape == (3, 6)


@pytest.mark.parametrize(
    ("returns", "args", "kwargs"),
    [
        ("torch.zeros(1, 4)", 1, set()),
        ("(torch.zeros(1, 4),)", 1, set()),
        ("{'x': torch.zeros(1, 4)}", 0, {"x"}),
        ("[torch.zeros(3, 4)]", 1, set()),
    ],
)
def test_example_inputs_shapes(tmp_path: Path, returns: str, args: int, kwargs: set[str]) -> None:
    path = write(tmp_path, NET + f"\ndef example_inputs():\n    return {returns}\n")
    loaded = load(f"{path}:Net", LoadOptions(device="cpu"))
    assert len(loaded.args) == args and set(loaded.kwargs) == kwargs


def test_example_inputs_move_to_meta(tmp_path: Path) -> None:
    path = write(tmp_path, NET + "\ndef example_inputs():\n    return (torch.zeros(1, 4),)\n")
    assert load(f"{path}:Net").args[0].is_meta


def test_instance_moves_to_the_device(tmp_path: Path) -> None:
    path = write(tmp_path, NET + "\nmodel = Net()\n")
    loaded = load(str(path), LoadOptions(inputs=(InputSpec((1, 4)),)))
    assert next(loaded.module.parameters()).is_meta


@pytest.mark.parametrize(
    ("source", "spec_suffix", "error", "message"),
    [
        (None, ":Net", ModelNotFoundError, "no file '.*missing.py'"),
        ("def broken(:\n", ":Net", ModelLoadError, "syntax error at line 1"),
        (
            "import not_a_module_xyz\n",
            ":Net",
            ModelLoadError,
            "raised ModuleNotFoundError.*net.py:1",
        ),
        (
            NET + BAD_INIT,
            ":Bad",
            ModelLoadError,
            r"net.py:Bad\(\) raised ValueError: no \(net.py:24\)",
        ),
        (
            NET + "\ndef f():\n    return 3\n",
            ":f",
            ModelLoadError,
            "returned a int, not an nn.Module",
        ),
        (
            NET,
            ":Net",
            SpecError,
            r"no inputs to trace with; pass --input per forward argument \(x\)",
        ),
        (
            NET + "\ndef example_inputs():\n    raise RuntimeError('boom')\n",
            ":Net",
            ModelLoadError,
            "example_inputs\\(\\) raised RuntimeError: boom",
        ),
        (
            NET + "\nmodel = Net()\n",
            ":model(width=3)",
            SpecError,
            "is an instance: it takes no arguments",
        ),
    ],
)
def test_load_errors(
    tmp_path: Path, source: str | None, spec_suffix: str, error: type[FxvizError], message: str
) -> None:
    path = tmp_path / "missing.py" if source is None else write(tmp_path, source)
    with pytest.raises(error, match=message):
        load(f"{path}{spec_suffix}")


def test_import_restores_sys_path(tmp_path: Path) -> None:
    import sys

    before = list(sys.path)
    import_user_file(write(tmp_path, NET))
    assert sys.path == before


def test_user_file_can_import_its_neighbours(tmp_path: Path) -> None:
    write(tmp_path, "import torch\nWIDTH = 4\n", name="helpers_xyz.py")
    path = write(tmp_path, "from helpers_xyz import WIDTH\n" + NET)
    module = import_user_file(path)
    assert module.WIDTH == 4
    assert isinstance(module.Net(), torch.nn.Module)


def test_loading_a_file_writes_nothing_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's shell writes bytecode (these machines set PYTHONDONTWRITEBYTECODE; users don't):
    importing `net.py` and the neighbours it imports leaves no `__pycache__` beside them."""
    import sys

    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    write(tmp_path, "import torch\nWIDTH = 4\n", name="neighbour_abc.py")
    path = write(tmp_path, "from neighbour_abc import WIDTH\n" + NET)
    load(f"{path}:Net", LoadOptions(inputs=(InputSpec((1, 4)),)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["neighbour_abc.py", "net.py"]
    assert sys.dont_write_bytecode is False


def test_a_real_process_writes_nothing_beside_the_file(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    path = write(tmp_path, NET)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    done = subprocess.run(
        [sys.executable, "-m", "fxviz", f"{path}:Net", "--input", "1,4", "-o", "net.json", "-q"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.json", "net.py"]
