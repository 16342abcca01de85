"""`fxviz memory`'s estimates (made on meta, nothing allocated) against the memory a real step
takes on cpu (or cuda), for inference and for an SGD and an Adam training step.

    python benchmarks/memory.py [--only resnet18,bert] [--device cpu|cuda]

Each real step runs in a fresh process (so its peak RSS is its own), three times: a first step
makes the optimizer's state (and warms the kernels), the second and third are measured:
- `rss`: the second step, run as a user runs it, nothing watching: the process's peak resident
  memory in it above its RSS just before it (weights, buffers, inputs and the optimizer's state
  are in that baseline, and so are the pages of library code the first step brought in).
  Compared with fxviz's peak less those, the kernels' scratch included. glibc is told to give
  every block of 64 KiB or more back to the system when freed (`MALLOC_MMAP_THRESHOLD_`), as
  otherwise freed activations stay in the heap and RSS says nothing about the peak.
- `tracked`: the third step, under a TorchDispatchMode of this file that sees every storage
  an op makes, held by a weak reference until torch frees it (weights, buffers, inputs and
  optimizer state counted from the start): the peak of live tensor storages. Compared with
  fxviz's peak of tensors alone (`MemorySetup(scratch=False)`: no kernel scratch, which no
  tensor holds). Its RSS is not used: a Python dispatch mode changes what some kernels
  allocate (the LSTM's step took 41 MiB more resident memory under it).
- on cuda, `torch.cuda.max_memory_allocated` above the memory allocated before the step.
torchinfo's "Estimated Total Size" for the same model and batch is shown against both steps.

Prints a Markdown section for RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time
import weakref
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from fxviz import api
from fxviz.tracing.memory import MemorySetup, estimate_memory, resize_batch, training_loss

REPO = Path(__file__).parents[1]
EXAMPLES = REPO / "examples"


@dataclass(frozen=True)
class Case:
    name: str
    spec: str
    batch: int
    config: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    kind: str = ""
    # Inference keeps far less than training: it runs at a larger batch, so its activations
    # dominate the process's own noise in RSS (a few tens of MiB).
    inference_batch: int = 0

    def batch_for(self, mode: str) -> int:
        if mode == "inference":
            return self.inference_batch or 4 * self.batch
        return self.batch


CASES = [
    Case("resnet18", "resnet18", 32, kind="CNN"),
    Case("resnet50", "resnet50", 16, kind="CNN, bottlenecks"),
    Case("mobilenet_v3_large", "mobilenet_v3_large", 32, kind="depthwise CNN"),
    Case("efficientnet_b0", "efficientnet_b0", 16, kind="CNN, squeeze-excite"),
    Case("vit_b_16", "vit_b_16", 8, kind="vision transformer"),
    Case(
        "lstm",
        f"{EXAMPLES}/lstm_tagger.py:LSTMTagger",
        64,
        inputs=("int64:1,256",),
        kind="LSTM",
        inference_batch=1024,
    ),
    Case(
        "bert-base",
        "hf:bert",
        8,
        inputs=("input_ids=int64:1,256",),
        kind="encoder (config)",
    ),
    Case("gpt2", "hf:gpt2", 4, inputs=("input_ids=int64:1,256",), kind="decoder (config)"),
    Case("finetune", f"{EXAMPLES}/finetune.py:FineTune", 32, kind="frozen backbone"),
    Case(
        "shared_loop",
        f"{EXAMPLES}/shared_loop.py:SharedLoop",
        64,
        kind="a layer reused 8×",
        inference_batch=1024,
    ),
]
MODES = ("inference", "sgd", "adam")


def load(case: Case, device: str) -> tuple[torch.nn.Module, tuple[Any, ...], dict[str, Any]]:
    loaded = api.load(case.spec, inputs=case.inputs, device=device, config=case.config)
    return loaded.module, tuple(loaded.args), dict(loaded.kwargs)


def predict(case: Case) -> dict[str, Any]:
    module, args, kwargs = load(case, "meta")
    out: dict[str, Any] = {}
    for mode in MODES:
        batch = case.batch_for(mode)
        setup = MemorySetup(train=None if mode == "inference" else mode, batch=batch)
        started = time.perf_counter()
        estimate, _ = estimate_memory(module, args, kwargs, setup)
        seconds = time.perf_counter() - started
        tensors, _ = estimate_memory(module, args, kwargs, replace(setup, scratch=False))
        inputs = _bytes(resize_batch((args, kwargs), batch))
        out[mode] = {
            "peak": estimate.peak,
            "tensors": tensors.peak,
            "scratch": estimate.scratch,
            "above_baseline": estimate.peak
            - estimate.params
            - estimate.buffers
            - estimate.optimizer
            - inputs,
            "seconds": seconds,
        }
    return out


def _bytes(value: Any) -> int:
    seen: set[int] = set()
    total = 0
    for t in tree_flatten(value)[0]:
        if isinstance(t, torch.Tensor) and id(t.untyped_storage()) not in seen:
            seen.add(id(t.untyped_storage()))
            total += t.untyped_storage().nbytes()
    return total


class LiveStorages(TorchDispatchMode):
    """The peak of the bytes of live storages: the ones given, and every one an op makes."""

    def __init__(self, held: list[torch.Tensor]) -> None:
        super().__init__()
        self.ids: dict[int, weakref.ref[Any]] = {}
        self.live = 0
        for t in held:
            self._see(t)
        self.peak = self.live

    def _see(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        key = id(storage)
        known = self.ids.get(key)
        if known is not None and known() is storage:
            return
        size = storage.nbytes()
        self.live += size

        def gone(_: Any, size: int = size, key: int = key) -> None:
            self.live -= size
            self.ids.pop(key, None)

        self.ids[key] = weakref.ref(storage, gone)

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self._see(t)
        self.peak = max(self.peak, self.live)
        return out


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _peak_rss() -> int:
    """The process's peak RSS since the last `_reset_peak_rss` (Linux's VmHWM)."""
    with open("/proc/self/status") as f:
        found = re.search(r"VmHWM:\s+(\d+) kB", f.read())
    assert found is not None
    return int(found.group(1)) * 1024


def _reset_peak_rss() -> None:
    """Linux's VmHWM set back to the RSS now (proc(5): clear_refs, 5)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def measure(case: Case, mode: str, device: str) -> dict[str, Any]:
    """One real step (after a first one, for a training step), in this process."""
    torch.manual_seed(0)
    module, args, kwargs = load(case, device)
    args, kwargs = resize_batch((args, kwargs), case.batch_for(mode))
    module.train(mode != "inference")
    trainable = [p for p in module.parameters() if p.requires_grad]
    optimizer = None
    if mode == "sgd":
        optimizer = torch.optim.SGD(trainable, lr=1e-3)
    elif mode == "adam":
        optimizer = torch.optim.Adam(trainable, lr=1e-3)

    def step() -> None:
        assert optimizer is not None
        optimizer.zero_grad(set_to_none=True)
        output = module(*args, **kwargs)
        loss = training_loss(output)
        del output
        loss.backward()
        del loss
        optimizer.step()

    def run() -> None:
        if optimizer is None:
            with torch.no_grad():
                module(*args, **kwargs)
        else:
            step()
            for p in trainable:
                p.grad = None

    run()  # the optimizer's state made; the kernels' own first-call setup is not memory
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    baseline_rss = _rss()
    _reset_peak_rss()
    run()
    out = {"rss": _peak_rss() - baseline_rss}
    if device == "cuda":
        torch.cuda.synchronize()
        out["cuda"] = torch.cuda.max_memory_allocated()
    held = [*module.parameters(), *module.buffers(), *tree_flatten((args, kwargs))[0]]
    if optimizer is not None:
        held += [t for s in optimizer.state.values() for t in s.values()]
    tracker = LiveStorages([t for t in held if isinstance(t, torch.Tensor)])
    with tracker:
        run()
    out["tracked"] = tracker.peak
    return out


