"""Models that misbehave the ways a gallery's entries do in real life: each forward dies,
hangs, allocates too much, raises or leaves. A gallery drawing them must lose only them.

Each takes an input of shape 1×4 (`--input 1,4`, or the manifest's `inputs = ["1,4"]`).
"""

from __future__ import annotations

import ctypes
import os
import signal
import time

import torch
from torch import nn


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def misbehave(self) -> None:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.misbehave()
        return self.fc(x)


class Segfaults(_Net):
    """A broken C extension: reads address 0."""

    def misbehave(self) -> None:
        ctypes.string_at(0)


class Aborts(_Net):
    """A failed C++ assertion: SIGABRT."""

    def misbehave(self) -> None:
        os.kill(os.getpid(), signal.SIGABRT)


class Hangs(_Net):
    """A forward that never returns (a lock, a network call, an endless loop)."""

    def misbehave(self) -> None:
        while True:
            time.sleep(1)


class Sleeps(_Net):
    """A forward that takes FXVIZ_TEST_SLEEP seconds (0 when unset), then draws."""

    def misbehave(self) -> None:
        time.sleep(float(os.environ.get("FXVIZ_TEST_SLEEP", "0")))


class Allocates(_Net):
    """A forward that needs 16 GiB of real memory (a cache built on the host)."""

    def misbehave(self) -> None:
        self.cache = bytearray(16 << 30)


class Raises(_Net):
    """A forward with a bug."""

    def misbehave(self) -> None:
        raise RuntimeError("the forward has a bug")


class Exits(_Net):
    """A forward that ends its process without a word (os._exit, as some libraries do)."""

    def misbehave(self) -> None:
        os._exit(3)


class Quits(_Net):
    """A forward that calls sys.exit, as a script turned into a model does."""

    def misbehave(self) -> None:
        raise SystemExit(4)
