"""The ONNX emotion classifier: load once, predict batches of grey face crops.

>>> clf = EmotionClassifier()                       # the model shipped in the package
>>> probs = clf.predict(np.zeros((2, 48, 48), np.uint8))
>>> probs.shape
(2, 7)
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from classmood.labels import LABELS
from classmood.vision.contract import ContractError, HeadSpec, ModelContract, contract_from_metadata
from classmood.vision.preprocess import faces_to_input

MODEL_FILE = "emotion_cnn.onnx"


PRECISIONS = ("int8", "fp32")


def default_model_path(precision: str = "int8") -> Path:
    """Path of the ONNX model shipped inside the package.

    ``fp32`` is the exported network (checked against PyTorch); ``int8`` (the default) is its
    statically quantised copy: about 3x faster on CPUs with the same accuracy (see the model card).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    fp32 = Path(str(resources.files("classmood.vision") / "assets" / MODEL_FILE))
    return int8_path(fp32) if precision == "int8" else fp32


def int8_path(fp32_path: str | Path) -> Path:
    """Where the int8 copy of an ONNX model lives: ``x.onnx`` -> ``x.int8.onnx``.

    >>> int8_path("m/emotion_cnn.onnx").name
    'emotion_cnn.int8.onnx'
    """
    path = Path(fp32_path)
    return path.with_name(path.stem + ".int8" + path.suffix)


class EmotionClassifier:
    """Seven-emotion classifier for grey face crops, running on onnxruntime (CPU).

    ``predict`` takes uint8 grey crops shaped (N, 48, 48) as FER2013 stores them (other
    sizes are resized) and returns (N, 7) probabilities in :attr:`labels` order. It
    splits large inputs into batches and may be called from several threads at once
    (onnxruntime sessions are thread-safe).

    The model file carries its contract (:class:`~classmood.vision.contract.ModelContract`); a file
    without one is refused. ``head`` picks an output of the network: ``None`` is the contract's default
    (``crowd``, trained on the FER+ crowd votes: what people see), ``"fer2013"`` the head trained on
    FER2013's original labels (for comparison with published results). ``flip_tta`` defaults to the
    contract's test-time augmentation.
    """

    def __init__(self, model_path: str | Path | None = None, *, head: str | None = None,
                 threads: int | None = None, batch_size: int = 256, precision: str = "int8",
                 flip_tta: bool | None = None) -> None:
        path = Path(model_path) if model_path else default_model_path(precision)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: emotion model not found")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads if threads is not None else min(os.cpu_count() or 1, 4)
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.contract: ModelContract = contract_from_metadata(self._session.get_modelmeta().custom_metadata_map,
                                                              str(path))
        _check_graph(self._session, self.contract, path)
        self._input = self.contract.input_name
        self.path = path
        self.batch_size = batch_size
        self.head_spec: HeadSpec = self.contract.head(head)
        self.head: str = self.head_spec.name
        # Averaging each face with its mirror image adds about half a point on PublicTest to the int8 file's heads
        # for twice the arithmetic in the same call; the contract says per head where it is used.
        self._flip_override = flip_tta
        self.flip_tta = self._mirrored(self.head_spec)
        self.metadata: dict[str, Any] = _read_metadata(self._session)
        self.labels: list[str] = list(LABELS)

    def predict(self, faces: npt.NDArray[np.uint8] | list[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
        """Return (N, 7) probabilities of the chosen head for N grey uint8 face crops."""
        return self.predict_heads(faces, (self.head,))[self.head]

    def predict_heads(self, faces: npt.NDArray[np.uint8] | list[npt.NDArray[np.uint8]],
                      heads: tuple[str, ...] | None = None) -> dict[str, npt.NDArray[np.float32]]:
        """Probabilities of several heads (all by default) from one onnxruntime call per batch."""
        specs = [self.contract.head(h) for h in (heads or self.contract.head_names)]
        x = faces_to_input(faces, self.contract.normalisation)
        if len(x) == 0:
            return {h.name: np.zeros((0, len(self.labels)), np.float32) for h in specs}
        outputs = [h.output for h in specs]
        mirror = [self._mirrored(h) for h in specs]
        parts = [self._run(x[i : i + self.batch_size], outputs, mirror) for i in range(0, len(x), self.batch_size)]
        result = {}
        for k, spec in enumerate(specs):
            probs = np.concatenate([p[k] for p in parts]).astype(np.float32, copy=False)
            # The int8 model's softmax comes in steps of 1/256, so rows can sum to 0.996-1.004: renormalise.
            result[spec.name] = probs / probs.sum(axis=1, keepdims=True)
        return result

    def _mirrored(self, spec: HeadSpec) -> bool:
        """Whether ``spec``'s probabilities average each face with its mirror image."""
        if self._flip_override is not None:
            return self._flip_override
        return self.contract.head_tta(spec.name) == "mirror"

    def _run(self, x: npt.NDArray[np.float32], outputs: list[str],
             mirror: list[bool]) -> list[npt.NDArray[np.float32]]:
        if not any(mirror):
            return [np.asarray(o) for o in self._session.run(outputs, {self._input: x})]
        both = np.concatenate([x, x[..., ::-1]])  # the faces and their mirror images in one call
        out = [np.asarray(o) for o in self._session.run(outputs, {self._input: both})]
        return [(o[: len(x)] + o[len(x) :]) / 2 if m else o[: len(x)] for o, m in zip(out, mirror, strict=True)]

    def predict_labels(self, faces: npt.NDArray[np.uint8] | list[npt.NDArray[np.uint8]]) -> list[str]:
        """Return the most likely emotion name for each face."""
        return [self.labels[i] for i in self.predict(faces).argmax(axis=1)]


def _check_graph(session: ort.InferenceSession, contract: ModelContract, path: Path) -> None:
    inputs = [i.name for i in session.get_inputs()]
    outputs = {o.name for o in session.get_outputs()}
    missing = [h.output for h in contract.heads if h.output not in outputs]
    if contract.input_name not in inputs or missing:
        raise ContractError(f"{path}: graph does not match its contract (input {contract.input_name!r} in "
                            f"{inputs}; missing outputs {missing})")


def _read_metadata(session: ort.InferenceSession) -> dict[str, Any]:
    raw = session.get_modelmeta().custom_metadata_map
    out: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
