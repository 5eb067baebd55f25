"""The path for machines without bf16: growing a second head on a trained network without retraining it.

The full recipe (:mod:`classmood.ml.train`, ``classmood train --recipe``) trains both heads from scratch: about
72 epochs, an hour on a CPU with bf16 matrix units or a few minutes on a GPU, but a day on a 2-core AVX2 CPU
without bf16. This module, with :mod:`classmood.ml.distill`, is the path for such machines: the last stage and
both heads are fine-tuned over trunk activations computed once on onnxruntime. It made ``cm-small-2`` and
``cm-small-3`` (a member of the shipped model's teacher, kept as ``models/cm-small-3.onnx``):

1. **Warm start** (:func:`net_from_onnx`): the trained single-head ``cm-small-1`` is rebuilt from its ONNX
   file (batch norm was folded into the convolutions at export, so each BN becomes a shift), and its head
   starts every head.
2. **Cache the trunk** (:func:`cache_trunk`): everything up to the last stage runs once, on onnxruntime, over
   the Training faces in several views (the face, its mirror image, and webcam-corrupted copies from
   :func:`classmood.ml.augment.webcam_corrupt`), and over PublicTest (face and mirror, for the selection
   rule with test-time augmentation).
3. **Fine-tune the last stage and both heads** on those cached activations with the training loss
   (:func:`classmood.ml.loss.loss`), choosing the checkpoint on PublicTest by the selection rule
   (:mod:`classmood.ml.select`), with the checkpoints and resume rule of :mod:`classmood.ml.checkpoint`.

PrivateTest is never read here.
"""

from __future__ import annotations

import copy
import json
import math
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper
from torch import nn

from classmood.evaluation.calibration import tta_probs
from classmood.evaluation.datasets import FaceDataset, crowd_majority, crowd_targets, load_fer2013
from classmood.ml.augment import AugmentConfig, WebcamConfig, random_affine, webcam_corrupt
from classmood.ml.checkpoint import keep_best, resume, save_last
from classmood.ml.loss import Targets, loss, soft_cross_entropy
from classmood.ml.model import EmotionNet, ModelConfig
from classmood.ml.select import head_scores
from classmood.ml.train import Logger, lr_at
from classmood.vision.contract import INPUT_SIZE
from classmood.vision.preprocess import faces_to_input, standardize


@dataclass
class FinetuneConfig:
    """One fine-tune on top of ``cm-small-1`` (defaults: the recipe of a member of cm-small-3's ensemble)."""

    epochs: int = 5
    batch_size: int = 256
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    crowd_weight: float = 1.0
    min_fer_acc: float = 0.690  # cm-small-3's floor, the rule's when it was trained (now select.MIN_FER_ACC)
    webcam_views: int = 2  # corrupted copies of each Training face, besides the face and its mirror
    seed: int = 0
    limit: int | None = None
    kd_alpha: float = 0.0  # distillation: weight of the teacher's probabilities in each head's target
    kd_crowd_alpha: float | None = None  # the crowd head's, when it differs
    teacher: str = ""  # which teacher (distill.teacher_key), part of the recipe so that resuming never mixes two
    augment: AugmentConfig = field(default_factory=lambda: AugmentConfig(max_rotation_deg=8.0, erase_prob=0.0))
    webcam: WebcamConfig = field(default_factory=lambda: WebcamConfig(
        photometric_prob=0.8, blur_prob=0.35, noise_prob=0.4, jpeg_prob=0.4, rescale_prob=0.35,
        hand_prob=0.15, glasses_prob=0.15))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- 1. Warm start from ONNX ------------------------------------------------------------------------------------

def _conv_bn_pairs(net: EmotionNet) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    """Every convolution with its batch norm, in the order the exporter writes them."""
    modules = [m for m in net.features.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    convs = [m for m in modules if isinstance(m, nn.Conv2d)]
    norms = [m for m in modules if isinstance(m, nn.BatchNorm2d)]
    return list(zip(convs, norms, strict=True))


def net_from_onnx(path: str | Path, config: ModelConfig) -> EmotionNet:
    """Rebuild an exported single-head network in PyTorch; every head starts as a copy of its head.

    The exporter folded every batch norm into its convolution, so each BN is set to add the folded
    bias and otherwise pass its input through (eval mode).
    """
    model = onnx.load(str(path))
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for node in model.graph.node:  # the exporter shares equal constants (e.g. zero biases) through Identity nodes
        if node.op_type == "Identity" and node.input[0] in weights:
            weights[node.output[0]] = weights[node.input[0]]
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    net = EmotionNet(config)
    pairs = _conv_bn_pairs(net)
    if len(pairs) != len(convs):
        raise ValueError(f"{path}: {len(convs)} convolutions, the {config.name} architecture has {len(pairs)}")
    with torch.no_grad():
        for (conv, bn), node in zip(pairs, convs, strict=True):
            conv.weight.copy_(torch.from_numpy(weights[node.input[1]].copy()))
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.from_numpy(weights[node.input[2]].copy()))
            assert bn.running_mean is not None and bn.running_var is not None
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
        w, b = torch.from_numpy(weights[gemm.input[1]].copy()), torch.from_numpy(weights[gemm.input[2]].copy())
        for head in net.heads:
            assert isinstance(head, nn.Linear)
            head.weight.copy_(w)
            head.bias.copy_(b)
    return net.eval()


