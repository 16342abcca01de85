"""torchvision models: built on meta without memory, default inputs per family, clear errors."""

from __future__ import annotations

import pytest
import torch
import torchvision

from fxviz.errors import DeviceError, ModelNotFoundError, SpecError
from fxviz.loaders import LoadOptions, load, resolve_device
from fxviz.loaders.torchvision import default_inputs, list_torchvision_models
from fxviz.specs import InputSpec, parse_model_spec


def test_meta_build_allocates_nothing() -> None:
    loaded = load("resnet50")
    assert loaded.device == "meta"
    assert all(p.is_meta for p in loaded.module.parameters())
    assert not loaded.module.training
    assert loaded.args[0].shape == (1, 3, 224, 224) and loaded.args[0].is_meta


def test_prefix_and_kwargs() -> None:
    loaded = load(
        parse_model_spec("torchvision:resnet18"), LoadOptions(kwargs=(("num_classes", 10),))
    )
    assert loaded.module.fc.out_features == 10
    assert loaded.name == "resnet18" and loaded.source == "torchvision:resnet18"


def test_explicit_inputs_beat_defaults() -> None:
    loaded = load("resnet18", LoadOptions(inputs=(InputSpec((2, 3, 64, 64)),), device="cpu"))
    assert loaded.args[0].shape == (2, 3, 64, 64) and loaded.args[0].device.type == "cpu"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("resnet18", ((1, 3, 224, 224),)),
        ("inception_v3", ((1, 3, 299, 299),)),
        ("efficientnet_b3", ((1, 3, 300, 300),)),
        ("vit_h_14", ((1, 3, 224, 224),)),  # built without weights: the model's own image_size
        ("swin_v2_t", ((1, 3, 256, 256),)),
        ("r3d_18", ((1, 3, 16, 112, 112),)),
        ("mvit_v2_s", ((1, 3, 16, 224, 224),)),
        ("raft_small", ((1, 3, 224, 224), (1, 3, 224, 224))),
        ("fcn_resnet50", ((1, 3, 520, 520),)),
        ("quantized_resnet18", ((1, 3, 224, 224),)),
    ],
)
def test_default_inputs_per_family(name: str, expected: tuple[tuple[int, ...], ...]) -> None:
    with torch.device("meta"):
        module = torch.nn.Module()
    if name == "vit_h_14":
        module.image_size = 224  # type: ignore[assignment]
    specs = default_inputs(name, module)
    assert isinstance(specs, tuple)
    assert tuple(s.shape for s in specs) == expected


def test_detection_models_take_a_list_of_images() -> None:
    specs = default_inputs("fasterrcnn_resnet50_fpn", torch.nn.Module())
    assert isinstance(specs, list) and specs[0].shape == (3, 320, 320)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("resnet81", "did you mean resnet18"),
        ("vgg17", "did you mean vgg19, vgg16, vgg13"),
        ("zzzzzz", "`fxviz list` shows them all"),
    ],
)
def test_unknown_names_suggest_close_ones(name: str, message: str) -> None:
    with pytest.raises(ModelNotFoundError, match=message):
        load(name)


def test_list_is_sorted_and_complete() -> None:
    names = list_torchvision_models()
    assert names == sorted(names) and {"resnet18", "vit_b_16", "raft_small"} <= set(names)


@pytest.mark.parametrize(
    ("device", "weights", "expected"),
    [(None, None, "meta"), (None, "DEFAULT", "cpu"), ("cpu", None, "cpu")],
)
def test_device_defaults(device: str | None, weights: str | None, expected: str) -> None:
    assert resolve_device(device, weights) == expected


@pytest.mark.parametrize(
    ("device", "weights", "error", "message"),
    [
        ("tpu", None, SpecError, "choose one of meta, cpu, cuda"),
        ("meta", "DEFAULT", SpecError, "--weights needs real memory"),
    ],
)
def test_bad_devices(device: str, weights: str | None, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        resolve_device(device, weights)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_gpu_is_a_device_error() -> None:
    with pytest.raises(DeviceError, match="torch sees no CUDA GPU"):
        resolve_device("cuda", None)


def test_published_weights_are_unpickled_with_weights_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.models import _api

    seen: dict[str, object] = {}

    def fake_download(url: str, *args: object, **kwargs: object) -> dict[str, torch.Tensor]:
        seen.update(kwargs, url=url)
        return torchvision.models.resnet18().state_dict()

    monkeypatch.setattr(_api, "load_state_dict_from_url", fake_download)
    loaded = load("resnet18", LoadOptions(weights="DEFAULT"))
    assert seen["weights_only"] is True and str(seen["url"]).endswith(".pth")
    assert loaded.device == "cpu" and not next(loaded.module.parameters()).is_meta
    assert _api.load_state_dict_from_url is fake_download  # restored
