"""Small models for what tracers get wrong most easily: containers in and out, in-place ops,
a module under two names, a weight tied between two modules."""

from __future__ import annotations

import torch
from torch import nn


class Nested(nn.Module):
    """A list of tensors and a nested tuple as inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(
        self, xs: list[torch.Tensor], pair: tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]
    ) -> torch.Tensor:
        total = self.fc(xs[0]) + self.fc(xs[1])
        p, (q, r) = pair
        return total * p + q - r


class InPlace(nn.Module):
    """`x.relu_()` changes what `fc2` reads."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.fc2 = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc(x)
        x.relu_()
        return self.fc2(x)


class TwoPaths(nn.Module):
    """One module registered as `proj` and as `head`, called under each name."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 4)
        self.head = self.proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.proj(x))


class Tied(nn.Module):
    """A language model's output head sharing the input embedding's weight."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.body = nn.Linear(4, 4)
        self.lm_head = nn.Linear(4, 10, bias=False)
        self.lm_head.weight = self.embed.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.body(self.embed(ids)))


INPUTS: dict[str, tuple[object, ...]] = {
    "Nested": (
        [torch.zeros(1, 4), torch.zeros(1, 4)],
        (torch.zeros(1, 4), (torch.zeros(1, 4), torch.zeros(1, 4))),
    ),
    "InPlace": (torch.zeros(1, 4),),
    "TwoPaths": (torch.zeros(1, 4),),
    "Tied": (torch.zeros(1, 5, dtype=torch.long),),
}
