"""The smallest useful network: two Linear layers, ReLU between, Softmax over 3 classes.

fxviz examples/tiny.py:TinyNet
"""

import torch
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, in_features: int = 4, hidden: int = 8, classes: int = 3) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden, classes)
        self.softmax = nn.Softmax(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.softmax(self.fc2(self.relu(self.fc1(x))))


def example_inputs() -> tuple[torch.Tensor]:
    return (torch.randn(1, 4),)
