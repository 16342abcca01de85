"""Building without weight memory, including constructors that compute with tensors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fxviz.loaders.meta import REBUILT_NOTE, build_on, weights_on_meta


class ComputesWidths(nn.Module):
    """Like torchvision's regnet: widths derived with tensor ops inside the constructor."""

    def __init__(self) -> None:
        super().__init__()
        width = int(torch.round(torch.tensor(7.6)).item())
        self.fc = nn.Linear(4, width)
        self.register_buffer("scale", torch.ones(width))


def test_plain_constructors_build_under_the_meta_device() -> None:
    model, note = build_on("meta", lambda: nn.Linear(3, 2))
    assert note is None and model.weight.is_meta


def test_tensor_computing_constructors_are_rebuilt_with_weights_on_meta() -> None:
    model, note = build_on("meta", ComputesWidths)
    assert note == REBUILT_NOTE
    assert model.fc.out_features == 8
    assert all(t.is_meta for t in [*model.parameters(), *model.buffers()])
    assert isinstance(model.fc.weight, nn.Parameter) and model.fc.weight.requires_grad


def test_registration_is_restored_even_on_error() -> None:
    before = (nn.Module.register_parameter, nn.Module.register_buffer)
    with pytest.raises(ValueError), weights_on_meta():
        raise ValueError("boom")
    assert (nn.Module.register_parameter, nn.Module.register_buffer) == before
    assert not nn.Linear(2, 2).weight.is_meta


def test_other_errors_are_not_swallowed() -> None:
    def broken() -> nn.Module:
        raise RuntimeError("size mismatch, m1: [1 x 2]")

    with pytest.raises(RuntimeError, match="size mismatch"):
        build_on("meta", broken)


def test_regnet_draws_on_meta() -> None:
    import fxviz

    graph = fxviz.trace("regnet_x_400mf")
    assert graph.device == "meta" and REBUILT_NOTE in graph.notes
    assert graph.node("fc").outputs[0].shape == (1, 1000)
