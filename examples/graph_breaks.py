"""Small convolutional nets that `torch.compile` cannot capture in one graph, one reason each:
what `fxviz compile` draws (each captured graph in its colour, each break in red at its line).

    fxviz compile examples/graph_breaks.py:ItemScale
    fxviz compile examples/graph_breaks.py:Printing
    fxviz compile examples/graph_breaks.py:DataDependentIf
    fxviz compile examples/graph_breaks.py:NumpyMedian
    fxviz compile examples/graph_breaks.py:RepeatedBlocks  # a break inside a block run 6 times
    fxviz compile examples/graph_breaks.py:CallCounter   # no break, but a recompile per call
    fxviz compile examples/graph_breaks.py:Clean         # one graph
"""

import numpy as np
import torch
from torch import nn


def example_inputs() -> tuple[torch.Tensor]:
    return (torch.randn(1, 3, 32, 32),)


class Stem(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Head(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(x), 1))


class Clean(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = Stem()
        self.head = Head()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stem(x))


class ItemScale(Clean):
    """Normalises by a Python number read from a tensor."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        scale = x.abs().mean().item()
        x = x / (scale + 1e-6)
        return self.head(x)


class Printing(Clean):
    """Prints a shape while it runs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        print("features:", tuple(x.shape))
        return self.head(x)


class DataDependentIf(Clean):
    """Runs a second block only when the features are large enough: a branch on a value."""

    def __init__(self) -> None:
        super().__init__()
        self.refine = Stem()
        self.refine.conv = nn.Conv2d(16, 16, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        if x.abs().sum() > 0:
            x = self.refine(x)
        return self.head(x)


class NumpyMedian(Clean):
    """Centres the features on a median that NumPy computes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        median = np.nanmedian(x.detach().cpu().numpy())
        x = x - torch.as_tensor(median, dtype=x.dtype)
        return self.head(x)


class CallCounter(Clean):
    """Counts its calls in a Python int: one graph, compiled again on every call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.head(self.stem(x))


class Rescale(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(16, 16, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return x / (x.abs().max().item() + 1)


class RepeatedBlocks(Clean):
    """Six blocks, each with an `.item()`: TorchDynamo breaks in the first two, then runs the
    graphs it compiled for the second (its frame, cached) in the other four."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[Rescale() for _ in range(6)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))
