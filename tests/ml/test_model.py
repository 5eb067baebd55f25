"""The CNN: shapes, size budget, a tiny training run that learns, ONNX export parity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is in the `train` extra")

from classmood.labels import NUM_CLASSES  # noqa: E402
from classmood.ml.export import Adjustment, export_onnx  # noqa: E402
from classmood.ml.model import (  # noqa: E402
    HEADS,
    VARIANTS,
    build_model,
    count_macs,
    count_parameters,
)
from classmood.ml.train import (  # noqa: E402
    Batches,
    TrainConfig,
    batch_loss,
    cutmix,
    load_checkpoint,
    mixup_draw,
    sharpness_aware_grad,
    soft_cross_entropy,
    train,
)
from classmood.vision.classifier import EmotionClassifier  # noqa: E402


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_forward_shape_and_finite(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name).eval()
    x = torch.randn(5, 1, 48, 48)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (5, len(model.config.heads), NUM_CLASSES)
    assert torch.isfinite(y).all()
    model.train()
    model(torch.randn(2, 1, 48, 48)).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_shipped_variant_fits_the_budget() -> None:
    model = build_model("cm-small")
    assert count_parameters(model) <= 1_500_000
    assert 2 * count_macs(model) <= 200_000_000  # ~100 MMACs (about 100 M multiply-adds) per face


def test_tiny_training_run_lowers_the_loss_and_resumes(learnable_npz: Path, tmp_path: Path) -> None:
    cfg = TrainConfig(model="cm-tiny", epochs=4, batch_size=32, lr=0.05, warmup_epochs=0.5, bf16=False)
    summary = train(learnable_npz, tmp_path, cfg, log=lambda _: None)
    losses = [h["loss"] for h in summary["history"]]
    assert losses[-1] < 0.8 * losses[0], losses
    assert summary["best"]["scores"]["fer_acc"] > 0.5  # chance is 1/7
    assert summary["best"]["scores"]["crowd_agree"] > 0.5
    assert {"loss_fer", "loss_crowd"} <= set(summary["history"][-1])
    assert json.loads((tmp_path / "summary.json").read_text())["epochs"] == 4
    # Resuming a finished run with more epochs continues from the saved epoch.
    longer = train(learnable_npz, tmp_path, TrainConfig(**{**cfg.to_dict(), "epochs": 5,
                                                          "augment": cfg.augment, "webcam": cfg.webcam}), resume=True,
                   log=lambda _: None)
    assert [h["epoch"] for h in longer["history"]] == [1, 2, 3, 4, 5]
    best = load_checkpoint(tmp_path / "best.pt")
    assert best.config.name == "cm-tiny"


def test_mixup_is_off_by_default_and_reproducible() -> None:
    gen = torch.Generator().manual_seed(0)
    before = gen.get_state()
    assert TrainConfig().mixup_alpha == 0.0 and mixup_draw(8, 0.0, gen) == (1.0, None)
    assert torch.equal(gen.get_state(), before)  # off, the random stream of older recipes is untouched
    (w1, p1), (w2, p2) = (mixup_draw(8, 0.2, torch.Generator().manual_seed(1)) for _ in range(2))
    assert w1 == w2 and p1 is not None and p2 is not None and torch.equal(p1, p2)
    assert 0.0 <= w1 <= 1.0 and sorted(p1.tolist()) == list(range(8))


def test_mixing_the_losses_mixes_the_targets() -> None:
    """What mixup trains on: the loss of a blended face is the loss against the blended targets."""
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 2, 7, generator=gen)
    votes = torch.softmax(torch.randn(6, 7, generator=gen), dim=1)
    data = Batches(torch.zeros(6, 48, 48, dtype=torch.uint8), torch.arange(6) % 7, votes,
                   torch.ones(6, dtype=torch.bool))
    a, b, w = torch.arange(6), torch.tensor([3, 4, 5, 0, 1, 2]), 0.3
    cfg = TrainConfig(label_smoothing=0.0)
    mixed = w * batch_loss(logits, data, a, HEADS, cfg)[2] + (1 - w) * batch_loss(logits, data, b, HEADS, cfg)[2]
    blended = w * votes[a] + (1 - w) * votes[b]
    expected = soft_cross_entropy(logits[:, HEADS.index("crowd")], blended, torch.ones(6, dtype=torch.bool))
    assert torch.isclose(mixed, expected)


def test_cutmix_is_off_by_default_and_leaves_the_random_stream_alone() -> None:
    gen = torch.Generator().manual_seed(0)
    before = gen.get_state()
    x = torch.randn(4, 1, 48, 48)
    assert TrainConfig().cutmix_alpha == 0.0
    same, weight, partner = cutmix(x, 0.0, 1.0, gen)
    assert same is x and weight == 1.0 and partner is None
    assert torch.equal(gen.get_state(), before)
    with pytest.raises(ValueError, match="choose one"):
        TrainConfig(mixup_alpha=0.2, cutmix_alpha=1.0)


def test_cutmix_pastes_one_box_of_the_partner_and_weighs_by_the_area_kept() -> None:
    x = torch.arange(6, dtype=torch.float32).view(6, 1, 1, 1).expand(6, 1, 48, 48).clone()  # face i is all i
    for seed in range(20):
        mixed, weight, partner = cutmix(x, 1.0, 1.0, torch.Generator().manual_seed(seed))
        assert partner is not None and sorted(partner.tolist()) == list(range(6))
        from_partner = mixed != x[:, :, :1, :1]  # every pixel is either the face's own or its partner's
        assert torch.equal(mixed[from_partner], x[partner].expand_as(mixed)[from_partner])
        moved = from_partner[partner != torch.arange(6)]
        if len(moved):  # the box is the same for every face that has another partner
            assert (moved == moved[0]).all()
            rows, cols = moved[0, 0].any(dim=1), moved[0, 0].any(dim=0)
            assert torch.equal(moved[0, 0], rows[:, None] & cols[None, :])  # one rectangle
            assert weight == pytest.approx(1.0 - float(moved[0].float().mean()))
        assert 0.0 <= weight <= 1.0
    untouched = cutmix(x, 1.0, 0.0, torch.Generator().manual_seed(0))  # prob 0: no batch is cut
    assert untouched[0] is x and untouched[2] is None


def test_sam_takes_the_gradient_at_the_perturbed_weights_and_puts_them_back() -> None:
    torch.manual_seed(0)
    model = build_model("cm-tiny").train()
    x, labels = torch.randn(8, 1, 48, 48), torch.arange(8) % 7

    def loss() -> torch.Tensor:
        torch.manual_seed(1)  # the same dropout mask in every pass, so the by-hand check below is exact
        return torch.nn.functional.cross_entropy(model(x)[:, 0], labels)

    weights = {k: v.clone() for k, v in model.state_dict().items()}
    loss().backward()
    plain = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in plain]))
    bn_stats = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    sharpness_aware_grad(model, loss, rho=0.05)
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in bn_stats.items())  # the second pass left them alone
    assert all(torch.allclose(after[k], v, atol=1e-6) for k, v in weights.items() if "running" not in k
               and "num_batches" not in k)  # the weights are back
    sam = [p.grad for p in model.parameters() if p.grad is not None]
    assert len(sam) == len(plain) and not all(torch.allclose(a, b) for a, b in zip(sam, plain, strict=True))
    # By hand: the gradient at w + rho * g / |g| (batch norm's running statistics play no part in training mode).
    trained = [p for p in model.parameters() if p.grad is not None]  # the other head takes no part in this loss
    with torch.no_grad():
        for p, g in zip(trained, plain, strict=True):
            p.add_(g * 0.05 / norm)
    model.zero_grad()
    loss().backward()
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(sam, [p.grad for p in trained], strict=True))


@pytest.mark.parametrize(("option", "value"), [("mixup_alpha", 0.4), ("cutmix_alpha", 1.0), ("sam_rho", 0.05)])
def test_a_tiny_run_with_each_optional_ingredient_still_learns(option: str, value: float, learnable_npz: Path,
                                                                tmp_path: Path) -> None:
    assert getattr(TrainConfig(), option) == 0.0  # off by default
    cfg = TrainConfig(model="cm-tiny", epochs=4, batch_size=32, lr=0.05, warmup_epochs=0.5, bf16=False,
                      **{option: value})
    summary = train(learnable_npz, tmp_path, cfg, log=lambda _: None)
    assert summary["train_config"][option] == value
    assert summary["best"]["scores"]["fer_acc"] > 0.5  # chance is 1/7


def test_onnx_export_matches_pytorch_with_a_dynamic_batch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("cm-small").eval()
    temperatures = {"crowd": 1.5, "fer2013": 0.8}
    bias = (0.5, -0.5, 0.0, 0.0, 0.25, 0.0, -0.25)
    report = export_onnx(model, tmp_path / "m.onnx", adjustments={"crowd": Adjustment(1.5, bias, 0.3),
                                                                  "fer2013": Adjustment(0.8)})
    assert report["max_abs_diff"] <= 1e-4
    faces = np.random.default_rng(0).integers(0, 256, (9, 48, 48), dtype=np.uint8)
    from classmood.vision.preprocess import faces_to_input

    with torch.no_grad():
        logits = model(torch.from_numpy(faces_to_input(faces)))
    for head, t in temperatures.items():
        clf = EmotionClassifier(tmp_path / "m.onnx", head=head, flip_tta=False)
        shift = torch.tensor(bias) if head == "crowd" else 0.0
        expected = torch.softmax((logits[:, model.head_index(head)] + shift) / t, dim=1).numpy()
        for n in (1, 9):
            np.testing.assert_allclose(clf.predict(faces[:n]), expected[:n], atol=1e-4)
        assert clf.head_spec.temperature == t
    assert EmotionClassifier(tmp_path / "m.onnx").head == "crowd"  # the contract's default head
    assert clf.metadata["parameters"] == count_parameters(model)
