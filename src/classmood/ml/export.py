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

from classmood.ml.model import EmotionNet, count_macs, count_parameters
from classmood.vision.contract import CONTRACT_KEY, INPUT_SIZE, HeadSpec, ModelContract
from classmood.vision.preprocess import DEFAULT_GEOMETRY

OPSET = 17
MODEL_VERSION = "cm-small-2"
TRAINING_DATA = ("FER2013 Training (35,887-row release, original labels) with the FER+ crowd votes of its rows; "
                 "temperatures fitted on PublicTest")
HEAD_TARGETS = {"crowd": "FER+ crowd vote distributions (seven shared emotions)",
                "fer2013": "FER2013 original single labels"}
DEFAULT_HEAD = "crowd"  # what people see; fer2013 is kept for comparison with published results


class WithSoftmax(nn.Module):
    """The network with one probability output per head: ``softmax(logits / temperature)``."""

    def __init__(self, net: EmotionNet, temperatures: tuple[float, ...]) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("inv_t", torch.tensor([1.0 / t for t in temperatures]).view(1, -1, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        probs = torch.softmax(self.net(x) * self.inv_t, dim=2)
        return tuple(probs[:, i] for i in range(probs.shape[1]))


def build_contract(model: EmotionNet, temperatures: dict[str, float], *, version: str = MODEL_VERSION,
                   default_head: str = DEFAULT_HEAD, training_data: str = TRAINING_DATA) -> ModelContract:
    heads = tuple(HeadSpec(name, name, float(temperatures.get(name, 1.0)), HEAD_TARGETS.get(name, ""))
                  for name in model.config.heads)
    return ModelContract(model_version=version, heads=heads, default_head=default_head,
                         training_data=training_data, crop=DEFAULT_GEOMETRY)


def export_onnx(model: EmotionNet, out_path: str | Path, *, temperatures: dict[str, float] | None = None,
                contract: ModelContract | None = None, extra_metadata: dict[str, Any] | None = None,
                tolerance: float = 1e-4) -> dict[str, Any]:
    """Export ``model`` with a dynamic batch axis and one output per head, embed its contract (one JSON
    document under :data:`~classmood.vision.contract.CONTRACT_KEY`), verify parity; return the report."""
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    temps = temperatures or {}
    contract = contract or build_contract(model, temps)
    wrapped = WithSoftmax(model.eval(), tuple(contract.head(h).temperature for h in model.config.heads)).eval()
    dummy = torch.zeros(1, 1, INPUT_SIZE, INPUT_SIZE)
    outputs = [contract.head(h).output for h in model.config.heads]
    torch.onnx.export(wrapped, (dummy,), str(out), input_names=[contract.input_name], output_names=outputs,
                      dynamic_axes={contract.input_name: {0: "batch"}, **{o: {0: "batch"} for o in outputs}},
                      opset_version=OPSET, dynamo=False)
    proto = onnx.load(str(out))
    metadata = {"model_config": model.config.to_dict(), "parameters": count_parameters(model),
                "macs": count_macs(model), **(extra_metadata or {})}
    del proto.metadata_props[:]
    proto.metadata_props.add(key=CONTRACT_KEY, value=contract.to_json())
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=json.dumps(value))
    proto.producer_name = "classmood"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out))
    max_diff = check_parity(wrapped, out)
    if max_diff > tolerance:
        raise RuntimeError(f"ONNX output differs from PyTorch by {max_diff:.2e} (> {tolerance:.0e})")
    return {"path": str(out), "max_abs_diff": max_diff, "bytes": out.stat().st_size, "contract": contract.to_dict(),
            **metadata}


def check_parity(wrapped: nn.Module, onnx_path: Path, n: int = 37, seed: int = 0) -> float:
    """Largest absolute difference of probabilities between PyTorch and onnxruntime on random faces."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 1, INPUT_SIZE, INPUT_SIZE)).astype(np.float32)
    with torch.no_grad():
        expected = [t.numpy() for t in wrapped(torch.from_numpy(x))]
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})
    return float(max(np.abs(g - e).max() for g, e in zip(got, expected, strict=True)))