def measured(case: Case, mode: str, device: str) -> dict[str, Any]:
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    command = [sys.executable, __file__, "--measure", case.name, mode, "--device", device]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise SystemExit(f"{case.name} {mode}: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def torchinfo_estimate(case: Case, batch: int) -> int | None:
    try:
        import torchinfo
    except ImportError:
        return None
    module, args, kwargs = load(case, "cpu")
    args, kwargs = resize_batch((args, kwargs), batch)
    stats = torchinfo.summary(
        module, input_data=list(args) or None, verbose=0, mode="train", **kwargs
    )
    # torchinfo counts no input it was given as keywords (a Hugging Face model's input_ids).
    inputs = stats.total_input or _bytes((args, kwargs))
    return int(inputs + stats.total_output_bytes + stats.total_param_bytes)


@dataclass
class Row:
    case: Case
    predicted: dict[str, Any]
    truth: dict[str, dict[str, Any]] = field(default_factory=dict)
    torchinfo: dict[str, int | None] = field(default_factory=dict)


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.3f}" if b else "–"


def report(rows: list[Row], device: str) -> str:
    mib = 1024**2
    lines = [
        "## Memory: `fxviz memory` against a real step",
        "",
        f"torch {torch.__version__}, {platform.machine()}, device {device}; "
        "`python benchmarks/memory.py`. fxviz predicts on meta; each real step ran on "
        f"{device} in its own process (the second training step: the optimizer's state made). "
        "Ratios are predicted ÷ measured: fxviz's peak of tensors alone against `tracked`, the "
        "peak of live storages; its whole peak (the kernels' scratch included, the `scratch` "
        "column) against `rss`, the process's peak RSS in a step run with nothing watching "
        "(VmHWM, reset before it) above its RSS just before it, which holds weights, buffers, "
        "inputs and optimizer state"
        + (", `cuda` against torch.cuda.max_memory_allocated" if device == "cuda" else "")
        + ". torchinfo: its Estimated Total Size ÷ the tracked peak.",
        "",
        "| model | kind | batch | step | fxviz peak | scratch | tracked | ÷ tracked | ÷ rss"
        + (" | ÷ cuda" if device == "cuda" else "")
        + " | torchinfo ÷ tracked | fxviz s |",
        "|---|---|---|---|---|---|---|---|---|" + ("---|" if device == "cuda" else "") + "---|---|",
    ]
    for row in rows:
        for mode in MODES:
            p, t = row.predicted[mode], row.truth[mode]
            rss = _ratio(p["above_baseline"], t["rss"])
            cells = [
                row.case.name,
                row.case.kind,
                str(row.case.batch_for(mode)),
                mode,
                f"{p['peak'] / mib:.0f} MiB",
                f"{p['scratch'] / mib:.0f} MiB" if p["scratch"] else "–",
                f"{t['tracked'] / mib:.0f} MiB",
                _ratio(p["tensors"], t["tracked"]),
                rss,
                *([_ratio(p["tensors"], t["cuda"])] if device == "cuda" else []),
                _ratio(info, t["tracked"]) if (info := row.torchinfo.get(mode)) else "–",
                f"{p['seconds']:.2f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated case names")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--measure", nargs=2, metavar=("CASE", "MODE"), help=argparse.SUPPRESS)
    options = parser.parse_args()
    by_name = {c.name: c for c in CASES}
    if options.measure:
        name, mode = options.measure
        print(json.dumps(measure(by_name[name], mode, options.device)))
        return
    chosen = [by_name[n] for n in options.only.split(",") if n] or CASES
    rows = []
    for case in chosen:
        row = Row(case, predict(case))
        for mode in MODES:
            row.truth[mode] = measured(case, mode, options.device)
        for mode in MODES:
            row.torchinfo[mode] = torchinfo_estimate(case, case.batch_for(mode))
        rows.append(row)
        print(report([row], options.device).splitlines()[-1], file=sys.stderr)
    print(report(rows, options.device))


if __name__ == "__main__":
    main()
