"""The training loss of the two-head network, in one place for every training loop.

The ``fer2013`` head learns FER2013's original labels (cross-entropy with label smoothing); the ``crowd`` head
learns the FER+ vote distributions (soft cross-entropy, over the rows that have votes). The crowd part is
weighed by ``crowd_weight``. With a teacher (distillation), each head's target is mixed with the teacher's
probabilities for that head: weight ``kd_alpha`` for the fer2013 head, ``kd_crowd_alpha`` (by default the same)
for the crowd head, whose own target, the vote distribution, is already soft and may want less of the teacher.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

import torch
import torch.nn.functional as F

from classmood.ml.model import HEADS


@dataclass(frozen=True)
class Targets:
    """What a batch is trained towards: FER2013 labels (N,), vote distributions (N, 7) with the rows that have
    votes (N,), and optionally a teacher's probabilities (N, heads, 7)."""

    labels: torch.Tensor
    votes: torch.Tensor
    has_votes: torch.Tensor
    teacher: torch.Tensor | None = None

    def rows(self, idx: torch.Tensor) -> Targets:
        """The targets of rows ``idx`` (a batch)."""
        teacher = None if self.teacher is None else self.teacher[idx]
        return Targets(self.labels[idx], self.votes[idx], self.has_votes[idx], teacher)

    def __len__(self) -> int:
        return len(self.labels)


class LossWeights(Protocol):
    """What the loss reads of a recipe (TrainConfig and FinetuneConfig both have these fields)."""

    label_smoothing: float
    crowd_weight: float
    kd_alpha: float
    kd_crowd_alpha: float | None


class LossParts(NamedTuple):
    """The total loss and its two label losses (fer2013, crowd), which the training log keeps."""

    total: torch.Tensor
    fer: torch.Tensor
    crowd: torch.Tensor


def loss(logits: torch.Tensor, targets: Targets, weights: LossWeights, *,
         heads: tuple[str, ...] = HEADS) -> LossParts:
    """The loss of logits (N, heads, 7) against ``targets`` (see the module's docstring)."""
    f, c = heads.index("fer2013"), heads.index("crowd")
    fer = F.cross_entropy(logits[:, f], targets.labels, label_smoothing=weights.label_smoothing)
    crowd = soft_cross_entropy(logits[:, c], targets.votes, targets.has_votes)
    a, b = teacher_weights(weights)
    if targets.teacher is None or not (a or b):
        return LossParts(fer + weights.crowd_weight * crowd, fer, crowd)
    fer_kd = soft_cross_entropy(logits[:, f], targets.teacher[:, f], torch.ones_like(targets.has_votes))
    crowd_kd = soft_cross_entropy(logits[:, c], targets.teacher[:, c], targets.has_votes)
    total = (1 - a) * fer + a * fer_kd + weights.crowd_weight * ((1 - b) * crowd + b * crowd_kd)
    return LossParts(total, fer, crowd)


def teacher_weights(weights: LossWeights) -> tuple[float, float]:
    """The teacher's weight in the fer2013 head's target and in the crowd head's."""
    crowd = weights.kd_alpha if weights.kd_crowd_alpha is None else weights.kd_crowd_alpha
    return weights.kd_alpha, crowd


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, has_target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of logits (N, 7) against target distributions, over the rows that have a target."""
    per_row = -(targets * F.log_softmax(logits, dim=1)).sum(dim=1)
    weight = has_target.float()
    return (per_row * weight).sum() / weight.sum().clamp(min=1.0)
