"""One layer reused in a loop: the same `step` block runs `steps` times, so its weights are
counted once while each call keeps its own activations for backward (memory grows with the
loop, parameters do not).

    fxviz memory examples/shared_loop.py:SharedLoop --train sgd --batch 64
"""

import torch
from torch import nn


class Step(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.tanh(self.fc(self.norm(x)))


class SharedLoop(nn.Module):
    def __init__(self, width: int = 512, steps: int = 8) -> None:
        super().__init__()
        self.embed = nn.Linear(64, width)
        self.step = Step(width)
        self.steps = steps
        self.head = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        for _ in range(self.steps):
            h = self.step(h)
        return self.head(h)


def example_inputs() -> tuple[torch.Tensor]:
    return (torch.randn(1, 256, 64),)
