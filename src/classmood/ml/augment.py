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


# --- Webcam robustness ----------------------------------------------------------------------------------------
# FER2013's crops are clean web photos; a classroom webcam gives dim, noisy, blurred, JPEG-compressed and
# low-resolution faces, often half-covered by a hand or crossed by glasses. Each corruption below is applied to
# a random part of the batch, on pixels in [0, 1] before standardisation.


@dataclass(frozen=True)
class WebcamConfig:
    photometric_prob: float = 0.5
    contrast_range: tuple[float, float] = (0.6, 1.4)
    brightness: float = 0.2
    gamma_log: float = 0.5  # gamma drawn as exp(U(-g, g))
    blur_prob: float = 0.15
    blur_sigma: tuple[float, float] = (0.4, 1.3)
    noise_prob: float = 0.2
    noise_std: tuple[float, float] = (0.01, 0.06)
    jpeg_prob: float = 0.2
    jpeg_quality: tuple[int, int] = (15, 75)
    rescale_prob: float = 0.2
    rescale_range: tuple[float, float] = (0.35, 0.8)
    hand_prob: float = 0.08
    glasses_prob: float = 0.08


def _pick(n: int, prob: float, gen: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=gen) < prob


def random_photometric(x: torch.Tensor, cfg: WebcamConfig, gen: torch.Generator) -> torch.Tensor:
    """Contrast, brightness and gamma per image (those chosen), clamped to [0, 1]."""
    n = x.shape[0]
    chosen = _pick(n, cfg.photometric_prob, gen).view(n, 1, 1, 1)
    contrast = _uniform(n, *cfg.contrast_range, gen).view(n, 1, 1, 1)
    shift = _uniform(n, -cfg.brightness, cfg.brightness, gen).view(n, 1, 1, 1)
    gamma = torch.exp(_uniform(n, -cfg.gamma_log, cfg.gamma_log, gen)).view(n, 1, 1, 1)
    changed = (((x - 0.5) * contrast + 0.5 + shift).clamp(0.0, 1.0) + 1e-6).pow(gamma).clamp(0.0, 1.0)
    return torch.where(chosen, changed, x)


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(2.5 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    return k / k.sum()


def random_blur(x: torch.Tensor, cfg: WebcamConfig, gen: torch.Generator) -> torch.Tensor:
    """Gaussian blur (one sigma per batch, a separable convolution) on the chosen images."""
    chosen = _pick(x.shape[0], cfg.blur_prob, gen)
    if not bool(chosen.any()):
        return x
    sigma = float(_uniform(1, *cfg.blur_sigma, gen))
    k = _gaussian_kernel(sigma)
    pad = len(k) // 2
    sub = F.pad(x[chosen], (pad, pad, pad, pad), mode="replicate")
    sub = F.conv2d(F.conv2d(sub, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))
    out = x.clone()
    out[chosen] = sub
    return out


def random_noise(x: torch.Tensor, cfg: WebcamConfig, gen: torch.Generator) -> torch.Tensor:
    """Additive Gaussian sensor noise of a random strength on the chosen images."""
    n = x.shape[0]
    std = (_uniform(n, *cfg.noise_std, gen) * _pick(n, cfg.noise_prob, gen)).view(n, 1, 1, 1)
    return (x + std * torch.randn(x.shape, generator=gen)).clamp(0.0, 1.0)


def random_rescale(x: torch.Tensor, cfg: WebcamConfig, gen: torch.Generator) -> torch.Tensor:
    """Shrink then enlarge back (a face far from a low-resolution camera), one factor per batch."""
    chosen = _pick(x.shape[0], cfg.rescale_prob, gen)
    if not bool(chosen.any()):
        return x
    h, w = x.shape[-2:]
    factor = float(_uniform(1, *cfg.rescale_range, gen))
    small = F.interpolate(x[chosen], size=(max(8, round(h * factor)), max(8, round(w * factor))),
                          mode="area")
    out = x.clone()
    out[chosen] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return out


def random_jpeg(x: torch.Tensor, cfg: WebcamConfig, gen: torch.Generator) -> torch.Tensor:
    """Re-compress the chosen images as JPEG at a random quality (OpenCV's codec, as in the pipeline)."""
    import cv2  # imported here: only training needs the codec on tensors
    import numpy as np

    chosen = torch.nonzero(_pick(x.shape[0], cfg.jpeg_prob, gen)).flatten()
    if len(chosen) == 0:
        return x
    quality = torch.randint(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1, (len(chosen),), generator=gen)
    out = x.clone()
    for i, q in zip(chosen.tolist(), quality.tolist(), strict=True):
        pixels = (x[i, 0].numpy() * 255.0).round().astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, int(q)])
        decoded = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE) if ok else None
        if decoded is not None:
            out[i, 0] = torch.from_numpy(decoded.astype(np.float32) / 255.0)
    return out


def random_occlusion(x: torch.Tensor, cfg: WebcamConfig, gen: torch.Generator) -> torch.Tensor:
    """A hand (a flat blob over the lower face or a cheek) or a glasses band across the eyes."""
    n, _, h, w = x.shape
    rows = torch.linspace(0, 1, h).view(1, h, 1)
    cols = torch.linspace(0, 1, w).view(1, 1, w)
    # Hand: an ellipse centred low or to the side, of a skin-like flat grey with a soft edge of texture.
    cy, cx = _uniform(n, 0.55, 1.0, gen).view(n, 1, 1), _uniform(n, 0.0, 1.0, gen).view(n, 1, 1)
    ry, rx = _uniform(n, 0.15, 0.35, gen).view(n, 1, 1), _uniform(n, 0.15, 0.35, gen).view(n, 1, 1)
    hand = (((rows - cy) / ry) ** 2 + ((cols - cx) / rx) ** 2) < 1.0
    hand &= _pick(n, cfg.hand_prob, gen).view(n, 1, 1)
    tone = _uniform(n, 0.35, 0.85, gen).view(n, 1, 1, 1)
    x = torch.where(hand.unsqueeze(1), tone + 0.03 * torch.randn(x.shape, generator=gen), x)
    # Glasses: a dark band where FER2013 crops have their eyes (about 28-45 % of the height).
    top = _uniform(n, 0.26, 0.34, gen).view(n, 1, 1)
    band = (rows >= top) & (rows < top + _uniform(n, 0.08, 0.16, gen).view(n, 1, 1))
    band = band.expand(n, h, w) & _pick(n, cfg.glasses_prob, gen).view(n, 1, 1)
    shade = _uniform(n, 0.0, 0.3, gen).view(n, 1, 1, 1)
    return torch.where(band.unsqueeze(1), shade, x).clamp(0.0, 1.0)


def webcam_corrupt(x: torch.Tensor, cfg: WebcamConfig, gen: torch.Generator) -> torch.Tensor:
    """All webcam corruptions in the order a camera would produce them: optics, sensor, codec."""
    x = random_occlusion(x, cfg, gen)
    x = random_photometric(x, cfg, gen)
    x = random_rescale(x, cfg, gen)
    x = random_blur(x, cfg, gen)
    x = random_noise(x, cfg, gen)
    return random_jpeg(x, cfg, gen)
