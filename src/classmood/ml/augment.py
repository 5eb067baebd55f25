"""Batched data augmentation on CPU tensors: one affine warp plus random erasing.

Doing augmentation on whole batches keeps a 2-core machine busy with the network,
not with per-image Python loops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    max_rotation_deg: float = 12.0
    max_shift: float = 0.1  # fraction of the side
    scale_range: tuple[float, float] = (0.9, 1.15)
    flip_prob: float = 0.5
    erase_prob: float = 0.5
    erase_area: tuple[float, float] = (0.02, 0.2)


def _uniform(n: int, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen)


def random_affine(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Rotate, zoom, shift and mirror each image of (N, 1, H, W) independently."""
    n = x.shape[0]
    angle = _uniform(n, -1, 1, gen) * math.radians(cfg.max_rotation_deg)
    zoom = _uniform(n, *cfg.scale_range, gen)
    flip = torch.where(torch.rand(n, generator=gen) < cfg.flip_prob, -1.0, 1.0)
    tx = _uniform(n, -2 * cfg.max_shift, 2 * cfg.max_shift, gen)  # grid coordinates span 2
    ty = _uniform(n, -2 * cfg.max_shift, 2 * cfg.max_shift, gen)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, tx], dim=1), torch.stack([sin * flip, cos, ty], dim=1)], dim=1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_erase(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Set one random rectangle per chosen image to 0 (the mean of a standardised image)."""
    n, _, h, w = x.shape
    area = _uniform(n, *cfg.erase_area, gen) * h * w
    aspect = torch.exp(_uniform(n, math.log(0.3), math.log(3.3), gen))
    eh = torch.sqrt(area * aspect).clamp(1, h)
    ew = torch.sqrt(area / aspect).clamp(1, w)
    top = torch.rand(n, generator=gen) * (h - eh)
    left = torch.rand(n, generator=gen) * (w - ew)
    rows = torch.arange(h).view(1, h, 1)
    cols = torch.arange(w).view(1, 1, w)
    inside = (
        (rows >= top.view(n, 1, 1))
        & (rows < (top + eh).view(n, 1, 1))
        & (cols >= left.view(n, 1, 1))
        & (cols < (left + ew).view(n, 1, 1))
    )
    chosen = (torch.rand(n, generator=gen) < cfg.erase_prob).view(n, 1, 1)
    return x.masked_fill((inside & chosen).unsqueeze(1), 0.0)
