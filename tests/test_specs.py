"""Model-spec, input-spec and --kwarg parsing: tables of good and bad input, then fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fxviz.errors import SpecError
from fxviz.specs import InputSpec, ModelSpec, parse_input_spec, parse_kwarg, parse_model_spec


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("resnet18", ModelSpec("torchvision", "resnet18", "resnet18")),
        (" resnet18 ", ModelSpec("torchvision", "resnet18", " resnet18 ")),
        ("torchvision:vit_b_16", ModelSpec("torchvision", "vit_b_16", "torchvision:vit_b_16")),
        ("hf:bert-base-uncased", ModelSpec("hf", "bert-base-uncased", "hf:bert-base-uncased")),
        ("prog.pt2", ModelSpec("exported", "prog.pt2", "prog.pt2")),
        ("net.py", ModelSpec("userfile", "net.py", "net.py")),
        ("dir/net.py:Net", ModelSpec("userfile", "dir/net.py", "dir/net.py:Net", attr="Net")),
        (
            "net.py:Net(num_classes=10, act='gelu', sizes=(1, 2))",
            ModelSpec(
                "userfile",
                "net.py",
                "net.py:Net(num_classes=10, act='gelu', sizes=(1, 2))",
                attr="Net",
                kwargs=(("num_classes", 10), ("act", "gelu"), ("sizes", (1, 2))),
            ),
        ),
        ("net.py:make()", ModelSpec("userfile", "net.py", "net.py:make()", attr="make")),
        (
            "C:/models/net.py:Net",
            ModelSpec("userfile", "C:/models/net.py", "C:/models/net.py:Net", attr="Net"),
        ),
    ],
)
def test_model_specs(text: str, expected: ModelSpec) -> None:
    assert parse_model_spec(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty model spec"),
        ("   ", "empty model spec"),
        ("hf:", "nothing after 'hf:'"),
        ("torchvision:", "is not a torchvision model name"),
        ("timm:resnet18", "unknown prefix 'timm'"),
        ("net.py:1Net", "is not a Python name"),
        ("net.py:Net(10)", "positional arguments are not supported"),
        ("net.py:Net(**kw)", r"\*\*kwargs are not supported"),
        ("net.py:Net(a=b)", "the value of 'a' is not a Python literal"),
        ("net.py:Net(a=", "cannot parse the arguments"),
        ("res net", "neither a model name"),
        ("@@@", "neither a model name"),
    ],
)
def test_bad_model_specs(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_model_spec(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,3,224,224", InputSpec((1, 3, 224, 224))),
        ("1x3x32x32", InputSpec((1, 3, 32, 32))),
        ("1×16", InputSpec((1, 16))),
        (" 1 , 8 ", InputSpec((1, 8))),
        ("int64:1,16", InputSpec((1, 16), "int64")),
        ("LONG:4", InputSpec((4,), "int64")),
        ("bf16:2,2", InputSpec((2, 2), "bfloat16")),
        ("input_ids=int64:1,16", InputSpec((1, 16), "int64", "input_ids")),
        ("mask=1,16", InputSpec((1, 16), "float32", "mask")),
    ],
)
def test_input_specs(text: str, expected: InputSpec) -> None:
    assert parse_input_spec(text) == expected


def test_input_spec_prints_back_as_it_parses() -> None:
    spec = parse_input_spec("ids=long:1x16")
    assert str(spec) == "ids=int64:1,16"
    assert parse_input_spec(str(spec)) == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,3,x", "dimension 3 is 'x'"),
        ("1,,3", "dimension 2 is empty"),
        ("-1", "dimension 1 is '-1'"),
        ("0,3", "dimension 1 is '0'"),
        ("", "no shape"),
        ("int64:", "no shape"),
        ("int65:1,2", "unknown dtype 'int65'"),
        ("1.5,2", r"dimension 1 is '1\.5'"),
        ("9-x=1,2", "is not an argument name"),
        ("١,٢", "not a positive integer"),
    ],
)
def test_bad_input_specs(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_input_spec(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("num_classes=10", ("num_classes", 10)),
        ("act=gelu", ("act", "gelu")),
        ("act='gelu'", ("act", "gelu")),
        ("sizes=[1, 2]", ("sizes", [1, 2])),
        ("flag=True", ("flag", True)),
    ],
)
def test_kwargs(text: str, expected: tuple[str, object]) -> None:
    assert parse_kwarg(text) == expected


@pytest.mark.parametrize("text", ["novalue", "=3", "1a=2", "a b=1"])
def test_bad_kwargs(text: str) -> None:
    with pytest.raises(SpecError, match="write key=value"):
        parse_kwarg(text)


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_any_model_spec_parses_or_raises_spec_error(text: str) -> None:
    try:
        spec = parse_model_spec(text)
    except SpecError:
        return
    assert spec.text == text


@settings(max_examples=400, deadline=None)
@given(st.text() | st.from_regex(r"(\w+=)?(\w+:)?[0-9x,×\- ]*", fullmatch=True))
def test_any_input_spec_parses_or_raises_spec_error(text: str) -> None:
    try:
        spec = parse_input_spec(text)
    except SpecError:
        return
    if spec.value is not None:  # a keyword's plain value (`a=false`, `scale=2.0`): no shape
        assert spec.name and spec.shape == ()
        return
    assert spec.shape and all(d > 0 for d in spec.shape)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_kwarg_parses_or_raises_spec_error(text: str) -> None:
    try:
        parse_kwarg(text)
    except SpecError:
        pass
