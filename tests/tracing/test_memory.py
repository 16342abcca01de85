"""The memory model: a step's peak from its tensors' lifetimes, on fake tensors, against the
arithmetic of small models and against a real CPU step measured by its live storages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from fxviz import api
from fxviz.errors import MemoryEstimateError, SpecError
from fxviz.graph import MemoryEstimate
from fxviz.loaders.userfile import import_user_file
from fxviz.tracing.memory import (
    MemorySetup,
    estimate_memory,
    fit_batch,
    resize_batch,
    training_loss,
)

EXAMPLES = Path(__file__).parents[2] / "examples"
F32 = 4


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(256, 512)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(512, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(16 * 16 * 16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.bn(self.conv(x))))
        return self.head(x.flatten(1))


class Tagger(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(100, 16)
        self.lstm = nn.LSTM(16, 32, batch_first=True)
        self.out = nn.Linear(32, 5)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(self.lstm(self.embedding(ids))[0])


def _on_meta(cls: type[nn.Module]) -> nn.Module:
    with torch.device("meta"):
        return cls()


def _estimate(model: nn.Module, *args: Any, **setup: Any) -> MemoryEstimate:
    return estimate_memory(model, args, {}, MemorySetup(**setup))[0]


def _param_bytes(model: nn.Module, trainable: bool | None = None) -> int:
    return sum(
        p.numel() * p.element_size()
        for p in model.parameters()
        if trainable is None or p.requires_grad == trainable
    )


def test_mlp_arithmetic_inference_and_each_optimizer() -> None:
    model = _on_meta(MLP)
    x = torch.empty(32, 256, device="meta")
    weights = _param_bytes(model)
    infer = _estimate(model, x)
    # At the peak: the input, fc1's output (relu in place would share; nn.ReLU is not).
    assert infer.params == weights and infer.grads == infer.optimizer == infer.saved == 0
    assert infer.peak == weights + 32 * 256 * F32 + 2 * 32 * 512 * F32
    assert infer.mode == "inference" and infer.batch == 32 and infer.peak_phase == "forward"
    # Backward keeps fc1's input and relu's output (read by fc2 too: one storage, once).
    sgd = _estimate(model, x, train="sgd")
    assert sgd.saved == 32 * 256 * F32 + 32 * 512 * F32
    assert sgd.optimizer == 0 and sgd.peak_phase == "backward"
    momentum = _estimate(model, x, train="momentum")
    adam = _estimate(model, x, train="adam")
    adamw = _estimate(model, x, train="adamw")
    assert momentum.optimizer == weights
    steps = 4 * len(list(model.parameters()))  # Adam's step count: a float32 per parameter
    assert adam.optimizer == adamw.optimizer == 2 * weights + steps
    assert adam.peak >= weights * 4  # weights, gradients, two moments at once


def test_per_module_saved_bytes_count_each_storage_once() -> None:
    model = _on_meta(MLP)
    _, shares = estimate_memory(
        model, (torch.empty(8, 256, device="meta"),), {}, MemorySetup(train="sgd")
    )
    assert shares["fc1"].saved == 8 * 256 * F32
    assert shares["act"].saved == 8 * 512 * F32
    assert shares["fc2"].saved == 0  # its input is act's output, counted there
    assert shares[""].saved == shares["fc1"].saved + shares["act"].saved
    assert shares["fc2"].live >= 8 * 512 * F32  # act's output was live as fc2 ran


def test_bf16_with_master_weights_is_2_2_12_bytes_per_parameter() -> None:
    model = _on_meta(MLP)
    n = sum(p.numel() for p in model.parameters())
    x = torch.empty(4, 256, device="meta")
    plain = _estimate(model, x, train="adamw", dtype="bf16")
    steps = 4 * len(list(model.parameters()))  # AdamW's step count: a float32 per parameter
    assert plain.params == 2 * n and plain.optimizer == 4 * n + steps and plain.dtype == "bf16"
    mixed = _estimate(model, x, train="adamw", dtype="bf16", master_weights=True)
    assert mixed.params == 2 * n and mixed.optimizer == 12 * n + steps and mixed.master_weights
    assert mixed.grads <= 2 * n
    assert next(model.parameters()).dtype == torch.float32  # the model is left as it was


def test_frozen_backbone_has_no_gradient_or_state_but_keeps_what_layers_above_need() -> None:
    module = import_user_file(EXAMPLES / "finetune.py").FineTune
    model = _on_meta(module)
    x = torch.empty(2, 3, 64, 64, device="meta")
    estimate, shares = estimate_memory(model, (x,), {}, MemorySetup(train="adam"))
    trainable = _param_bytes(model, trainable=True)
    steps = 4 * sum(p.requires_grad for p in model.parameters())
    assert estimate.grads <= trainable and estimate.optimizer == 2 * trainable + steps
    assert trainable < _param_bytes(model) / 10
    # Below the trainable adapter nothing needs a gradient, so nothing is saved there...
    assert all(shares[f"backbone.{i}"].saved == 0 for i in range(7))
    # ...but frozen layer4 sits under the trainable head and above the adapter: it saves.
    assert shares["backbone.7"].saved > 0 and shares["adapter"].saved > 0
    assert shares["head"].saved > 0


def test_a_layer_reused_in_a_loop_saves_per_call_and_its_weights_count_once() -> None:
    module = import_user_file(EXAMPLES / "shared_loop.py").SharedLoop
    x = torch.empty(2, 16, 64, device="meta")
    with torch.device("meta"):
        four, eight = module(steps=4), module(steps=8)
    a, shares_a = estimate_memory(four, (x,), {}, MemorySetup(train="sgd"))
    b, shares_b = estimate_memory(eight, (x,), {}, MemorySetup(train="sgd"))
    assert a.params == b.params == _param_bytes(four)
    assert shares_b["step"].saved == 2 * shares_a["step"].saved > 0


# The truth: benchmarks/memory.py's own tracker of live storages, independent of fxviz's.
LiveStorages = import_user_file(Path(__file__).parents[2] / "benchmarks" / "memory.py").LiveStorages


def _real_peak(model: nn.Module, args: tuple[Any, ...], train: str | None) -> int:
    """A real CPU step (the second, for training: the optimizer's state made) measured."""
    model.train(train is not None)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer: torch.optim.Optimizer | None = None
    if train == "sgd":
        optimizer = torch.optim.SGD(trainable, lr=0.1)
    elif train == "adam":
        optimizer = torch.optim.Adam(trainable)

    def step() -> None:
        assert optimizer is not None
        optimizer.zero_grad(set_to_none=True)
        loss = training_loss(model(*args))
        loss.backward()
        del loss
        optimizer.step()

    if optimizer is not None:
        step()
        optimizer.zero_grad(set_to_none=True)
    held = [*model.parameters(), *model.buffers(), *args]
    if optimizer is not None:
        held += [t for s in optimizer.state.values() for t in s.values()]
    tracker = LiveStorages([t for t in held if isinstance(t, torch.Tensor)])
    with tracker:
        if optimizer is None:
            with torch.no_grad():
                model(*args)
        else:
            step()
    return tracker.peak


@pytest.mark.parametrize("train", [None, "sgd", "adam"])
@pytest.mark.parametrize(
    ("cls", "make_input"),
    [
        (MLP, lambda: torch.randn(16, 256)),
        (SmallCNN, lambda: torch.randn(4, 3, 32, 32)),
        # oneDNN's LSTM on CPU: its workspace comes from the real kernel (the meta one says 0).
        (Tagger, lambda: torch.randint(0, 100, (8, 24))),
    ],
    ids=["mlp", "cnn", "lstm"],
)
def test_the_estimate_on_fake_tensors_is_the_real_cpu_peak(
    cls: type[nn.Module], make_input: Any, train: str | None
) -> None:
    torch.manual_seed(0)
    real = cls()
    x = make_input()
    # Tensors alone: the kernels' scratch is in no storage (tests/tracing/test_scratch.py).
    predicted = _estimate(real, x, train=train, scratch=False)
    truth = _real_peak(real, (x,), train)
    if cls is Tagger and train is not None:
        # oneDNN's LSTM backward makes a bias-sized buffer its fake kernel does not (512 B).
        assert abs(predicted.peak - truth) <= 0.002 * truth
    else:
        assert predicted.peak == truth
    assert all(not p.is_meta for p in real.parameters())  # estimating allocated nothing on it


def test_batch_repeats_the_inputs_rows() -> None:
    mask = torch.tensor([[1, 1, 0]])
    ids = torch.tensor([[5, 6, 7]])
    resized = resize_batch({"ids": ids, "mask": mask, "scale": torch.tensor(2.0)}, 4)
    assert resized["ids"].shape == (4, 3) and resized["mask"].tolist() == [[1, 1, 0]] * 4
    assert resized["scale"].shape == ()
    model = _on_meta(MLP)
    x = torch.empty(1, 256, device="meta")
    assert _estimate(model, x, batch=64).batch == 64
    with pytest.raises(MemoryEstimateError, match="no batch dim"):
        resize_batch(torch.tensor(3.0), 2)


def _fake_run(per_sample: int, fixed: int, bumps: dict[int, int] | None = None) -> Any:
    bumps = bumps or {}

    def run(batch: int) -> MemoryEstimate:
        peak = fixed + per_sample * batch + bumps.get(batch, 0)
        return MemoryEstimate("sgd", "fp32", batch, peak, fixed, 0, 0, 0, peak - fixed, 0, "", "")

    return run


@pytest.mark.parametrize(
    ("per_sample", "fixed", "budget", "bumps", "best"),
    [
        (100, 1000, 10_000, None, 90),
        (100, 1000, 1_100, None, 1),
        (100, 1000, 1_250, None, 2),
        (7, 3, 5000, None, (5000 - 3) // 7),
        # Padding: batch 60 needs more than a straight line says, so 59 is the largest.
        (100, 1000, 7_050, {60: 200, 61: 200}, 59),
        (0, 1000, 2000, None, 1 << 10),
    ],
)
def test_fit_finds_the_largest_batch_within_the_budget(
    per_sample: int, fixed: int, budget: int, bumps: dict[int, int] | None, best: int
) -> None:
    found = fit_batch(_fake_run(per_sample, fixed, bumps), budget, most=1 << 10)
    assert found.batch == best


def test_fit_says_when_not_even_one_fits() -> None:
    with pytest.raises(MemoryEstimateError, match="even a batch of 1 needs 1.07 KiB"):
        fit_batch(_fake_run(100, 1000), 1000)


def test_api_fit_on_a_model() -> None:
    model = _on_meta(MLP)
    x = torch.empty(1, 256, device="meta")
    graph = api.memory(model, x, train="adam", fit="4MiB")
    assert graph.memory is not None and graph.memory.peak <= 4 * 2**20
    after = _estimate(model, x, train="adam", batch=graph.memory.batch + 1)
    assert after.peak > 4 * 2**20


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ({"train": "lion"}, "--train lion: not an optimizer"),
        ({"batch": 0}, "--batch 0: give a batch size"),
        ({"dtype": "fp8"}, "--dtype fp8: give one of fp32, bf16, fp16"),
        ({"master_weights": True}, "--master-weights keeps fp32 copies"),
        ({"train": "sgd", "master_weights": True}, "--master-weights keeps fp32 copies"),
        ({"kernels": "tpu"}, "--kernels tpu: give cpu or cuda"),
    ],
)
def test_bad_setups_are_spec_errors(setup: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        _estimate(_on_meta(MLP), torch.empty(1, 256, device="meta"), **setup)


def test_all_frozen_has_nothing_to_train() -> None:
    model = _on_meta(MLP).requires_grad_(False)
    with pytest.raises(MemoryEstimateError, match="every parameter is frozen"):
        _estimate(model, torch.empty(1, 256, device="meta"), train="sgd")


def test_a_model_that_fails_is_a_memory_error_naming_it() -> None:
    model = _on_meta(MLP)
    with pytest.raises(MemoryEstimateError, match="running MLP to measure its memory failed"):
        _estimate(model, torch.empty(1, 3, device="meta"))
