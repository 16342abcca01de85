"""`fxviz diff` on planted edits: each reported as exactly the edit that was made."""

from __future__ import annotations

import torch
from torch import nn

import fxviz
from fxviz.diff import GraphDiff, diff, format_report


class Block(nn.Module):
    def __init__(self, d: int = 16) -> None:
        super().__init__()
        self.attn = nn.Linear(d, d)
        self.mlp = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.relu(self.attn(x)))


class Base(nn.Module):
    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.stem = nn.Linear(4, 16)
        self.norm = nn.LayerNorm(16)
        self.act = nn.GELU()
        self.block = Block()
        self.head = nn.Linear(16, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(self.features(x)))


class Renamed(Base):
    """`head` is `classifier` now, with `classes` outputs."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        del self.head
        self.classifier = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.block(self.features(x)))


class Moved(Base):
    """`block` moved into a new container, `encoder.block`."""

    def __init__(self) -> None:
        super().__init__()
        del self.block
        self.encoder = nn.ModuleDict({"block": Block()})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder["block"](self.features(x)))


class Branched(Base):
    """A side branch beside `block`, joined by an addition."""

    def __init__(self) -> None:
        super().__init__()
        self.side = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.head(self.block(x) + self.side(x))


class Swapped(Base):
    """`act` now runs before `norm`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.act(self.stem(x)))
        return self.head(self.block(x))


class TwoBlocks(Base):
    def __init__(self, block: type[nn.Module] = Block) -> None:
        super().__init__()
        del self.block
        self.blocks = nn.Sequential(block(), block())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.features(x)))


class RenamedBlock(nn.Module):
    def __init__(self, d: int = 16) -> None:
        super().__init__()
        self.self_attn = nn.Linear(d, d)
        self.mlp = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.relu(self.self_attn(x)))


def compare(a: nn.Module, b: nn.Module) -> tuple[GraphDiff, list[str]]:
    x = torch.zeros(2, 4)
    result = diff(fxviz.trace(a, x), fxviz.trace(b, x))
    lines = format_report(result).splitlines()
    return result, [line.strip() for line in lines if line.startswith("  ")]


def test_a_rename_is_a_rename() -> None:
    result, lines = compare(Base(), Renamed())
    assert [(c.kind, c.path_a, c.path_b) for c in result.changes] == [
        ("renamed", "head", "classifier")
    ]
    assert lines == ["~ head -> classifier (Linear)"]


def test_a_rename_with_a_new_size_is_one_change_with_both() -> None:
    result, lines = compare(Base(), Renamed(classes=5))
    causes = [c for c in result.changes if not c.is_consequence]
    assert [(c.kind, c.path_a, c.path_b) for c in causes] == [("renamed", "head", "classifier")]
    assert causes[0].details == (
        "head -> classifier",
        "in_features=16, out_features=3 -> in_features=16, out_features=5",
        "params 51 -> 85",
    )
    assert lines == ["~ head -> classifier (Linear), sizes 3 -> 5 [+34 params; 1 shape follows]"]


def test_a_block_moved_into_a_new_container() -> None:
    result, lines = compare(Base(), Moved())
    assert lines == ["+ encoder (ModuleDict)", "~ moved block -> encoder.block (Block)"]
    assert result.params_a == result.params_b


def test_an_inserted_branch_is_one_module_added_beside_the_block() -> None:
    _, lines = compare(Base(), Branched())
    assert lines == ["+ side (Linear), a new branch beside block (both read act) [+272 params]"]


def test_two_modules_swapped_are_one_swap() -> None:
    result, lines = compare(Base(), Swapped())
    assert lines == ["> act and norm swapped: now stem -> act -> norm"]
    assert [c.facets for c in result.changes] == [("swapped",)]


def test_the_same_rename_in_every_block_is_one_line() -> None:
    _, lines = compare(TwoBlocks(), TwoBlocks(RenamedBlock))
    assert lines == [
        "* class Block -> RenamedBlock: blocks.{0,1} (2 modules)",
        "~ 2 renamed attn -> self_attn (Linear): blocks.{0,1}.self_attn",
    ]


def test_a_module_wrapped_in_a_container_is_moved_not_renamed() -> None:
    class Other(Base):
        def __init__(self) -> None:
            super().__init__()
            del self.head
            self.classifier = nn.Sequential(nn.Linear(16, 3))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.classifier(self.block(self.features(x)))

    # A Linear and a Sequential are never one renamed module; the Linear inside is `head`.
    _, lines = compare(Base(), Other())
    assert lines == ["+ classifier (Sequential)", "~ moved head -> classifier.0 (Linear)"]
