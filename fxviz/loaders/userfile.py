"""Models from the user's own Python files: `net.py:Net`, `net.py:make_net`, `net.py`.

Discovery (which object to use) is pure logic in `pick_model`; importing and calling the
user's code happens in `load_userfile`, where every failure of *their* code becomes a
`ModelLoadError` naming the file and line.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import inspect
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import torch

from fxviz.errors import ModelLoadError, ModelNotFoundError, SpecError, did_you_mean
from fxviz.loaders import LoadedModel, LoadOptions, keyword_hint
from fxviz.loaders.inputs import example_input, make_inputs, move_inputs, positional_names
from fxviz.loaders.meta import build_on
from fxviz.specs import ModelSpec

FACTORY_NAMES = ("model", "get_model", "build_model", "create_model")


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """What `pick_model` chose in a file, and why (for messages and tests)."""

    name: str
    kind: Literal["class", "factory", "instance"]
    reason: str


def pick_model(module: ModuleType, attr: str | None, file: str) -> ModelChoice:
    """Choose the nn.Module class, factory or instance that a spec means."""
    classes = [
        n
        for n, obj in vars(module).items()
        if inspect.isclass(obj)
        and issubclass(obj, torch.nn.Module)
        and obj.__module__ == module.__name__
    ]
    if attr is not None:
        obj = getattr(module, attr, None)
        if obj is None:
            candidates = classes + [n for n in FACTORY_NAMES if hasattr(module, n)]
            hint = did_you_mean(attr, candidates)
            hint += " " if hint else ""
            found = ", ".join(candidates) or "no nn.Module classes"
            raise ModelNotFoundError(f"no {attr!r} in {file}; {hint}found: {found}")
        return _classify(attr, obj, file, "named in the spec")
    for name in FACTORY_NAMES:
        if hasattr(module, name):
            return _classify(name, getattr(module, name), file, f"the file defines {name}")
    if len(classes) == 1:
        return ModelChoice(classes[0], "class", "the only nn.Module class in the file")
    if not classes:
        raise ModelNotFoundError(
            f"{file} defines no nn.Module class and no {' / '.join(FACTORY_NAMES)}; "
            f"write {file}:Name to pick one"
        )
    outermost = _outermost(getattr(module, "__file__", None) or file, classes)
    pick = f"{file}:{outermost[0]}" if len(outermost) == 1 else f"{file}:Name"
    raise ModelNotFoundError(
        f"{file} defines several nn.Module classes ({', '.join(classes)}); pick one: {pick}"
    )


def _outermost(file: str, classes: list[str]) -> list[str]:
    """The classes no other class of the file mentions: the model, not its blocks."""
    try:
        tree = ast.parse(Path(file).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return classes
    names_in = {
        node.name: {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        for node in tree.body
        if isinstance(node, ast.ClassDef)
    }
    mentioned = {
        name
        for name in classes
        for other, names in names_in.items()
        if other != name and name in names
    }
    return [name for name in classes if name not in mentioned]


def _classify(name: str, obj: object, file: str, reason: str) -> ModelChoice:
    if inspect.isclass(obj) and issubclass(obj, torch.nn.Module):
        return ModelChoice(name, "class", reason)
    if isinstance(obj, torch.nn.Module):
        return ModelChoice(name, "instance", reason)
    if callable(obj) and not inspect.isclass(obj):
        return ModelChoice(name, "factory", reason)
    raise ModelNotFoundError(
        f"{file}:{name} is a {type(obj).__name__}, not an nn.Module class, instance or factory"
    )


def import_user_file(path: Path) -> ModuleType:
    """Import a file as a module named after it, with its folder importable while it runs."""
    if not path.is_file():
        where = "" if path.is_absolute() else f" (relative to {Path.cwd()})"
        raise ModelNotFoundError(f"no file {str(path)!r}{where}")
    name = path.stem if path.stem.isidentifier() else "fxviz_user_model"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    previous = sys.modules.get(name)
    sys.path.insert(0, folder)
    sys.modules[name] = module
    # Drawing a model writes nothing beside it: no __pycache__ for the file or what it imports.
    wrote_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise ModelLoadError(
            f"{path} has a syntax error at line {exc.lineno}: {exc.msg}; fix it and try again"
        ) from exc
    except Exception as exc:
        raise ModelLoadError(
            f"importing {path} raised {type(exc).__name__}: {exc}{_user_line(exc, path)}"
        ) from exc
    finally:
        sys.dont_write_bytecode = wrote_bytecode
        sys.path.remove(folder)
        if previous is not None:
            sys.modules[name] = previous
    return module


@contextlib.contextmanager
def _own_imports(folder: Path) -> Iterator[None]:
    """While a revision's file is imported, what it imports from its folder is that
    revision's (not a module of the same name another revision or the work tree loaded), and
    afterwards none of it stays in sys.modules to shadow the next revision's."""
    names = {p.stem for p in folder.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}

    def ours(name: str) -> bool:
        return name.partition(".")[0] in names

    stashed = {name: sys.modules.pop(name) for name in list(sys.modules) if ours(name)}
    try:
        yield
    finally:
        for name in [n for n in sys.modules if ours(n)]:
            del sys.modules[name]
        sys.modules.update(stashed)


