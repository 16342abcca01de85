"""Kernel scratch: memory a CPU kernel takes while it runs, beyond the tensors it returns.

torch never sees it as a tensor: oneDNN's convolution reorders its input and output to and
from its blocked layout, its LSTM layer keeps every step's gates. No formula outside oneDNN
gives its size, so it is asked of the real kernel (`scratch_ops` names the kernels): each op,
at each set of sizes, runs on zeros (once per set; the result is kept), and its scratch is
the most it held at once in the call less the bytes of what it returned.

How much it held is counted in one of two ways. A convolution's buffers come from torch's
allocator, so the profiler's memory events count them to the byte, the same on every run and
every platform (and within 2% of the resident memory they take, checked in
`tests/tracing/test_scratch.py`). oneDNN's LSTM layer asks the allocator for a workspace of
which inference touches a quarter, so its scratch is what it makes resident instead, measured
on Linux only: the process's peak resident memory in the call (VmHWM, reset through
/proc/self/clear_refs) above its resident memory before it, in a second call at the same
sizes (oneDNN sets itself up for new sizes in the first: 13 MB for a convolution whose
buffers take 6), with glibc told to return every block of 64 KiB or more to the system when
freed (a setting that stays for the rest of the process) and its heaps' free pages given back
before each call (`malloc_trim`): otherwise a buffer reuses freed memory that is still
resident, and is not seen. That one varies by a few hundred KiB between runs. It is also how
a convolution's is measured inside the user's own profiler session, where a second session
would end theirs.

Where the batch is large the kernel does not run at it: it runs at a smaller batch whose
inputs take about `BUDGET` bytes (4 samples at least), and the scratch is scaled from it by
the batch, so estimating batch 10,000 costs what 10 does. Every buffer measured grows in
proportion to the batch (conv's reorders are its input's or output's size, the LSTM's states
its output's); what does not (oneDNN's reordered weights) is a few percent of what it
measures at that size. Most of the time is oneDNN making its primitive for the new sizes
(10–30 ms for each), not the kernel.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import re
import resource
import sys
from collections.abc import Sequence
from typing import Any

import torch

from fxviz.loaders.torch_internals import (
    allocated_peak,
    no_dispatch_modes,
    profiling,
    scratch_ops,
    tree_flatten,
)

# The inputs' bytes a kernel is measured at, at most, when the batch is larger.
BUDGET = 8 * 1024**2
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
_RETURNED = 64 * 1024  # the smallest block glibc maps (and unmaps) on its own

SCRATCH_OPS = scratch_ops()
_log = logging.getLogger(__name__)


@functools.cache
def measurable() -> bool:
    """Whether this process can measure the scratch a kernel makes resident (and is set up
    to)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        _peak_rss()
        libc = ctypes.CDLL(None)
        libc.malloc_trim  # noqa: B018 (glibc's; `_trim` calls it before each measurement)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, _RETURNED))
    except (OSError, AttributeError, AssertionError):
        return False


