"""The one definition of ClassMood's seven emotions, their order and their colours.

Every probability vector in ClassMood (model outputs, API payloads, database
columns, charts) uses :data:`LABELS` order.

>>> LABELS[3], EMOTION_COLORS["Happy"], top_label([0.1, 0.0, 0.0, 0.6, 0.3, 0.0, 0.0])
('Happy', '#e6a700', 3)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

LABELS: tuple[str, ...] = ("Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise")
NUM_CLASSES = len(LABELS)

# The original FER2013 codes: 0 Angry, 1 Disgust, 2 Fear, 3 Happy, 4 Sad, 5 Surprise, 6 Neutral.
# FER2013_TO_INDEX[code] is the position of that emotion in LABELS.
FER2013_CODES: tuple[str, ...] = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
FER2013_TO_INDEX: tuple[int, ...] = tuple(LABELS.index(name) for name in FER2013_CODES)

NEGATIVE: frozenset[str] = frozenset({"Angry", "Disgust", "Fear", "Sad"})
# Their positions in LABELS (0, 1, 2, 5): for label columns, index arrays and SQL.
NEGATIVE_INDICES: tuple[int, ...] = tuple(i for i, label in enumerate(LABELS) if label in NEGATIVE)

# The colour of each emotion, the same on every chart: PNG reports and the browser pages (handed over in
# their config). Happy is amber and Disgust olive so that no two neighbours in LABELS look alike.
EMOTION_COLORS: dict[str, str] = {
    "Angry": "#c0392b", "Disgust": "#6b8e23", "Fear": "#8e44ad", "Happy": "#e6a700",
    "Neutral": "#7f8c8d", "Sad": "#2f6db5", "Surprise": "#e67e22",
}


def top_label(probs: Iterable[float]) -> int:
    """The position in :data:`LABELS` of the most likely emotion (the first one on a tie).

    Accepts any seven numbers: a tuple, a list or a numpy array.
    """
    values = [float(p) for p in probs]
    return max(range(len(values)), key=values.__getitem__)


def label_index(name: str) -> int:
    """Return the position of an emotion name in :data:`LABELS` (case-insensitive).

    >>> label_index("happy")
    3
    """
    lowered = name.strip().lower()
    for i, label in enumerate(LABELS):
        if label.lower() == lowered:
            return i
    aliases = {"angry": 0, "anger": 0, "disgusted": 1, "fearful": 2, "happiness": 3,
               "sadness": 5, "surprised": 6}
    if lowered in aliases:
        return aliases[lowered]
    raise ValueError(f"unknown emotion {name!r}; expected one of {', '.join(LABELS)}")


def negative_part(values: Mapping[str, float]) -> float:
    """The sum of the negative emotions' values in a mapping by label (counts or shares).

    >>> negative_part({"Angry": 0.1, "Happy": 0.6, "Sad": 0.3})
    0.4
    """
    return sum(value for label, value in values.items() if label in NEGATIVE)