# --- 2. Cached trunk activations --------------------------------------------------------------------------------

def split_at_last_stage(net: EmotionNet) -> tuple[nn.Sequential, nn.Sequential]:
    """``trunk`` (up to and including the last max-pool) and ``top`` (the last stage's conv and blocks)."""
    layers = list(net.features)
    last_pool = max(i for i, m in enumerate(layers) if isinstance(m, nn.MaxPool2d))
    return nn.Sequential(*layers[: last_pool + 1]), nn.Sequential(*layers[last_pool + 1 :])


def _trunk_session(trunk: nn.Module, tmp: Path) -> ort.InferenceSession:
    path = tmp / "trunk.onnx"
    torch.onnx.export(trunk.eval(), (torch.zeros(1, 1, INPUT_SIZE, INPUT_SIZE),), str(path), input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, opset_version=17,
                      dynamo=False)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _run_trunk(session: ort.InferenceSession, x: npt.NDArray[np.float32], batch: int = 512) -> npt.NDArray[np.float16]:
    parts = [session.run(None, {"x": x[i : i + batch]})[0].astype(np.float16) for i in range(0, len(x), batch)]
    return np.concatenate(parts)


def _webcam_view(pixels: npt.NDArray[np.uint8], cfg: FinetuneConfig, gen: torch.Generator) -> npt.NDArray[np.float32]:
    out = []
    for start in range(0, len(pixels), 512):
        x = torch.from_numpy(pixels[start : start + 512]).unsqueeze(1).float().div_(255.0)
        x = webcam_corrupt(random_affine(x, cfg.augment, gen), cfg.webcam, gen)
        out.append(standardize(x.numpy()))
    return np.concatenate(out).astype(np.float32)


@dataclass(frozen=True)
class TrunkCache:
    """Trunk activations of the Training views and of PublicTest (face, mirror), with their targets."""

    train: npt.NDArray[np.float16]  # (views * N, C, H, W)
    labels: npt.NDArray[np.int64]  # (views * N,)
    targets: npt.NDArray[np.float32]
    has_target: npt.NDArray[np.bool_]
    val: npt.NDArray[np.float16]  # (2 * M, C, H, W): the faces, then their mirror images
    val_labels: npt.NDArray[np.int64]
    val_majority: npt.NDArray[np.int64]


def cache_trunk(trunk: nn.Module, train: FaceDataset, val: FaceDataset, cfg: FinetuneConfig,
                log: Logger = print) -> TrunkCache:
    gen = torch.Generator().manual_seed(cfg.seed)
    targets, has_target = crowd_targets(train.require_votes())
    with tempfile.TemporaryDirectory() as tmp:
        session = _trunk_session(trunk, Path(tmp))
        clean = faces_to_input(train.pixels)
        views = [clean, np.ascontiguousarray(clean[..., ::-1])]
        views += [_webcam_view(train.pixels, cfg, gen) for _ in range(cfg.webcam_views)]
        t0 = time.perf_counter()
        cached = np.concatenate([_run_trunk(session, v) for v in views])
        v = faces_to_input(val.pixels)
        val_cached = np.concatenate([_run_trunk(session, v), _run_trunk(session, np.ascontiguousarray(v[..., ::-1]))])
        log(f"cached trunk activations of {len(views)} Training views and PublicTest in "
            f"{time.perf_counter() - t0:.0f} s ({cached.nbytes / 2**20:.0f} MiB)")
    n = len(views)
    return TrunkCache(cached, np.tile(train.labels, n), np.tile(targets, (n, 1)), np.tile(has_target, n),
                      val_cached, val.labels, crowd_majority(val.require_votes()))


