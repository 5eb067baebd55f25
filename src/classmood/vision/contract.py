"""The model's contract: everything a runtime needs to feed the network and read its answers.

One frozen dataclass, :class:`ModelContract`, describes the input (size, grey, scaling, per-image
standardisation and its std floor), how a face is cut out of a frame (:class:`CropGeometry`), the label
order, the output heads with their calibration temperatures, the default head, the test-time
augmentation and where the weights came from. Export writes it into the ONNX file's metadata as one JSON
document under :data:`CONTRACT_KEY`; :class:`~classmood.vision.classifier.EmotionClassifier`, the browser
(``student.js``) and the desktop agent all read that same document, so no runtime copies constants.

>>> c = ModelContract.from_json(example_contract().to_json())
>>> c.input_size, c.default_head, c.head("crowd").output
(48, 'crowd', 'crowd')
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from classmood.labels import LABELS

CONTRACT_KEY = "classmood_contract"
CONTRACT_SCHEMA = 1
INPUT_SIZE = 48  # FER2013's crops are 48x48: the one definition of the network's input side
STD_FLOOR = 1e-2  # an all-black crop has std 0; this keeps it finite (it maps to all zeros)
TTA_MODES = ("none", "mirror")


class ContractError(ValueError):
    """A model file whose contract is missing, malformed or incompatible with this ClassMood."""


@dataclass(frozen=True)
class CropGeometry:
    """How a square face crop is placed around a detected face.

    ``scale``: crop side over the face size; ``shift``: how far the crop's centre moves up from the
    eye-mouth midpoint, as a fraction of the side; ``align``: rotate so the eyes are level.
    """

    scale: float = 1.1
    shift: float = 0.0
    align: bool = True


@dataclass(frozen=True)
class Normalisation:
    """uint8 grey pixels times ``scale``, then per image ``(x - mean) / max(std, std_floor)``."""

    scale: float = 1.0 / 255.0
    per_image_standardise: bool = True
    std_floor: float = STD_FLOOR


@dataclass(frozen=True)
class HeadSpec:
    """One output of the network: probabilities in label order, ``softmax((logits + bias) / temperature)``
    computed inside the graph. ``bias`` (empty: none) is a per-class prior correction and ``temperature``
    the calibration, both fitted on PublicTest; they are kept here to say how the output was adjusted.
    ``tta`` (empty: the contract's) is this head's test-time augmentation where it differs from the file's,
    chosen on PublicTest like the rest."""

    name: str
    output: str
    temperature: float = 1.0
    targets: str = ""
    bias: tuple[float, ...] = ()
    tta: str = ""


@dataclass(frozen=True)
class ModelContract:
    model_version: str
    heads: tuple[HeadSpec, ...]
    default_head: str
    training_data: str
    labels: tuple[str, ...] = LABELS
    input_name: str = "faces"
    input_size: int = INPUT_SIZE
    colour: str = "grey"
    normalisation: Normalisation = field(default_factory=Normalisation)
    crop: CropGeometry = field(default_factory=CropGeometry)
    tta: str = "mirror"
    schema: int = CONTRACT_SCHEMA

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ContractError("invalid model contract: " + "; ".join(problems))

    def problems(self) -> list[str]:
        out = []
        if self.schema != CONTRACT_SCHEMA:
            out.append(f"schema {self.schema}, this ClassMood reads schema {CONTRACT_SCHEMA}")
        if tuple(self.labels) != LABELS:
            out.append(f"labels {list(self.labels)} differ from ClassMood's {list(LABELS)}")
        if self.input_size != INPUT_SIZE or self.colour != "grey":
            out.append(f"input {self.input_size}px {self.colour}; expected {INPUT_SIZE}px grey")
        names = [h.name for h in self.heads]
        if not names or len(set(names)) != len(names):
            out.append(f"heads must be a non-empty list of distinct names, got {names}")
        if self.default_head not in names:
            out.append(f"default head {self.default_head!r} is not one of {names}")
        if any(not h.temperature > 0 for h in self.heads):
            out.append("every head's temperature must be positive")
        if any(h.bias and (len(h.bias) != len(LABELS) or not all(math.isfinite(b) for b in h.bias))
               for h in self.heads):
            out.append(f"a head's bias must be empty or {len(LABELS)} finite numbers")
        if self.tta not in TTA_MODES or any(h.tta and h.tta not in TTA_MODES for h in self.heads):
            out.append(f"tta {self.tta!r} (and each head's) must be one of {TTA_MODES}")
        if not self.normalisation.std_floor > 0 or not self.crop.scale > 0:
            out.append("std_floor and crop scale must be positive")
        return out

    def head(self, name: str | None = None) -> HeadSpec:
        """The head called ``name`` (the default head for ``None``)."""
        wanted = self.default_head if name is None else name
        for h in self.heads:
            if h.name == wanted:
                return h
        raise ValueError(f"unknown head {wanted!r}; this model has {', '.join(self.head_names)}")

    def head_tta(self, name: str | None = None) -> str:
        """The test-time augmentation of head ``name`` (the default head for ``None``): its own, else the file's."""
        return self.head(name).tta or self.tta

    @property
    def head_names(self) -> tuple[str, ...]:
        return tuple(h.name for h in self.heads)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelContract:
        try:
            fields = dict(data)
            fields["heads"] = tuple(HeadSpec(**{**h, "bias": tuple(h.get("bias", ()))}) for h in fields["heads"])
            fields["labels"] = tuple(fields.get("labels", LABELS))
            if "normalisation" in fields:
                fields["normalisation"] = Normalisation(**fields["normalisation"])
            if "crop" in fields:
                fields["crop"] = CropGeometry(**fields["crop"])
            return cls(**fields)
        except ContractError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ContractError(f"malformed model contract: {exc}") from exc

    @classmethod
    def from_json(cls, text: str) -> ModelContract:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ContractError(f"model contract is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ContractError("model contract must be a JSON object")
        return cls.from_dict(data)


def contract_from_metadata(metadata: dict[str, str], source: str = "model") -> ModelContract:
    """Read the contract from an ONNX file's custom metadata map; refuse a file without one."""
    if CONTRACT_KEY not in metadata:
        raise ContractError(f"{source}: not a ClassMood model: its ONNX metadata has no {CONTRACT_KEY!r} "
                            "document (export it with `classmood export`)")
    return ModelContract.from_json(metadata[CONTRACT_KEY])


def example_contract() -> ModelContract:
    """A two-head contract as the shipped model carries it (used by docs and tests)."""
    return ModelContract(
        model_version="example", default_head="crowd", training_data="FER2013 Training + FER+ votes",
        heads=(HeadSpec("crowd", "crowd", 1.0, "FER+ vote distributions"),
               HeadSpec("fer2013", "fer2013", 1.0, "FER2013 original labels")))
