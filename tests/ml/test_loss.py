"""The training loss: the same figures as before it was gathered into one function, and what distillation does."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is in the `train` extra")

from classmood.ml.finetune import FinetuneConfig  # noqa: E402
from classmood.ml.loss import Targets, loss, soft_cross_entropy  # noqa: E402
from classmood.ml.train import TrainConfig  # noqa: E402

# The old code's figures (train.head_loss_parts, before the loss moved to ml/loss.py), on the batch of
# ``_fixed_batch``: total, fer2013 part, crowd part.
OLD_CODE = {
    "no teacher": ({}, (6.038578033447266, 2.555072784423828, 3.4835050106048584)),
    "cm-small-5": ({"kd_alpha": 0.6, "kd_crowd_alpha": 0.3}, (6.173689842224121, 2.555072784423828,
                                                               3.4835050106048584)),
    "kd 0.5, crowd weight 0.5": ({"kd_alpha": 0.5, "crowd_weight": 0.5}, (4.40941858291626, 2.555072784423828,
                                                                           3.4835050106048584)),
    "crowd head only": ({"kd_alpha": 0.0, "kd_crowd_alpha": 1.0, "crowd_weight": 2.0},
                        (8.59351634979248, 2.555072784423828, 3.4835050106048584)),
}


def _fixed_batch() -> tuple[torch.Tensor, Targets]:
    gen = torch.Generator().manual_seed(23)
    logits = torch.randn(32, 2, 7, generator=gen) * 2
    labels = torch.randint(0, 7, (32,), generator=gen)
    votes = torch.softmax(torch.randn(32, 7, generator=gen) * 2, dim=1)
    has = torch.arange(32) % 5 != 0
    teacher = torch.softmax(torch.randn(32, 2, 7, generator=gen) * 2, dim=2)
    return logits, Targets(labels, votes, has, teacher)


@pytest.mark.parametrize("case", sorted(OLD_CODE))
def test_the_loss_gives_the_old_codes_figures(case: str) -> None:
    logits, targets = _fixed_batch()
    weights, expected = OLD_CODE[case]
    if case == "no teacher":
        targets = Targets(targets.labels, targets.votes, targets.has_votes)
    for cfg in (TrainConfig(**weights), FinetuneConfig(**weights)):
        assert tuple(float(p) for p in loss(logits, targets, cfg)) == expected


def _batch(seed: int = 0) -> tuple[torch.Tensor, Targets]:
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(16, 2, 7, generator=gen)
    labels = torch.randint(0, 7, (16,), generator=gen)
    votes = torch.softmax(torch.randn(16, 7, generator=gen), dim=1)
    has = torch.arange(16) % 4 != 0
    teacher = torch.softmax(torch.randn(16, 2, 7, generator=gen), dim=2)
    return logits, Targets(labels, votes, has, teacher)


def _without_teacher(t: Targets) -> Targets:
    return Targets(t.labels, t.votes, t.has_votes)


def test_without_a_teacher_the_loss_is_the_two_head_loss() -> None:
    logits, targets = _batch()
    cfg = TrainConfig(crowd_weight=0.7)
    fer = torch.nn.functional.cross_entropy(logits[:, 1], targets.labels, label_smoothing=0.1)
    crowd = soft_cross_entropy(logits[:, 0], targets.votes, targets.has_votes)
    plain = loss(logits, _without_teacher(targets), cfg)
    assert torch.isclose(plain.total, fer + 0.7 * crowd)
    assert torch.isclose(plain.fer, fer) and torch.isclose(plain.crowd, crowd)
    # A teacher changes nothing while its weight is 0.
    assert torch.equal(loss(logits, targets, cfg).total, plain.total)


def test_distillation_mixes_each_head_target_with_the_teacher() -> None:
    logits, targets = _batch()
    teacher, has = targets.teacher, targets.has_votes
    assert teacher is not None
    only_teacher = TrainConfig(kd_alpha=1.0, crowd_weight=2.0)
    expected = (soft_cross_entropy(logits[:, 1], teacher[:, 1], torch.ones_like(has))
                + 2.0 * soft_cross_entropy(logits[:, 0], teacher[:, 0], has))
    assert torch.isclose(loss(logits, targets, only_teacher).total, expected)
    # With the whole weight on the teacher, the labels and votes no longer matter; half-way they do.
    other = Targets((targets.labels + 1) % 7, targets.votes.flip(0), has, teacher)
    assert torch.isclose(loss(logits, other, only_teacher).total, expected)
    half = TrainConfig(kd_alpha=0.5)
    other_labels = Targets(other.labels, targets.votes, has, teacher)
    assert not torch.isclose(loss(logits, targets, half).total, loss(logits, other_labels, half).total)
    # Its gradient pulls the student towards the teacher's distribution.
    student = torch.zeros(16, 2, 7, requires_grad=True)
    loss(student, targets, only_teacher).total.backward()
    assert student.grad is not None
    towards = (-student.grad).argmax(2) == teacher.argmax(2)
    assert bool(towards[:, 1].all()) and bool(towards[has, 0].all())
    assert float(student.grad[~has, 0].abs().max()) == 0.0  # rows without crowd votes: no crowd teacher either


def test_the_crowd_head_may_take_its_own_share_of_the_teacher() -> None:
    logits, targets = _batch()
    teacher, has = targets.teacher, targets.has_votes
    assert teacher is not None
    fer_kd = soft_cross_entropy(logits[:, 1], teacher[:, 1], torch.ones_like(has))
    votes_only = soft_cross_entropy(logits[:, 0], targets.votes, has)
    cfg = TrainConfig(kd_alpha=1.0, kd_crowd_alpha=0.0, crowd_weight=2.0)
    assert torch.isclose(loss(logits, targets, cfg).total, fer_kd + 2.0 * votes_only)
    # The crowd head's share counts even when the fer2013 head takes none of the teacher.
    crowd_only = TrainConfig(kd_alpha=0.0, kd_crowd_alpha=1.0, crowd_weight=2.0)
    parts = loss(logits, targets, crowd_only)
    assert torch.isclose(parts.total, parts.fer + 2.0 * soft_cross_entropy(logits[:, 0], teacher[:, 0], has))
    # Unset, the crowd head takes the same share as the fer2013 head.
    same, explicit = TrainConfig(kd_alpha=0.3), TrainConfig(kd_alpha=0.3, kd_crowd_alpha=0.3)
    assert torch.equal(loss(logits, targets, same).total, loss(logits, targets, explicit).total)


def test_a_batch_takes_the_targets_of_its_rows() -> None:
    _, targets = _batch()
    idx = torch.tensor([3, 0, 7])
    rows = targets.rows(idx)
    assert len(rows) == 3 and torch.equal(rows.labels, targets.labels[idx])
    assert targets.teacher is not None and rows.teacher is not None
    assert torch.equal(rows.teacher, targets.teacher[idx]) and torch.equal(rows.has_votes, targets.has_votes[idx])
