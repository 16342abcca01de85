"""Fine-tuning a frozen backbone: a ResNet-18 trunk with `requires_grad=False`, a small
trainable head on top, and one trainable adapter inside the trunk (so gradients still flow
back through the frozen blocks below it, which must keep their activations for that).

    fxviz memory examples/finetune.py:FineTune --train adamw --batch 32
"""

import torch
from torch import nn
from torchvision.models import resnet18


class FineTune(nn.Module):
    def __init__(self, classes: int = 10, adapter: bool = True) -> None:
        super().__init__()
        trunk = resnet18(weights=None)
        self.backbone = nn.Sequential(*list(trunk.children())[:-2])
        self.backbone.requires_grad_(False)
        # A 1×1 adapter after layer3, trained: backward reaches it through frozen layer4.
        self.adapter = nn.Conv2d(256, 256, 1) if adapter else nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stem_to_layer3 = self.backbone[:-1]
        layer4 = self.backbone[-1]
        x = self.adapter(stem_to_layer3(x))
        return self.head(self.pool(layer4(x)))


def example_inputs() -> tuple[torch.Tensor]:
    return (torch.randn(1, 3, 224, 224),)
