"""cm-small-3's recipe, on the path for machines without bf16: an ensemble of fine-tuned networks, then one
student distilled from it. (The shipped model is trained from scratch, ``classmood train --recipe``; this path
made cm-small-3, a member of its teacher.)

On top of :mod:`classmood.ml.finetune` (warm start from ``cm-small-1``, cached trunk, fine-tuning of the
last stage and both heads), in resumable stages under one folder:

1. **Members**: fine-tunes that differ in the weight of the crowd loss against the fer2013 loss (and in
   their seed). They are the loss-weighting ablation, and together the teacher.
2. **Teacher**: the members' probabilities averaged, per head, over every cached Training view (a face and
   its mirror image share the average of both, the test-time augmentation); on PublicTest its scores are the
   ensemble's row of the ablation.
3. **Student**: one more fine-tune, with the members' best crowd weight, whose targets mix the labels and
   the teacher's probabilities (:func:`classmood.ml.loss.loss`).

The checkpoint is chosen among every member's and the student's by the selection rule
(:mod:`classmood.ml.select`) on PublicTest. PrivateTest is never read here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from classmood.evaluation.calibration import softmax
from classmood.ml.checkpoint import load_checkpoint
from classmood.ml.finetune import FinetuneConfig, TopNet, TrunkCache, cached_logits, cached_trunk, finetune, val_probs
from classmood.ml.model import EmotionNet, ModelConfig
from classmood.ml.select import head_scores
from classmood.ml.train import Logger


@dataclass(frozen=True)
class Member:
    """One fine-tune of the ensemble: its crowd-loss weight and seed."""

    crowd_weight: float
    seed: int


@dataclass
class RecipeConfig:
    """cm-small-3's recipe (defaults)."""

    members: tuple[Member, ...] = (Member(1.0, 0), Member(0.5, 1))
    student_seed: int = 3
    kd_alpha: float = 0.5
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)

    def member_config(self, member: Member) -> FinetuneConfig:
        return dataclasses.replace(self.finetune, crowd_weight=member.crowd_weight, seed=member.seed)


def run_recipe(base_onnx: str | Path, data_path: str | Path, out_dir: str | Path, rc: RecipeConfig,
               config: ModelConfig | None = None, log: Logger = print) -> dict[str, Any]:
    """Every stage, each skipped when its output is already in ``out_dir``; ``best.pt`` is the chosen one."""
    out = Path(out_dir)
    cache = cached_trunk(base_onnx, data_path, rc.finetune, out / "trunk_cache.npz", config, log)
    members = [_run_member(base_onnx, data_path, out / f"member-{i}", rc.member_config(m), config, log, cache)
               for i, m in enumerate(rc.members)]
    teacher, ensemble_scores, key = _teacher(out, members, cache, rc.finetune.webcam_views + 2, log)
    weight = max(members, key=lambda s: tuple(s["best"]["key"]))["finetune_config"]["crowd_weight"]
    student_cfg = dataclasses.replace(rc.finetune, crowd_weight=weight, seed=rc.student_seed, kd_alpha=rc.kd_alpha,
                                      teacher=key)
    student = _run_member(base_onnx, data_path, out / "student", student_cfg, config, log, cache, teacher)
    runs = {**{f"member-{i}": s for i, s in enumerate(members)}, "student": student}
    chosen = max(runs, key=lambda name: tuple(runs[name]["best"]["key"]))
    shutil.copyfile(out / chosen / "best.pt", out / "best.pt")
    summary = {"chosen": chosen, "best": runs[chosen]["best"], "ensemble": ensemble_scores,
               "ablation": ablation_rows(runs, ensemble_scores), "recipe": dataclasses.asdict(rc)}
    (out / "recipe.json").write_text(json.dumps(summary, indent=2))
    return summary


def _run_member(base_onnx: str | Path, data_path: str | Path, out: Path, cfg: FinetuneConfig,
                config: ModelConfig | None, log: Logger, cache: TrunkCache,
                teacher: npt.NDArray[np.float16] | None = None) -> dict[str, Any]:
    done = out / "summary.json"
    if done.exists() and (summary := json.loads(done.read_text()))["finetune_config"] == _as_json(cfg.to_dict()):
        log(f"{out.name}: done before, {summary['best']}")
        return dict(summary)
    log(f"{out.name}: crowd weight {cfg.crowd_weight}, seed {cfg.seed}, distillation {cfg.kd_alpha}")
    return finetune(base_onnx, data_path, out, cfg, config, lambda line: log(f"{out.name}: {line}"),
                    cache=cache, teacher=teacher)


def _as_json(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), to compare it with a saved summary."""
    return json.loads(json.dumps(value))


def teacher_probs(tops: list[TopNet], cache: TrunkCache, views: int) -> npt.NDArray[np.float16]:
    """The members' average probabilities (views * N, heads, 7) over the cached Training views; the first
    two views (each face and its mirror image, see :func:`~classmood.ml.finetune.cache_trunk`) share the
    average of both."""
    probs: npt.NDArray[np.float64] = np.mean([softmax(cached_logits(top, cache.train)) for top in tops], axis=0)
    rows = len(cache.labels) // views
    both = (probs[:rows] + probs[rows : 2 * rows]) / 2
    probs[:rows], probs[rows : 2 * rows] = both, both
    return probs.astype(np.float16)


def _top(checkpoint: Path) -> TopNet:
    net = load_checkpoint(checkpoint)
    assert isinstance(net, EmotionNet)
    return TopNet(net).eval()


def teacher_key(members: list[dict[str, Any]]) -> str:
    """Names the teacher by its members (their recipes and chosen epochs): a student distilled from another
    ensemble is another run, never one found on disk."""
    described = [{"config": m["finetune_config"], "best": m["best"]} for m in members]
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:12]


def _teacher(out: Path, members: list[dict[str, Any]], cache: TrunkCache, views: int,
             log: Logger) -> tuple[npt.NDArray[np.float16], dict[str, float], str]:
    """The ensemble's Training-view probabilities (saved as ``teacher-KEY.npy``), its PublicTest scores, its key."""
    tops = [_top(out / f"member-{i}" / "best.pt") for i in range(len(members))]
    heads = tops[0].head_names
    probs = np.mean([val_probs(top, cache) for top in tops], axis=0)
    scores = head_scores(probs, heads, cache.val_labels, cache.val_majority)
    key = teacher_key(members)
    path = out / f"teacher-{key}.npy"
    if path.exists() and len(saved := np.load(path)) == len(cache.labels):
        return saved, scores, key
    teacher = teacher_probs(tops, cache, views)
    np.save(path, teacher)
    log(f"teacher {key}: ensemble of {len(tops)} members, PublicTest {scores}")
    return teacher, scores, key


def ablation_rows(runs: dict[str, dict[str, Any]], ensemble: dict[str, float]) -> list[dict[str, Any]]:
    """One row per run (its chosen epoch) and one for the ensemble, for the model card."""
    rows = [{"run": name, "crowd_weight": s["finetune_config"]["crowd_weight"],
             "kd_alpha": s["finetune_config"]["kd_alpha"], "epoch": s["best"]["epoch"], **s["best"]["scores"]}
            for name, s in runs.items()]
    return [*rows, {"run": "ensemble (teacher)", **ensemble}]
