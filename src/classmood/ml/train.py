"""The training recipe for ClassMood's emotion CNN.

Recipe (the defaults of :class:`TrainConfig` are the shipped model's):
SGD with Nesterov momentum, linear warm-up then cosine decay, label smoothing,
batched affine augmentation (rotation, zoom, shift, mirror) and random erasing,
bf16 autocast on CPUs that support it, and an exponential moving average (EMA)
of the weights. Checkpoints are chosen on PublicTest only; PrivateTest is never
looked at here.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from classmood.datasets import FaceDataset, load_fer2013
from classmood.metrics import compute_metrics
from classmood.ml.augment import AugmentConfig, random_affine, random_erase
from classmood.ml.model import VARIANTS, EmotionNet, ModelConfig, build_model
from classmood.vision.preprocess import faces_to_input, standardize


@dataclass
class TrainConfig:
    model: str = "cm-small"
    epochs: int = 64
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    warmup_epochs: float = 2.0
    ema_decay: float = 0.999
    bf16: bool = True
    seed: int = 0
    limit: int | None = None  # train on the first N Training rows only (smoke tests)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Logger = Callable[[str], None]


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    """Linear warm-up to ``base`` over ``warmup`` steps, then cosine decay to 0."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


@torch.no_grad()
def predict_logits(model: nn.Module, pixels: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Logits for uint8 faces (N, 48, 48), preprocessed exactly as at inference time."""
    model.eval()
    out = []
    for start in range(0, len(pixels), batch_size):
        x = torch.from_numpy(faces_to_input(pixels[start : start + batch_size]))
        out.append(model(x.contiguous(memory_format=torch.channels_last)).float().numpy())
    return np.concatenate(out) if out else np.zeros((0, 7), np.float32)


def accuracy_on(model: nn.Module, data: FaceDataset) -> float:
    pred = predict_logits(model, data.pixels).argmax(axis=1)
    return compute_metrics(data.labels, pred).accuracy


class EMA:
    """Exponential moving average of a model's parameters; buffers are copied."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.model = copy.deepcopy(model).eval()
        self.decay = decay
        self.updates = 0
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for e, p in zip(self.model.parameters(), model.parameters(), strict=True):
            e.lerp_(p.detach(), 1.0 - d)
        for mine, theirs in zip(self.model.buffers(), model.buffers(), strict=True):
            mine.copy_(theirs)


def make_batch(pixels: torch.Tensor, cfg: TrainConfig, gen: torch.Generator) -> torch.Tensor:
    """uint8 faces (B, 48, 48) -> augmented, standardised float input (B, 1, 48, 48)."""
    x = pixels.unsqueeze(1).float().div_(255.0)
    x = random_affine(x, cfg.augment, gen)
    x = torch.from_numpy(standardize(x.numpy()))
    x = random_erase(x, cfg.augment, gen)
    return x.contiguous(memory_format=torch.channels_last)


def train(data_path: str | Path, out_dir: str | Path, cfg: TrainConfig, *, resume: bool = False,
          log: Logger = print) -> dict[str, Any]:
    """Train, keep ``last.pt`` (resumable) and ``best.pt`` (best PublicTest accuracy) in ``out_dir``.

    Returns the training summary, which is also written to ``out_dir/summary.json``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    data = load_fer2013(data_path)
    train_set, val_set = data.split("Training"), data.split("PublicTest")
    if cfg.limit:
        n = cfg.limit
        train_set = FaceDataset(train_set.pixels[:n], train_set.labels[:n], train_set.usage[:n])
        val_set = FaceDataset(val_set.pixels[:n], val_set.labels[:n], val_set.usage[:n])
    model = build_model(cfg.model).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True,
                          weight_decay=cfg.weight_decay)
    ema = EMA(model, cfg.ema_decay)
    state: dict[str, Any] = {"epoch": 0, "best_acc": -1.0, "history": []}
    gen = torch.Generator().manual_seed(cfg.seed)
    if resume and (out / "last.pt").is_file():
        ckpt = torch.load(out / "last.pt", weights_only=False)
        model.load_state_dict(ckpt["model"])
        ema.model.load_state_dict(ckpt["ema"])
        ema.updates = ckpt["ema_updates"]
        opt.load_state_dict(ckpt["optimizer"])
        gen.set_state(ckpt["generator"])
        state = ckpt["state"]
        log(f"resumed from {out / 'last.pt'} after epoch {state['epoch']}")
    pixels = torch.from_numpy(train_set.pixels)
    labels = torch.from_numpy(train_set.labels)
    steps_per_epoch = math.ceil(len(labels) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    warmup = int(cfg.warmup_epochs * steps_per_epoch)
    log(f"training {cfg.model} on {len(labels)} faces, validating on {len(val_set)} PublicTest faces, "
        f"{cfg.epochs} epochs of {steps_per_epoch} steps")
    for epoch in range(state["epoch"], cfg.epochs):
        t0 = time.perf_counter()
        loss_sum = _train_epoch(model, ema, opt, pixels, labels, cfg, gen, epoch * steps_per_epoch, total, warmup)
        record = {"epoch": epoch + 1, "loss": loss_sum / steps_per_epoch, "seconds": time.perf_counter() - t0}
        if _should_validate(epoch, cfg.epochs):
            record["val_acc"] = accuracy_on(model, val_set)
            record["val_acc_ema"] = accuracy_on(ema.model, val_set)
            _keep_best(model, ema, record, state, cfg, out)
        state["history"].append(record)
        state["epoch"] = epoch + 1
        _save_last(out, model, ema, opt, gen, state, cfg)
        log(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()}))
    summary = {"best_public_acc": state["best_acc"], "epochs": cfg.epochs, "history": state["history"],
               "train_config": cfg.to_dict(), "model_config": VARIANTS[cfg.model].to_dict()}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _train_epoch(model: EmotionNet, ema: EMA, opt: torch.optim.Optimizer, pixels: torch.Tensor,
                 labels: torch.Tensor, cfg: TrainConfig, gen: torch.Generator, step: int, total: int,
                 warmup: int) -> float:
    model.train()
    order = torch.randperm(len(labels), generator=gen)
    loss_sum = 0.0
    for start in range(0, len(labels), cfg.batch_size):
        idx = order[start : start + cfg.batch_size]
        x, y = make_batch(pixels[idx], cfg, gen), labels[idx]
        for group in opt.param_groups:
            group["lr"] = lr_at(step, total, warmup, cfg.lr)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ema.update(model)
        loss_sum += float(loss.detach())
        step += 1
    return loss_sum


def _should_validate(epoch: int, epochs: int) -> bool:
    return epoch + 1 >= epochs // 2 or (epoch + 1) % 5 == 0 or epoch + 1 == epochs


def _keep_best(model: nn.Module, ema: EMA, record: dict[str, Any], state: dict[str, Any], cfg: TrainConfig,
               out: Path) -> None:
    use_ema = record["val_acc_ema"] >= record["val_acc"]
    acc = record["val_acc_ema"] if use_ema else record["val_acc"]
    if acc <= state["best_acc"]:
        return
    state["best_acc"] = acc
    weights = (ema.model if use_ema else model).state_dict()
    torch.save({"model_config": VARIANTS[cfg.model].to_dict(), "model": weights, "epoch": record["epoch"],
                "public_acc": acc, "weights": "ema" if use_ema else "raw", "train_config": cfg.to_dict()},
               out / "best.pt")


def _save_last(out: Path, model: nn.Module, ema: EMA, opt: torch.optim.Optimizer, gen: torch.Generator,
               state: dict[str, Any], cfg: TrainConfig) -> None:
    tmp = out / "last.pt.tmp"
    torch.save({"model": model.state_dict(), "ema": ema.model.state_dict(), "ema_updates": ema.updates,
                "optimizer": opt.state_dict(), "generator": gen.get_state(), "state": state,
                "train_config": cfg.to_dict(), "model_config": VARIANTS[cfg.model].to_dict()}, tmp)
    tmp.replace(out / "last.pt")


def load_checkpoint(path: str | Path) -> EmotionNet:
    """Rebuild a network from ``best.pt`` or ``last.pt`` (EMA weights for ``last.pt``)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    model = EmotionNet(ModelConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["model"] if "ema" not in ckpt else ckpt["ema"])
    return model.eval()
