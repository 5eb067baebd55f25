"""The emotion CNN: a small residual network for 48x48 grey faces.

The architecture is described by :class:`ModelConfig`, which is saved inside every
checkpoint so a checkpoint alone rebuilds its network (as in nanoGPT).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from classmood.labels import NUM_CLASSES
from classmood.vision.contract import INPUT_SIZE
from classmood.vision.preprocess import faces_to_input

# The two outputs of the shipped network (see the model card): ``crowd`` learns the FER+ vote
# distributions (what people see), ``fer2013`` the original single labels (what peers publish).
HEADS: tuple[str, ...] = ("crowd", "fer2013")


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the network; every field is stored in checkpoints."""

    name: str = "cm-small"
    stem: int = 32
    widths: tuple[int, ...] = (48, 96, 192)
    blocks: tuple[int, ...] = (1, 1, 1)
    stem_stride: int = 1
    dropout: float = 0.2
    num_classes: int = NUM_CLASSES
    heads: tuple[str, ...] = HEADS

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        fields = {k: v for k, v in data.items() if k != "input_size"}  # the input side is the contract's
        for key in ("widths", "blocks", "heads"):
            fields[key] = tuple(fields[key])
        return cls(**fields)


# The architectures: cm-small the network of releases up to cm-small-5, cm-lite the same at two thirds of the width
# (40 M multiply-adds against 92 M: one face in half the time, issue 24), cm-tiny the tests' (a few seconds per
# epoch on a few hundred faces; the shape of cm-lite, named apart so the tests' checkpoints never pass for it).
VARIANTS: dict[str, ModelConfig] = {
    "cm-tiny": ModelConfig(name="cm-tiny", stem=16, widths=(32, 64, 128), blocks=(1, 1, 1)),
    "cm-lite": ModelConfig(name="cm-lite", stem=16, widths=(32, 64, 128), blocks=(1, 1, 1)),
    "cm-small": ModelConfig(name="cm-small", stem=32, widths=(48, 96, 192), blocks=(1, 1, 1)),
}


def conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with an identity shortcut (ResNet basic block)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = conv_bn(channels, channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        nn.init.zeros_(self.bn2.weight)  # start as identity: faster, stabler early training
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.act(x + self.bn2(self.conv2(self.conv1(x))))
        return out


class EmotionNet(nn.Module):
    """Stem at full resolution, then stages that halve the size and widen.

    Each stage: max-pool /2, a 3x3 conv to the new width, residual blocks. Global average pooling
    feeds one linear layer per head; ``forward`` stacks their logits as (N, heads, classes).
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or ModelConfig()
        cfg = self.config
        layers: list[nn.Module] = [conv_bn(1, cfg.stem, stride=cfg.stem_stride)]
        cin = cfg.stem
        for width, depth in zip(cfg.widths, cfg.blocks, strict=True):
            layers.append(nn.MaxPool2d(2))
            layers.append(conv_bn(cin, width))
            layers.extend(ResidualBlock(width) for _ in range(depth))
            cin = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(cfg.dropout))
        self.heads = nn.ModuleList(nn.Linear(cin, cfg.num_classes) for _ in cfg.heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map normalised faces (N, 1, H, W) to logits (N, heads, num_classes)."""
        pooled = self.pool(self.features(x))
        return torch.stack([head(pooled) for head in self.heads], dim=1)

    def head_index(self, name: str) -> int:
        return self.config.heads.index(name)


def build_model(name_or_config: str | ModelConfig = "cm-small") -> EmotionNet:
    if isinstance(name_or_config, ModelConfig):
        return EmotionNet(name_or_config)
    if name_or_config not in VARIANTS:
        raise ValueError(f"unknown model {name_or_config!r}; choose from {', '.join(VARIANTS)}")
    return EmotionNet(VARIANTS[name_or_config])


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: EmotionNet) -> int:
    """Multiply-accumulates of one forward pass on one face (convolutions and linear layers)."""
    macs = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            macs += output.numel() * k
        elif isinstance(module, nn.Linear):
            macs += module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 1, INPUT_SIZE, INPUT_SIZE))
    model.train(was_training)
    for h in handles:
        h.remove()
    return macs


@torch.no_grad()
def predict_logits(model: nn.Module, pixels: np.ndarray, batch_size: int = 512, *,
                   mirror: bool = False) -> np.ndarray:
    """Logits (N, heads, 7) for uint8 faces (N, 48, 48), preprocessed exactly as at inference time.

    ``mirror`` runs the mirror images instead (for test-time augmentation).
    """
    model.eval()
    out = []
    for start in range(0, len(pixels), batch_size):
        x = torch.from_numpy(faces_to_input(pixels[start : start + batch_size]))
        if mirror:
            x = torch.flip(x, dims=(-1,))
        out.append(model(x.contiguous(memory_format=torch.channels_last)).float().numpy())
    return np.concatenate(out) if out else np.zeros((0, 2, 7), np.float32)
