"""Training ClassMood's emotion CNN: the configuration, the loop and its log.

One backbone with two heads trained together on FER2013 Training, with the loss of :mod:`classmood.ml.loss`
(optionally distilled from a teacher); SGD with Nesterov momentum, linear warm-up then cosine decay, batched
affine augmentation (rotation, zoom, shift, mirror), webcam corruptions (:class:`~classmood.ml.augment.
WebcamConfig`) and random erasing, bf16 autocast on CPUs that support it, and an exponential moving average (EMA)
of the weights. Checkpoints are chosen on PublicTest by :mod:`classmood.ml.select` and kept by
:mod:`classmood.ml.checkpoint`; PrivateTest is never read here.

The defaults of :class:`TrainConfig` are the plain recipe, without a teacher; a release's every setting is in
its recipe file (``recipes/*.toml``, read by :mod:`classmood.ml.recipe`).
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
from torch import nn

from classmood.evaluation.calibration import tta_probs
from classmood.evaluation.datasets import FaceDataset, crowd_targets, load_fer2013
from classmood.ml.augment import AugmentConfig, WebcamConfig, random_affine, random_erase, webcam_corrupt
from classmood.ml.checkpoint import keep_best, load_checkpoint, resume, save_last
from classmood.ml.loss import Targets, loss
from classmood.ml.model import VARIANTS, EmotionNet, build_model, predict_logits
from classmood.ml.select import MIN_FER_ACC, public_scores, selection_key
from classmood.vision.preprocess import standardize


@dataclass
class TrainConfig:
    """Every setting of a training run; each is stored in its checkpoints."""

    version: str = ""  # the release this run is a candidate for (its recipe's); `classmood export` names it so
    model: str = "cm-small"
    epochs: int = 72
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    warmup_epochs: float = 2.0
    ema_decay: float = 0.999
    bf16: bool = True
    seed: int = 0
    limit: int | None = None  # train and validate on the first N rows of each split only (smoke runs)
    crowd_weight: float = 1.0
    min_fer_acc: float = MIN_FER_ACC
    # Distillation: mix each head's target with the teacher's probabilities (a .npy (Training rows, heads, 7) from
    # `classmood teacher`), weight kd_alpha (the crowd head kd_crowd_alpha, when set); ``init`` warm-starts from
    # a checkpoint (a second stage).
    init: str = ""
    teacher: str = ""
    kd_alpha: float = 0.0
    kd_crowd_alpha: float | None = None
    augment: AugmentConfig = field(default_factory=lambda: AugmentConfig(erase_prob=0.35))
    webcam: WebcamConfig | None = field(default_factory=WebcamConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Logger = Callable[[str], None]


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    """Linear warm-up to ``base`` over ``warmup`` steps, then cosine decay to 0."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def validation_scores(model: nn.Module, data: FaceDataset) -> dict[str, float]:
    """PublicTest figures of both heads with mirror TTA: fer2013 accuracy, crowd agreement with FER+."""
    assert isinstance(model, EmotionNet)
    probs = tta_probs([predict_logits(model, data.pixels), predict_logits(model, data.pixels, mirror=True)])
    return public_scores(probs, data, model.config.heads)


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
    if cfg.webcam is not None:
        x = webcam_corrupt(x, cfg.webcam, gen)
    x = torch.from_numpy(standardize(x.numpy()))
    x = random_erase(x, cfg.augment, gen)
    return x.contiguous(memory_format=torch.channels_last)


@dataclass
class Run:
    """A run in progress: the network, its EMA, the optimiser, the random stream and the record so far."""

    cfg: TrainConfig
    model: EmotionNet
    ema: EMA
    opt: torch.optim.Optimizer
    gen: torch.Generator
    state: dict[str, Any] = field(default_factory=lambda: {"epoch": 0, "best": None, "history": []})

    @classmethod
    def start(cls, cfg: TrainConfig) -> Run:
        torch.manual_seed(cfg.seed)
        model = build_model(cfg.model).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        if cfg.init:  # a second stage starts from the first one's chosen checkpoint
            model.load_state_dict(load_checkpoint(cfg.init).state_dict())
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True,
                              weight_decay=cfg.weight_decay)
        return cls(cfg, model, EMA(model, cfg.ema_decay), opt, torch.Generator().manual_seed(cfg.seed))

    def saved(self) -> dict[str, Any]:
        """What ``last.pt`` holds besides the configuration."""
        return {"model": self.model.state_dict(), "ema": self.ema.model.state_dict(), "ema_updates": self.ema.updates,
                "optimizer": self.opt.state_dict(), "generator": self.gen.get_state(), "state": self.state,
                "dropout": torch.get_rng_state(), "model_config": self.model.config.to_dict()}

    def restore(self, saved: dict[str, Any]) -> None:
        self.model.load_state_dict(saved["model"])
        self.ema.model.load_state_dict(saved["ema"])
        self.ema.updates = saved["ema_updates"]
        self.opt.load_state_dict(saved["optimizer"])
        self.gen.set_state(saved["generator"])
        if "dropout" in saved:  # torch's global stream draws the dropout masks: a resumed run draws the same
            torch.set_rng_state(saved["dropout"])
        self.state = saved["state"]


@dataclass(frozen=True)
class Schedule:
    """Steps per epoch, in all, and of warm-up."""

    per_epoch: int
    total: int
    warmup: int


