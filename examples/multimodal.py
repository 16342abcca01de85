"""A model whose input is a dict and whose output is a dict: an image and a caption, each
through its own encoder, fused into one prediction.

fxviz examples/multimodal.py:MultiModal

`forward` loops over the dict, which torch.fx cannot follow; torch.export can, and draws one
input, `batch`, with both of its tensors.
"""

import torch
from torch import nn


class MultiModal(nn.Module):
    def __init__(self, width: int = 16, vocab: int = 100, classes: int = 5) -> None:
        super().__init__()
        self.encoders = nn.ModuleDict(
            {
                "image": nn.Sequential(
                    nn.Conv2d(3, width, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1)
                ),
                "tokens": nn.Embedding(vocab, width),
            }
        )
        self.head = nn.Linear(2 * width, classes)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        features = []
        for name, value in batch.items():
            encoded = self.encoders[name](value)
            features.append(encoded.flatten(1) if name == "image" else encoded.mean(1))
        fused = torch.cat(features, dim=1)
        return {"logits": self.head(fused), "image_features": features[0]}


def example_inputs() -> tuple[dict[str, torch.Tensor]]:
    return ({"image": torch.randn(1, 3, 32, 32), "tokens": torch.randint(0, 100, (1, 12))},)
