"""ONNX export of a trained checkpoint, checked against PyTorch through onnxruntime."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from classmood.labels import LABELS
from classmood.ml.model import EmotionNet, count_macs, count_parameters
from classmood.vision.preprocess import INPUT_SIZE, STD_FLOOR

OPSET = 17


class WithSoftmax(nn.Module):
    """The network followed by softmax, so the ONNX file outputs probabilities."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x), dim=1)


def input_contract() -> dict[str, Any]:
    return {
        "shape": [None, 1, INPUT_SIZE, INPUT_SIZE],
        "colour": "grey (single channel, as FER2013)",
        "scaling": "uint8 pixels / 255",
        "normalisation": f"per image: (x - mean(x)) / max(std(x), {STD_FLOOR})",
        "function": "classmood.vision.preprocess.faces_to_input",
        "output": "probabilities (softmax) in label order",
    }


def export_onnx(model: EmotionNet, out_path: str | Path, *, extra_metadata: dict[str, Any] | None = None,
                tolerance: float = 1e-4) -> dict[str, Any]:
    """Export ``model`` with a dynamic batch axis, embed its contract, verify parity; return the report."""
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    wrapped = WithSoftmax(model.eval()).eval()
    dummy = torch.zeros(1, 1, INPUT_SIZE, INPUT_SIZE)
    torch.onnx.export(wrapped, (dummy,), str(out), input_names=["faces"], output_names=["probs"],
                      dynamic_axes={"faces": {0: "batch"}, "probs": {0: "batch"}}, opset_version=OPSET,
                      dynamo=False)
    proto = onnx.load(str(out))
    metadata = {"labels": list(LABELS), "input": input_contract(), "model_config": model.config.to_dict(),
                "parameters": count_parameters(model), "macs": count_macs(model), **(extra_metadata or {})}
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    proto.producer_name = "classmood"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out))
    max_diff = check_parity(wrapped, out)
    if max_diff > tolerance:
        raise RuntimeError(f"ONNX output differs from PyTorch by {max_diff:.2e} (> {tolerance:.0e})")
    return {"path": str(out), "max_abs_diff": max_diff, "bytes": out.stat().st_size, **metadata}


def check_parity(wrapped: nn.Module, onnx_path: Path, n: int = 37, seed: int = 0) -> float:
    """Largest absolute difference of probabilities between PyTorch and onnxruntime on random faces."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 1, INPUT_SIZE, INPUT_SIZE)).astype(np.float32)
    with torch.no_grad():
        expected = wrapped(torch.from_numpy(x)).numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"faces": x})[0]
    return float(np.abs(got - expected).max())
