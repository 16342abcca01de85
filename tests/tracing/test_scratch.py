"""Kernel scratch: what CPU kernels take of their own while they run, measured of the real
kernel at a small batch, against the kernel run at the full one and against a real process's
peak resident memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from fxviz.graph import Graph
from fxviz.memory_report import render
from fxviz.tracing import scratch
from fxviz.tracing.memory import MemorySetup, estimate_memory, with_memory

resident = pytest.mark.skipif(
    not scratch.measurable(), reason="resident memory is measured on Linux (VmHWM) only"
)

CONV = torch.ops.aten.convolution.default
MIB = 1024**2


def _conv_args(batch: int, device: str = "meta") -> list[object]:
    x = torch.empty(batch, 64, 56, 56, device=device)
    weight = torch.empty(64, 1, 3, 3, device=device)  # depthwise: oneDNN reorders both ways
    return [x, weight, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 64]


def test_a_large_batch_is_scaled_from_a_small_one() -> None:
    batch = 96  # inputs of 73 MiB: measured at 10 (8 MiB of input), not at 96
    estimated = scratch.kernel_scratch(CONV, _conv_args(batch))
    real = _conv_args(batch, "cpu")
    truth = scratch._measured(CONV, scratch._signature(real, [(0, 0)], batch), -1, False)
    output = batch * 64 * 56 * 56 * 4
    assert truth > output / 2  # a real reorder: of the order of the output's 73 MiB
    assert abs(estimated - truth) <= 0.02 * truth


def test_a_convolutions_scratch_is_the_same_on_every_run() -> None:
    """Counted of torch's allocator, not of resident memory: a picture of it does not churn."""
    signature = scratch._signature(_conv_args(3), [(0, 0)], 3)
    counts = {scratch._measured.__wrapped__(CONV, signature, 1, False) for _ in range(3)}
    assert len(counts) == 1 and counts.pop() > 3 * 64 * 56 * 56 * 4 / 2


@resident
def test_the_allocators_count_is_the_resident_memory_the_kernel_takes() -> None:
    """At sizes where glibc's few hundred KiB of resident free pages, which a buffer may reuse
    unseen, are small beside the buffers."""
    backward = torch.ops.aten.convolution_backward.default
    for batch, weight, groups in ((16, (64, 64, 3, 3), 1), (8, (64, 1, 3, 3), 64)):
        args = _conv_args(batch, "cpu")
        args[1], args[-1] = torch.zeros(weight), groups
        grads = [torch.zeros_like(args[0]), *args[:3], *args[3:], [True, True, False]]
        for func, call, grown in ((CONV, args, [(0, 0)]), (backward, grads, [(0, 0), (1, 0)])):
            signature = scratch._signature(call, grown, batch)
            counted = scratch._measured.__wrapped__(func, signature, 1, False)
            taken = min(scratch._measured.__wrapped__(func, signature, 1, True) for _ in range(2))
            assert counted > 0 and abs(counted - taken) <= 0.05 * counted, (func, counted, taken)


def test_a_small_batch_is_measured_as_it_is_and_once() -> None:
    args = _conv_args(2)
    first = scratch.kernel_scratch(CONV, args)
    hits = scratch._measured.cache_info().hits
    assert scratch.kernel_scratch(CONV, args) == first  # the same sizes: not run again
    assert scratch._measured.cache_info().hits == hits + 1


def test_kernels_without_scratch_are_not_run() -> None:
    x = torch.empty(4, 8, device="meta")
    assert scratch.kernel_scratch(torch.ops.aten.relu.default, [x]) == 0


@resident
def test_the_lstm_layers_buffers_grow_with_the_batch() -> None:
    lstm = nn.LSTM(32, 64, batch_first=True, device="meta").eval()
    small, large = (
        estimate_memory(lstm, (torch.empty(b, 128, 32, device="meta"),), {}, MemorySetup())[0]
        for b in (64, 512)
    )
    # oneDNN keeps every step's states: about the output's size again, per sample.
    per_sample = (large.scratch - small.scratch) / (512 - 64)
    assert 0.5 * 128 * 64 * 4 <= per_sample <= 4 * 128 * 64 * 4


class _Depthwise(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, stride=2, padding=1)
        self.blocks = nn.Sequential(
            *(
                nn.Sequential(nn.Conv2d(32, 32, 3, padding=1, groups=32), nn.ReLU(inplace=True))
                for _ in range(3)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))


def test_scratch_is_a_part_of_the_peak_and_of_the_report() -> None:
    model = _Depthwise().eval()
    x = torch.empty(16, 3, 224, 224)
    with_it, shares = estimate_memory(model, (x,), {}, MemorySetup())
    without, _ = estimate_memory(model, (x,), {}, MemorySetup(scratch=False))
    assert with_it.scratch > 0 and without.scratch == 0
    parts = with_it.params + with_it.buffers + with_it.activations + with_it.scratch
    assert with_it.peak == parts and with_it.peak > without.peak
    assert with_it.peak_at.startswith("blocks") or with_it.peak_at == "stem"
    graph = with_memory(Graph("dw", "test", "fx", "cpu", ()), with_it, shares)
    assert "kernel scratch" in render(graph, "table")
    assert json.loads(render(graph, "json"))["scratch_bytes"] == with_it.scratch
    assert "kernel scratch" not in render(with_memory(graph, without, shares), "table")


_REAL_STEP = """
import json, re, sys, torch
sys.path.insert(0, sys.argv[1])
from test_scratch import _Depthwise
torch.manual_seed(0)
model = _Depthwise().eval()
x = torch.randn(16, 3, 224, 224)
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
with torch.no_grad():
    model(x)
    base = rss()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    model(x)
with open("/proc/self/status") as f:
    peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", f.read()).group(1)) * 1024
print(json.dumps(peak - base))
"""


@resident
def test_with_scratch_the_estimate_is_the_real_processs_peak() -> None:
    """A real inference step in its own process, as benchmarks/memory.py measures one: its
    peak resident memory above what it held before (weights and input)."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    done = subprocess.run(
        [sys.executable, "-c", _REAL_STEP, str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    truth = json.loads(done.stdout.splitlines()[-1])
    model = _Depthwise().eval()
    x = torch.empty(16, 3, 224, 224)
    held = sum(p.numel() * 4 for p in model.parameters()) + x.numel() * 4
    ratio = {
        on: (estimate_memory(model, (x,), {}, MemorySetup(scratch=on))[0].peak - held) / truth
        for on in (True, False)
    }
    assert 0.95 <= ratio[True] <= 1.05, ratio
    assert ratio[False] < 0.9, ratio  # without it, the depthwise convolutions' reorders missed


def test_a_kernel_that_fails_at_the_measuring_sizes_counts_none() -> None:
    def refuses(*_: object) -> None:
        raise RuntimeError("no kernel for these sizes")

    for resident in (False, True):
        signature = (("tensor", (2, 2), torch.float32, False),)
        assert scratch._measured(refuses, signature, 1, resident) == 0


@resident
def test_inside_the_users_own_profiler_session_its_session_is_left_whole() -> None:
    """A second profiler session would end the user's: resident memory is measured instead."""
    args = _conv_args(2)
    with torch.profiler.profile(profile_memory=True) as theirs:
        torch.zeros(8)
        took = scratch.kernel_scratch(CONV, args)
        torch.ones(8)
    assert took > 2 * 64 * 56 * 56 * 4 / 2  # of the order of a reorder of the output
    assert {"aten::zeros", "aten::ones"} <= {e.name for e in theirs.events()}
