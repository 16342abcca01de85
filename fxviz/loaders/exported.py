"""Saved torch.export programs (`torch.export.save(ep, "model.pt2")`), drawn without source.

The archive is checked before torch reads it, so a file that is not a program, or one saved
by a newer torch, gets a message saying so instead of a deserializer traceback.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import torch

from fxviz.errors import ModelLoadError, ModelNotFoundError, first_line
from fxviz.loaders import LoadedModel, LoadOptions
from fxviz.loaders.inputs import make_inputs, move_inputs
from fxviz.loaders.torch_internals import export_schema_major
from fxviz.specs import ModelSpec


def load_exported(spec: ModelSpec, options: LoadOptions, device: str) -> LoadedModel:
    path = Path(spec.target)
    if not path.is_file():
        raise ModelNotFoundError(f"no file {spec.target!r}")
    check_archive(path)
    try:
        program = torch.export.load(str(path))
    except Exception as exc:  # the deserializer raises many kinds for a damaged file
        raise ModelLoadError(
            f"{path} could not be read as a torch.export program: {first_line(exc)}"
        ) from exc
    module = program.module().to(device)
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    if options.inputs:
        args, kwargs = make_inputs(options.inputs, device)
    elif program.example_inputs is not None:
        args, kwargs = move_inputs(program.example_inputs, device)
    else:
        args, kwargs = _inputs_from_signature(program, device), {}
    return LoadedModel(
        module,
        tuple(args),
        dict(kwargs),
        name=path.stem,
        source=spec.text,
        device=device,
        program=program,
    )


def check_archive(path: Path) -> None:
    """A zip holding a model json whose schema major version this torch reads."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelLoadError(
            f"{path} is not a saved torch.export program (not a zip archive); "
            "write one with torch.export.save(torch.export.export(model, args), 'model.pt2')"
        ) from exc
    with archive:
        models = [n for n in archive.namelist() if "/models/" in n and n.endswith(".json")]
        if not models:
            raise ModelLoadError(f"{path} is a zip archive but holds no torch.export program")
        try:
            version = json.loads(archive.read(models[0])).get("schema_version") or {}
        except (ValueError, KeyError) as exc:
            raise ModelLoadError(f"{path}: its program description is not valid JSON") from exc
    major = version.get("major") if isinstance(version, dict) else None
    readable = export_schema_major()
    if isinstance(major, int) and major > readable:
        raise ModelLoadError(
            f"{path} was saved by a newer torch (export schema {major}.{version.get('minor')}); "
            f"torch {torch.__version__} reads schema {readable}.x: upgrade torch"
        )


def _inputs_from_signature(program: torch.export.ExportedProgram, device: str) -> tuple[Any, ...]:
    """Zeros shaped like the user inputs the program was exported with."""
    user_inputs = set(program.graph_signature.user_inputs)
    values = [
        n.meta.get("val")
        for n in program.graph.nodes
        if n.op == "placeholder" and n.name in user_inputs
    ]
    return tuple(
        torch.zeros(v.shape, dtype=v.dtype, device=device) if isinstance(v, torch.Tensor) else v
        for v in values
    )
