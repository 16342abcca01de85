"""Parsing of what users type: model specs, --input shapes, --kwarg values.

Pure string logic: nothing here imports torch, so every parser can be fuzzed cheaply.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Literal

from fxviz.errors import SpecError

ModelKind = Literal["torchvision", "userfile", "hf", "exported"]

KNOWN_PREFIXES = ("torchvision", "hf")
TRACERS = ("auto", "fx", "export", "record")

# Canonical names are torch's own (`torch.float32` -> "float32"); aliases are what people type.
DTYPES: dict[str, str] = {
    "float32": "float32",
    "float": "float32",
    "fp32": "float32",
    "float16": "float16",
    "half": "float16",
    "fp16": "float16",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float64": "float64",
    "double": "float64",
    "fp64": "float64",
    "int64": "int64",
    "long": "int64",
    "int32": "int32",
    "int": "int32",
    "int16": "int16",
    "int8": "int8",
    "uint8": "uint8",
    "bool": "bool",
    "complex64": "complex64",
}

_IDENT = r"[A-Za-z_]\w*"
_USERFILE = re.compile(rf"^(?P<path>.+?\.py)(?::(?P<attr>{_IDENT})(?:\((?P<args>.*)\))?)?$", re.S)
_MODEL_NAME = re.compile(r"^[A-Za-z_][\w.\-]*$")
_PREFIX = re.compile(rf"^(?P<prefix>{_IDENT}):(?P<rest>.*)$", re.S)
# `REV:path.py[:Name]`: a revision git names (HEAD~1, main, v1.2, a1b2c3d, origin/main), then
# a file. A drive letter (`C:\\net.py`) is not a revision.
_REVISION = re.compile(r"^(?P<rev>[^\s:]+):(?P<rest>[^:]+?\.py(?::.*)?)$", re.S)


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A parsed model spec; `text` is what the user typed, for messages and titles."""

    kind: ModelKind
    target: str
    text: str
    attr: str | None = None
    kwargs: tuple[tuple[str, object], ...] = ()
    # A file read from git at this revision (`HEAD~1:net.py:Net`), not from the work tree.
    revision: str | None = None


@dataclass(frozen=True, slots=True)
class InputSpec:
    """One example input: a shape, a dtype, and a keyword name for keyword inputs."""

    shape: tuple[int, ...]
    dtype: str = "float32"
    name: str | None = None
    # A keyword input that is not a tensor (`--input scale=2.0`, `--input flag=true`).
    value: bool | float | str | None = None

    def __str__(self) -> str:
        prefix = f"{self.name}=" if self.name else ""
        if self.value is not None:
            return f"{prefix}{self.value!r}"
        return f"{prefix}{self.dtype}:{','.join(map(str, self.shape))}"


def check_tracer(name: str, option: str = "--tracer") -> str:
    if name not in TRACERS:
        raise SpecError(f"{option} {name!r}: choose one of {', '.join(TRACERS)}")
    return name


def parse_model_spec(text: str) -> ModelSpec:
    """Parse `resnet18`, `torchvision:resnet18`, `hf:bert`, `net.py:Net(k=1)`, `prog.pt2`."""
    spec = text.strip()
    if not spec:
        raise SpecError("empty model spec: give a model name (resnet18) or a file (net.py:Net)")
    if spec.startswith("hf:"):
        target = spec[3:].strip()
        if not target:
            raise SpecError(f"model spec {text!r}: nothing after 'hf:'; try hf:bert or hf:./folder")
        return ModelSpec("hf", target, text)
    if spec.startswith("torchvision:"):
        name = spec[len("torchvision:") :].strip()
        if not _MODEL_NAME.match(name):
            raise SpecError(
                f"model spec {text!r}: {name!r} is not a torchvision model name; "
                "see `fxviz list` for the names"
            )
        return ModelSpec("torchvision", name, text)
    if spec.endswith(".pt2"):
        return ModelSpec("exported", spec, text)
    revision = _REVISION.match(spec)
    if revision and not _drive_letter(revision["rev"], revision["rest"]):
        try:
            found = parse_model_spec(revision["rest"])
        except SpecError as exc:  # said of the whole spec, as typed
            raise SpecError(str(exc).replace(repr(revision["rest"]), repr(text))) from None
        if found.kind != "userfile":  # a file spec; the revision part cannot make it one
            raise SpecError(f"model spec {text!r}: give REV:path.py:Name, e.g. HEAD~1:net.py:Net")
        return ModelSpec(
            "userfile",
            found.target,
            text,
            attr=found.attr,
            kwargs=found.kwargs,
            revision=revision["rev"],
        )
    if match := _USERFILE.match(spec):
        kwargs = _parse_call_args(match["args"], text) if match["args"] is not None else ()
        return ModelSpec("userfile", match["path"], text, attr=match["attr"], kwargs=kwargs)
    if ".py:" in spec:
        attr = spec.rsplit(".py:", 1)[1]
        if "(" in attr:
            raise SpecError(
                f"model spec {text!r}: cannot parse the arguments in {attr!r}; "
                "write Name(key=value, ...) with Python literals"
            )
        raise SpecError(
            f"model spec {text!r}: {attr!r} is not a Python name; "
            "write file.py:Name or file.py:Name(key=value, ...)"
        )
    if match := _PREFIX.match(spec):
        raise SpecError(
            f"model spec {text!r}: unknown prefix {match['prefix']!r}; "
            f"known prefixes: {', '.join(p + ':' for p in KNOWN_PREFIXES)} "
            "(or a file: net.py:Net)"
        )
    if _MODEL_NAME.match(spec):
        return ModelSpec("torchvision", spec, text)
    raise SpecError(
        f"model spec {text!r} is neither a model name (resnet18), a Python file (net.py:Net), "
        "a Hugging Face model (hf:bert) nor a saved program (model.pt2)"
    )


