"""ClassMood: facial-emotion analytics for online classes.

>>> from classmood import EmotionClassifier, LABELS
>>> LABELS[:3]
('Angry', 'Disgust', 'Fear')
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from classmood.labels import LABELS

if TYPE_CHECKING:
    from classmood.vision.classifier import EmotionClassifier
    from classmood.vision.pipeline import EmotionAnalyzer

__all__ = ["LABELS", "EmotionAnalyzer", "EmotionClassifier"]
__version__ = "0.1.0"

_LAZY = {
    "EmotionClassifier": "classmood.vision.classifier",
    "EmotionAnalyzer": "classmood.vision.pipeline",
}


def __getattr__(name: str) -> Any:
    # Imported on first use so that `import classmood` stays light (no onnxruntime session at import time).
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'classmood' has no attribute {name!r}")