def kernel_scratch(func: Any, args: Sequence[Any]) -> int:
    """The bytes `func` takes beyond its outputs while it runs on arguments of these sizes (0
    for kernels that take none, and where it cannot be measured)."""
    op = SCRATCH_OPS.get(func)
    if op is None:
        return 0
    # Inside the user's own profiler session, a second would end theirs: resident memory then.
    resident = op.resident or profiling()
    if resident and not measurable():
        return 0
    arg, dim = op.batch[0]
    batch = int(args[arg].shape[dim])
    grown = [(i, d) for i, d in op.batch if isinstance(args[i], torch.Tensor)]
    per_sample = sum(_nbytes(args[i]) for i, _ in grown) // max(batch, 1)
    most = max(4, BUDGET // max(per_sample, 1))
    threads = torch.get_num_threads()
    if batch <= most:
        return _measured(func, _signature(args, grown, batch), threads, resident)
    measured = _measured(func, _signature(args, grown, most), threads, resident)
    return round(measured * batch / most)


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


# A tensor argument in a signature: its sizes, dtype and whether it is channels-last.
_Tensor = tuple[str, tuple[int, ...], torch.dtype, bool]


def _signature(args: Sequence[Any], grown: list[tuple[int, int]], batch: int) -> tuple[Any, ...]:
    dims = dict(grown)
    items: list[Any] = []
    for i, a in enumerate(args):
        if isinstance(a, torch.Tensor):
            shape = list(a.shape)
            if i in dims:
                shape[dims[i]] = batch
            last = (
                a.dim() == 4
                and not a.is_contiguous()
                and a.is_contiguous(memory_format=torch.channels_last)
            )
            items.append(("tensor", tuple(shape), a.dtype, last))
        elif isinstance(a, list):
            items.append(("list", tuple(a)))
        else:
            items.append(a)
    return tuple(items)


def _argument(item: Any) -> Any:
    if isinstance(item, tuple) and item and item[0] == "tensor":
        _, shape, dtype, last = item
        fmt = torch.channels_last if last else torch.contiguous_format
        return torch.zeros(shape, dtype=dtype).to(memory_format=fmt)
    if isinstance(item, tuple) and item and item[0] == "list":
        return list(item[1])
    return item


def real_workspace(func: Any, args: Sequence[Any], index: int) -> int:
    """The bytes of the workspace (output `index`) `func` really makes at these arguments'
    sizes, where its fake kernel says it is empty (`workspace_outputs`): asked of the real
    kernel, once per size, on zeros (it costs that workspace for a moment)."""
    return _workspace_bytes(func, _signature(args, [], 0), index)


@functools.cache
def _workspace_bytes(func: Any, signature: tuple[Any, ...], index: int) -> int:
    with no_dispatch_modes():
        workspace = func(*(_argument(item) for item in signature))[index]
    if not isinstance(workspace, torch.Tensor):  # none in inference
        return 0
    return int(workspace.untyped_storage().nbytes())


@functools.cache
def _measured(func: Any, signature: tuple[Any, ...], threads: int, resident: bool) -> int:
    """The scratch of one call at these sizes, with `threads` threads (the key: oneDNN keeps
    buffers per thread): what it asked torch's allocator for, or made `resident`."""
    del threads
    with no_dispatch_modes(), torch.no_grad():
        try:
            args = [_argument(item) for item in signature]
            if resident:
                took = _resident(func, args)
            else:
                out, held = allocated_peak(lambda: func(*args))
                took = held - _output_bytes(out)
                del out
        except (RuntimeError, MemoryError) as exc:
            # The fake run took this op at these sizes; a refinement of it is not worth
            # failing the estimate over.
            _log.debug("no scratch measured for %s: %s", func, exc)
            return 0
    return max(0, took)


def _resident(func: Any, args: list[Any]) -> int:
    """The resident memory `func` takes in a call, above what it had, beyond its outputs."""
    func(*args)  # oneDNN's setup for these sizes, on their first call, is not scratch
    _trim()
    before = _rss()
    _reset_peak_rss()
    out = func(*args)
    return _peak_rss() - before - _output_bytes(out)


def _output_bytes(out: Any) -> int:
    seen: set[int] = set()
    total = 0
    for t in tree_flatten(out)[0]:
        if isinstance(t, torch.Tensor) and id(t.untyped_storage()) not in seen:
            seen.add(id(t.untyped_storage()))
            total += t.untyped_storage().nbytes()
    return total


def _trim() -> None:
    """Every free page of glibc's heaps given back to the system: a buffer the kernel then
    takes from a free block makes those pages resident again, and is seen."""
    ctypes.CDLL(None).malloc_trim(0)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _peak_rss() -> int:
    with open("/proc/self/status") as f:
        found = re.search(r"VmHWM:\s+(\d+) kB", f.read())
    assert found is not None
    return int(found.group(1)) * 1024


def _reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
