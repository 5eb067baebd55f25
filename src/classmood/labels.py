"""The one definition of ClassMood's seven emotions and their order.

Every probability vector in ClassMood (model outputs, API payloads, database
columns, charts) uses :data:`LABELS` order.

>>> LABELS[3]
'Happy'
"""

from __future__ import annotations

LABELS: tuple[str, ...] = ("Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise")
NUM_CLASSES = len(LABELS)

# The original FER2013 codes: 0 Angry, 1 Disgust, 2 Fear, 3 Happy, 4 Sad, 5 Surprise, 6 Neutral.
# FER2013_TO_INDEX[code] is the position of that emotion in LABELS.
FER2013_CODES: tuple[str, ...] = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
FER2013_TO_INDEX: tuple[int, ...] = tuple(LABELS.index(name) for name in FER2013_CODES)

NEGATIVE: frozenset[str] = frozenset({"Angry", "Disgust", "Fear", "Sad"})


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