def train(data_path: str | Path, out_dir: str | Path, cfg: TrainConfig, *, log: Logger = print) -> dict[str, Any]:
    """Train, keep ``last.pt`` and ``best.pt`` (by the selection rule) in ``out_dir``; a ``last.pt`` there of the
    same configuration is resumed after its epoch, one of another is refused (:mod:`classmood.ml.checkpoint`).

    Returns the training summary, which is also written to ``out_dir/summary.json``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pixels, targets, val_set = _training_data(data_path, cfg)
    run = Run.start(cfg)
    if (saved := resume(out, cfg.to_dict())) is not None:
        run.restore(saved)
        log(f"resumed from {out / 'last.pt'} after epoch {run.state['epoch']}")
    per_epoch = math.ceil(len(targets) / cfg.batch_size)
    schedule = Schedule(per_epoch, per_epoch * cfg.epochs, int(cfg.warmup_epochs * per_epoch))
    log(_describe(cfg, targets, len(val_set), per_epoch))
    for epoch in range(run.state["epoch"], cfg.epochs):
        t0 = time.perf_counter()
        sums = _train_epoch(run, pixels, targets, schedule, epoch * per_epoch)
        record: dict[str, Any] = {"epoch": epoch + 1, **{k: v / per_epoch for k, v in sums.items()},
                                  "seconds": time.perf_counter() - t0}
        if _should_validate(epoch, cfg.epochs):
            record["val"] = validation_scores(run.model, val_set)
            record["val_ema"] = validation_scores(run.ema.model, val_set)
            _keep_best(run, record, out)
        run.state["history"].append(record)
        run.state["epoch"] = epoch + 1
        save_last(out, run.saved(), cfg.to_dict())
        log(json.dumps(_rounded(record)))
    summary = {"best": run.state["best"], "epochs": cfg.epochs, "history": run.state["history"],
               "train_config": cfg.to_dict(), "model_config": VARIANTS[cfg.model].to_dict()}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _training_data(data_path: str | Path, cfg: TrainConfig) -> tuple[torch.Tensor, Targets, FaceDataset]:
    """The Training faces with their targets (and the teacher's, when there is one), and PublicTest."""
    data = load_fer2013(data_path)
    train_set, val_set = data.split("Training"), data.split("PublicTest")
    teacher = _load_teacher(cfg.teacher, len(train_set))
    if cfg.limit:
        train_set, val_set = train_set.subset(slice(0, cfg.limit)), val_set.subset(slice(0, cfg.limit))
    votes, has_votes = crowd_targets(train_set.require_votes())
    targets = Targets(torch.from_numpy(train_set.labels), torch.from_numpy(votes), torch.from_numpy(has_votes),
                      None if teacher is None else torch.from_numpy(teacher[: len(train_set)]))
    return torch.from_numpy(train_set.pixels), targets, val_set


def _describe(cfg: TrainConfig, targets: Targets, validating: int, per_epoch: int) -> str:
    return (f"training {cfg.model} on {len(targets)} faces ({int(targets.has_votes.sum())} with crowd targets), "
            f"validating on {validating} PublicTest faces, {cfg.epochs} epochs of {per_epoch} steps"
            + (f", from {cfg.init}" if cfg.init else "")
            + (f", distilled from {cfg.teacher} (weight {cfg.kd_alpha}, crowd head {cfg.kd_crowd_alpha})"
               if targets.teacher is not None else ""))


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def _load_teacher(path: str, rows: int) -> np.ndarray | None:
    """The teacher's probabilities for every Training row, checked against the split's size."""
    if not path:
        return None
    teacher: np.ndarray = np.load(path).astype(np.float32)
    if teacher.ndim != 3 or len(teacher) != rows:
        raise ValueError(f"{path}: teacher probabilities {teacher.shape}, expected ({rows}, heads, 7)")
    return teacher


def _train_epoch(run: Run, pixels: torch.Tensor, targets: Targets, schedule: Schedule,
                 step: int) -> dict[str, float]:
    cfg, model = run.cfg, run.model
    model.train()
    order = torch.randperm(len(targets), generator=run.gen)
    sums = {"loss": 0.0, "loss_fer": 0.0, "loss_crowd": 0.0}
    for start in range(0, len(targets), cfg.batch_size):
        idx = order[start : start + cfg.batch_size]
        x = make_batch(pixels[idx], cfg, run.gen)
        for group in run.opt.param_groups:
            group["lr"] = lr_at(step, schedule.total, schedule.warmup, cfg.lr)
        run.opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            logits = model(x)
        parts = loss(logits.float(), targets.rows(idx), cfg, heads=model.config.heads)
        parts.total.backward()
        run.opt.step()
        run.ema.update(model)
        for key, value in zip(sums, parts, strict=True):
            sums[key] += float(value.detach())
        step += 1
    return sums


def _should_validate(epoch: int, epochs: int) -> bool:
    return epoch + 1 >= epochs // 2 or (epoch + 1) % 5 == 0 or epoch + 1 == epochs


def _keep_best(run: Run, record: dict[str, Any], out: Path) -> None:
    """``best.pt`` by the rule, between the best so far and this epoch's better of the EMA and raw weights."""
    cfg = run.cfg
    options = [("ema", run.ema.model, record["val_ema"]), ("raw", run.model, record["val"])]
    kind, chosen, scores = max(options, key=lambda o: selection_key(o[2], cfg.min_fer_acc))
    entry = {"epoch": record["epoch"], "weights": kind, "scores": scores}
    run.state["best"] = keep_best(out, run.state["best"], entry, cfg.min_fer_acc, lambda: {
        "model_config": VARIANTS[cfg.model].to_dict(), "model": chosen.state_dict(), "epoch": record["epoch"],
        "public": scores, "weights": kind, "train_config": cfg.to_dict()})
