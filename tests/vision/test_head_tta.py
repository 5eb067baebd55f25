"""Test-time augmentation is chosen per head in the contract (issue 24): the shipped files say which head mirrors."""

from __future__ import annotations

import numpy as np
import pytest

from classmood.vision.classifier import EmotionClassifier
from classmood.vision.contract import ContractError, HeadSpec, ModelContract, example_contract


def test_head_tta_falls_back_to_the_files() -> None:
    contract = example_contract()
    assert contract.head_tta("crowd") == contract.tta == "mirror"
    own = ModelContract.from_dict({**contract.to_dict(), "heads": [
        {"name": "crowd", "output": "crowd", "tta": "none"}, {"name": "fer2013", "output": "fer2013"}]})
    assert own.head_tta() == "none" and own.head_tta("fer2013") == "mirror"
    with pytest.raises(ContractError, match="tta"):
        ModelContract(model_version="x", default_head="a", training_data="", heads=(HeadSpec("a", "a", tta="flip"),))


def test_shipped_files_mirror_where_it_buys_enough() -> None:
    """fp32 (the browser's): the crowd head without mirror (+0.26 points on PublicTest), fer2013 with (+0.97);
    int8: both with (+0.50 each)."""
    fp32, int8 = EmotionClassifier(precision="fp32"), EmotionClassifier(precision="int8")
    assert (fp32.contract.head_tta("crowd"), fp32.contract.head_tta("fer2013")) == ("none", "mirror")
    assert (int8.contract.head_tta("crowd"), int8.contract.head_tta("fer2013")) == ("mirror", "mirror")
    faces = np.random.default_rng(3).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    both = fp32.predict_heads(faces)  # one call: the crowd head reads the faces only, fer2013 with their mirrors
    plain = EmotionClassifier(precision="fp32", flip_tta=False).predict_heads(faces)
    mirrored = EmotionClassifier(precision="fp32", flip_tta=True).predict_heads(faces)
    np.testing.assert_allclose(both["crowd"], plain["crowd"], atol=1e-6)
    np.testing.assert_allclose(both["fer2013"], mirrored["fer2013"], atol=1e-6)
    assert not np.allclose(both["fer2013"], plain["fer2013"], atol=1e-4)
    np.testing.assert_allclose(fp32.predict(faces), plain["crowd"], atol=1e-6)