def _user_line(exc: BaseException, path: Path) -> str:
    """` (net.py:12)`, the deepest frame of the traceback inside the user's file."""
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path.resolve()
    ]
    return f" ({path.name}:{frames[-1].lineno})" if frames else ""


def load_userfile(spec: ModelSpec, options: LoadOptions, device: str) -> LoadedModel:
    path = Path(spec.target)
    if spec.revision is not None:
        from fxviz.loaders.git import file_at_revision

        path = file_at_revision(spec.revision, spec.target)
        with _own_imports(path.parent):
            module = import_user_file(path)
    else:
        module = import_user_file(path)
    choice = pick_model(module, spec.attr, spec.target)
    obj = getattr(module, choice.name)
    kwargs = dict(spec.kwargs) | dict(options.kwargs)
    note = None
    if choice.kind == "instance":
        if kwargs:
            raise SpecError(f"{spec.target}:{choice.name} is an instance: it takes no arguments")
        model = obj.to(device)
    else:
        try:
            model, note = build_on(device, lambda: obj(**kwargs))
        except Exception as exc:
            shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
            raise ModelLoadError(
                f"{spec.target}:{choice.name}({shown}) raised {type(exc).__name__}: {exc}"
                f"{keyword_hint(exc, module)}{_user_line(exc, path)}"
            ) from exc
        if not isinstance(model, torch.nn.Module):
            raise ModelLoadError(
                f"{spec.target}:{choice.name}() returned a {type(model).__name__}, not an nn.Module"
            )
    model.eval()
    args, call_kwargs = _inputs(module, model, options, device, spec.target)
    return LoadedModel(
        model,
        args,
        call_kwargs,
        name=type(model).__name__,
        source=spec.text,
        device=device,
        notes=[note] if note else [],
    )


def _inputs(
    module: ModuleType, model: torch.nn.Module, options: LoadOptions, device: str, file: str
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """--input wins; else the file's example_inputs(); else a message saying what to pass."""
    if options.inputs:
        return make_inputs(options.inputs, device)
    factory = getattr(module, "example_inputs", None)
    if factory is None:
        names = ", ".join(positional_names(model)) or "the forward arguments"
        raise SpecError(
            f"{file}: no inputs to trace with; pass --input per forward argument ({names}), "
            f"e.g. --input {example_input(model)}, or define example_inputs() in the file"
        )
    try:
        value = factory()
    except Exception as exc:
        raise ModelLoadError(
            f"{file}: example_inputs() raised {type(exc).__name__}: {exc}"
        ) from exc
    value = move_inputs(value, device)
    # As torch.export takes them: a tuple is the positional arguments, a dict the keyword
    # arguments, anything else (a tensor, a list of images) the single argument.
    if isinstance(value, dict):
        return (), value
    if isinstance(value, tuple):
        return value, {}
    return (value,), {}
