"""A deep stack of layers measured from the same model with 2, 3 and 4 of them: the same bytes
as running the whole model, or no answer (and the whole model runs)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from handmade import TINY_LLAMA

import fxviz
from fxviz import api
from fxviz.graph import MemoryEstimate, ModuleMemory
from fxviz.tracing.memory import MemorySetup, estimate_memory
from fxviz.tracing.memory_scaling import SMALL, Stack, _scaled_path, scaled


@pytest.mark.parametrize(
    ("train", "dtype", "master"),
    [(None, None, False), ("sgd", None, False), ("adamw", "bf16", True)],
    ids=["inference", "sgd", "adamw-bf16-master"],
)
def test_twelve_layers_from_two_three_and_four_are_the_whole_run(
    train: str | None, dtype: str | None, master: bool
) -> None:
    graph = api.memory(
        "hf:llama", config=TINY_LLAMA, train=train, dtype=dtype, master_weights=master
    )
    assert any("2, 3 and 4 layers in layers instead of 12" in n for n in graph.notes)
    loaded = fxviz.load("hf:llama", config=TINY_LLAMA)
    setup = MemorySetup(train, None, dtype, master)
    whole, shares = estimate_memory(loaded.module, loaded.args, loaded.kwargs, setup)
    assert graph.memory == whole  # every count, the module at the peak and its phase
    drawn = {m.path: m.memory for m in graph.modules if m.memory is not None}
    assert {p: drawn.get(p) for p in shares} == shares  # each module's share, every layer's


def test_a_batch_that_fits_is_the_whole_runs() -> None:
    scaled_fit = api.memory("hf:llama", config=TINY_LLAMA, train="adam", fit="40MiB")
    loaded = fxviz.load("hf:llama", config=TINY_LLAMA)
    setup = MemorySetup("adam", scaled_fit.memory.batch if scaled_fit.memory else None)
    whole, _ = estimate_memory(loaded.module, loaded.args, loaded.kwargs, setup)
    more, _ = estimate_memory(
        loaded.module, loaded.args, loaded.kwargs, replace(setup, batch=setup.batch + 1)
    )
    assert scaled_fit.memory == whole
    assert whole.peak <= 40 * 2**20 < more.peak


def test_a_given_layer_count_and_a_shallow_stack_run_whole() -> None:
    cut = api.memory("hf:llama", config=TINY_LLAMA, layers=6)
    shallow = api.memory("hf:llama", config=[*TINY_LLAMA[1:], "num_hidden_layers=4"])
    for graph in (cut, shallow):
        assert not any(n.startswith("memory: from this model") for n in graph.notes)


def _estimate(peak: int, at: str = "lm_head", phase: str = "forward") -> MemoryEstimate:
    return MemoryEstimate("sgd", "fp32", 1, peak, 10, 0, 10, 0, peak - 20, 5, at, phase)


def _runs(
    forward: list[int], backward: list[int], at: list[str] | None = None
) -> dict[int, tuple[MemoryEstimate, dict[str, ModuleMemory], dict[str, MemoryEstimate]]]:
    runs = {}
    for k, n in enumerate(SMALL):
        phases = {
            "forward": _estimate(forward[k], at[k] if at else "lm_head"),
            "backward": _estimate(backward[k], "lm_head", "backward"),
        }
        top = max(phases.values(), key=lambda e: e.peak)
        runs[n] = (top, {"lm_head": ModuleMemory(1, 2)}, phases)
    return runs


def test_a_peak_that_moves_to_another_phase_is_found() -> None:
    """The forward peaks with few layers, the backward with many: each phase on its own line."""
    runs = _runs(forward=[100, 110, 120], backward=[90, 105, 120])
    found = scaled(runs.__getitem__, Stack("layers", 80))
    assert found is not None
    estimate, _ = found
    assert estimate.peak_phase == "backward" and estimate.peak == 90 + 78 * 15


def test_counts_off_a_line_give_no_answer() -> None:
    runs = _runs(forward=[100, 110, 125], backward=[0, 0, 0])
    assert scaled(runs.__getitem__, Stack("layers", 80)) is None


def test_the_module_at_the_peak_counts_from_the_start_or_the_end() -> None:
    stack = Stack("model.layers", 80)
    assert _scaled_path(["model.layers.0.mlp"] * 3, stack) == "model.layers.0.mlp"
    last = ["model.layers.1.mlp", "model.layers.2.mlp", "model.layers.3.mlp"]
    assert _scaled_path(last, stack) == "model.layers.79.mlp"
    assert _scaled_path(["lm_head"] * 3, stack) == "lm_head"
    assert _scaled_path(["model.layers.0.mlp", "model.layers.0.mlp", "lm_head"], stack) is None
    moving = ["model.layers.0.mlp", "model.layers.2.mlp", "model.layers.1.mlp"]
    assert _scaled_path(moving, stack) is None