def cache_key(base_onnx: str | Path, cfg: FinetuneConfig) -> str:
    """What the cached activations depend on: the base network and the views' recipe."""
    views = {k: v for k, v in cfg.to_dict().items() if k in ("seed", "limit", "webcam_views", "augment", "webcam")}
    return json.dumps({"base": Path(base_onnx).name, "base_bytes": Path(base_onnx).stat().st_size, **views},
                      sort_keys=True)


def save_cache(cache: TrunkCache, path: Path, key: str) -> None:
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, key=np.array(key), **{f.name: getattr(cache, f.name) for f in fields(TrunkCache)})
    tmp.replace(path)


def load_cache(path: Path, key: str) -> TrunkCache | None:
    """The cache saved at ``path`` if it was made with the same ``key``, else ``None``."""
    if not path.exists():
        return None
    with np.load(path) as saved:
        if str(saved["key"]) != key:
            return None
        return TrunkCache(**{f.name: saved[f.name] for f in fields(TrunkCache)})


def cached_trunk(base_onnx: str | Path, data_path: str | Path, cfg: FinetuneConfig, path: Path | None = None,
                 config: ModelConfig | None = None, log: Logger = print) -> TrunkCache:
    """The trunk activations of ``base_onnx`` over the Training views and PublicTest, read from ``path``
    when it holds them for the same recipe, else computed (and saved there)."""
    key = cache_key(base_onnx, cfg)
    if path is not None and (cache := load_cache(path, key)) is not None:
        log(f"trunk activations read from {path}")
        return cache
    data = load_fer2013(data_path)
    train_set, val_set = data.split("Training"), data.split("PublicTest")
    if cfg.limit:
        train_set, val_set = train_set.subset(slice(0, cfg.limit)), val_set.subset(slice(0, cfg.limit))
    trunk, _ = split_at_last_stage(net_from_onnx(base_onnx, config or ModelConfig()))
    cache = cache_trunk(trunk, train_set, val_set, cfg, log)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_cache(cache, path, key)
    return cache


# --- 3. Fine-tuning ---------------------------------------------------------------------------------------------

class TopNet(nn.Module):
    """The trainable part: the last stage, pooling and the heads of an :class:`EmotionNet`."""

    def __init__(self, net: EmotionNet) -> None:
        super().__init__()
        _, self.top = split_at_last_stage(net)
        self.pool, self.heads, self.head_names = net.pool, net.heads, net.config.heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(self.top(x))
        return torch.stack([head(pooled) for head in self.heads], dim=1)


@torch.no_grad()
def cached_logits(top: TopNet, x: npt.NDArray[np.float16], batch: int = 1024) -> npt.NDArray[np.float32]:
    """Logits (N, heads, 7) of the top of the network over cached trunk activations."""
    top.eval()
    return np.concatenate([top(torch.from_numpy(x[i : i + batch].astype(np.float32))).numpy()
                           for i in range(0, len(x), batch)])


def val_probs(top: TopNet, cache: TrunkCache) -> npt.NDArray[np.float64]:
    """PublicTest probabilities (M, heads, 7), each face averaged with its mirror image (the TTA)."""
    logits, m = cached_logits(top, cache.val), len(cache.val_labels)
    return tta_probs([logits[:m], logits[m:]])


def _set_bn_eval(module: nn.Module) -> None:
    # The warm-started batch norms hold folded shifts, not statistics: keep them frozen (eval mode).
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()