def _drive_letter(rev: str, rest: str) -> bool:
    return len(rev) == 1 and rev.isalpha() and rest[:1] in ("\\", "/")


def _parse_call_args(args: str, text: str) -> tuple[tuple[str, object], ...]:
    try:
        call = ast.parse(f"f({args})", mode="eval").body
    except SyntaxError as exc:
        raise SpecError(
            f"model spec {text!r}: cannot parse the arguments ({args}); "
            "write Name(key=value, ...) with Python literals"
        ) from exc
    assert isinstance(call, ast.Call)
    if call.args:
        raise SpecError(
            f"model spec {text!r}: positional arguments are not supported; write Name(key=value)"
        )
    pairs: list[tuple[str, object]] = []
    for keyword in call.keywords:
        if keyword.arg is None:
            raise SpecError(f"model spec {text!r}: **kwargs are not supported; write key=value")
        try:
            value = ast.literal_eval(keyword.value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
            raise SpecError(
                f"model spec {text!r}: the value of {keyword.arg!r} is not a Python literal"
            ) from exc
        pairs.append((keyword.arg, value))
    return tuple(pairs)


def parse_kwarg(text: str) -> tuple[str, object]:
    """Parse `--kwarg key=value`; the value is a Python literal, else taken as a string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not re.fullmatch(_IDENT, key):
        raise SpecError(f"--kwarg {text!r}: write key=value, e.g. --kwarg num_classes=10")
    raw = raw.strip()
    try:
        return key, ast.literal_eval(raw)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return key, raw


def _plain_value(text: str) -> bool | float | str | None:
    """A keyword input that is not a shape: true/false, a number with a point or an exponent
    (`2.0`, `1e-3`), or a quoted string. A whole number stays a shape (`n=3` is a 1-D tensor)."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if re.fullmatch(r"[-+]?(\d+\.\d*|\.\d+|\d+(\.\d*)?[eE][-+]?\d+)", text):
        return float(text)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return None


def parse_input_spec(text: str) -> InputSpec:
    """Parse `1,3,224,224`, `int64:1,16` or `input_ids=int64:1,16` (`x` and `×` also separate),
    or a keyword input that is not a tensor: `scale=2.0`, `flag=true`, `mode='fast'`."""
    spec = text.strip()
    name: str | None = None
    if "=" in spec:
        name, _, spec = (part.strip() for part in spec.partition("="))
        if not re.fullmatch(_IDENT, name):
            raise SpecError(
                f"--input {text!r}: {name!r} is not an argument name; "
                "write name=dtype:shape, e.g. input_ids=int64:1,16"
            )
    if name is not None and (value := _plain_value(spec)) is not None:
        return InputSpec((), "", name, value)
    dtype = "float32"
    if ":" in spec:
        raw_dtype, _, spec = (part.strip() for part in spec.partition(":"))
        if raw_dtype.lower() not in DTYPES:
            raise SpecError(
                f"--input {text!r}: unknown dtype {raw_dtype!r}; "
                f"known: {', '.join(sorted(set(DTYPES.values())))}"
            )
        dtype = DTYPES[raw_dtype.lower()]
    if not spec:
        raise SpecError(f"--input {text!r}: no shape; write dimensions like 1,3,224,224")
    # `x` separates only when there are no commas, so `1,3,x` is a typo, not four dimensions.
    parts = spec.split(",") if "," in spec else re.split(r"[x×]", spec)
    shape: list[int] = []
    for position, part in enumerate(parts, start=1):
        part = part.strip()
        if not part.isascii() or not part.isdigit() or int(part) <= 0:
            shown = repr(part) if part else "empty"
            raise SpecError(
                f"--input {text!r}: dimension {position} is {shown}, not a positive integer; "
                "write dimensions like 1,3,224,224"
            )
        shape.append(int(part))
    return InputSpec(tuple(shape), dtype, name)