def finetune(base_onnx: str | Path, data_path: str | Path, out_dir: str | Path, cfg: FinetuneConfig,
             config: ModelConfig | None = None, log: Logger = print, *, cache: TrunkCache | None = None,
             teacher: npt.NDArray[np.float16] | None = None) -> dict[str, Any]:
    """Warm-start from ``base_onnx``, fine-tune the last stage and both heads; ``best.pt`` by the rule.

    ``teacher`` (probabilities (views * N, heads, 7) over the cached Training views) turns on distillation.
    Each epoch ends with ``last.pt``; a run that finds one in ``out_dir`` resumes after its epoch.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    net = net_from_onnx(base_onnx, config or ModelConfig())
    heads = net.config.heads
    cache = cache if cache is not None else cached_trunk(base_onnx, data_path, cfg, config=config, log=log)
    top = TopNet(net)
    opt = torch.optim.SGD(top.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True,
                          weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    run = _resume(out, net, opt, gen, cfg)
    if run is None:
        # Only the crowd head is new: it learns first on the frozen features (a linear probe), which is
        # also the first candidate of the selection rule.
        _fit_probe(top, cache, heads, log)
        run = {"history": [{"epoch": 0, "stage": "probe", "val": _scores(top, cache, heads)}], "best": None}
        run["best"] = _maybe_keep(net, run["history"][-1], None, cfg, out)
        log(json.dumps(run["history"][-1]))
    steps = math.ceil(len(cache.labels) / cfg.batch_size)
    for epoch in range(len(run["history"]) - 1, cfg.epochs):
        t0 = time.perf_counter()
        mean_loss = _epoch(top, opt, cache, teacher, cfg, heads, gen, epoch * steps, steps * cfg.epochs)
        record = {"epoch": epoch + 1, "stage": "finetune", "loss": mean_loss, "seconds": time.perf_counter() - t0,
                  "val": _scores(top, cache, heads)}
        run["history"].append(record)
        run["best"] = _maybe_keep(net, record, run["best"], cfg, out)
        save_last(out, {"model": net.state_dict(), "optimizer": opt.state_dict(), "generator": gen.get_state(),
                        "run": run}, cfg.to_dict())
        log(json.dumps(record))
    summary = {**run, "finetune_config": cfg.to_dict(), "base": str(base_onnx), "model_config": net.config.to_dict()}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _scores(top: TopNet, cache: TrunkCache, heads: tuple[str, ...]) -> dict[str, float]:
    return head_scores(val_probs(top, cache), heads, cache.val_labels, cache.val_majority)


def _fit_probe(top: TopNet, cache: TrunkCache, heads: tuple[str, ...], log: Logger) -> None:
    """Train the crowd head alone on the pooled features of the (frozen) warm-started network."""
    with torch.no_grad():
        top.eval()
        pooled = torch.cat([top.pool(top.top(torch.from_numpy(cache.train[i : i + 2048].astype(np.float32))))
                            for i in range(0, len(cache.train), 2048)])
    head = top.heads[heads.index("crowd")]
    targets, has_target = torch.from_numpy(cache.targets), torch.from_numpy(cache.has_target)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2, weight_decay=0.0)
    for step in range(300):
        idx = torch.randint(0, len(pooled), (4096,))
        loss = soft_cross_entropy(head(pooled[idx]), targets[idx], has_target[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 99:
            log(f"probe step {step + 1}: crowd loss {float(loss.detach()):.4f}")


def _epoch(top: TopNet, opt: torch.optim.Optimizer, cache: TrunkCache, teacher: npt.NDArray[np.float16] | None,
           cfg: FinetuneConfig, heads: tuple[str, ...], gen: torch.Generator, step: int, total: int) -> float:
    top.train()
    _set_bn_eval(top)
    order = torch.randperm(len(cache.labels), generator=gen)
    losses = []
    for start in range(0, len(order), cfg.batch_size):
        idx = order[start : start + cfg.batch_size].numpy()
        for group in opt.param_groups:
            group["lr"] = lr_at(step, total, 0, cfg.lr)
        logits = top(torch.from_numpy(cache.train[idx].astype(np.float32)))
        soft = torch.from_numpy(teacher[idx].astype(np.float32)) if teacher is not None else None
        targets = Targets(torch.from_numpy(cache.labels[idx]), torch.from_numpy(cache.targets[idx]),
                          torch.from_numpy(cache.has_target[idx]), soft)
        batch_loss = loss(logits, targets, cfg, heads=heads).total
        opt.zero_grad(set_to_none=True)
        batch_loss.backward()
        opt.step()
        losses.append(float(batch_loss.detach()))
        step += 1
    return float(np.mean(losses))


def _resume(out: Path, net: EmotionNet, opt: torch.optim.Optimizer, gen: torch.Generator,
            cfg: FinetuneConfig) -> dict[str, Any] | None:
    """The run so far from ``last.pt`` (restoring the weights, optimiser and shuffling), by the rule of
    :func:`classmood.ml.checkpoint.resume`: another recipe's ``last.pt`` is refused."""
    saved = resume(out, cfg.to_dict())
    if saved is None:
        return None
    net.load_state_dict(saved["model"])
    opt.load_state_dict(saved["optimizer"])
    gen.set_state(saved["generator"])
    run: dict[str, Any] = saved["run"]
    return run


def _maybe_keep(net: EmotionNet, record: dict[str, Any], best: dict[str, Any] | None, cfg: FinetuneConfig,
                out: Path) -> dict[str, Any]:
    entry = {"epoch": record["epoch"], "stage": record["stage"], "scores": record["val"]}
    return keep_best(out, best, entry, cfg.min_fer_acc, lambda: {
        "model_config": net.config.to_dict(), "model": copy.deepcopy(net.state_dict()), "epoch": record["epoch"],
        "public": record["val"], "weights": record["stage"], "finetune_config": cfg.to_dict()})
