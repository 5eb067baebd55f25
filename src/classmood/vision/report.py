"""Writing analysis results: JSON lines or CSV rows as they come, and a report folder of charts.

>>> with RowWriter(sys.stdout, "jsonl") as out:      # doctest: +SKIP
...     out.write(frame_result)
>>> write_report(results_to_dataframe(frames), Path("report"))  # doctest: +SKIP
[PosixPath('report/table.csv'), PosixPath('report/histogram.png'), ...]

Charts are drawn with matplotlib's object API on the Agg canvas: no display, no global pyplot state,
so reports can be written from any thread.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING

import numpy as np

from classmood.exports.csv_cells import safe_cell, safe_record
from classmood.labels import EMOTION_COLORS, LABELS
from classmood.vision.pipeline import ROW_COLUMNS, FrameResult, face_record, face_row

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FORMATS = ("jsonl", "csv")
# One colour per emotion, in LABELS order: the palette of labels.py, the same as on the web pages.
COLOURS = tuple(EMOTION_COLORS[label] for label in LABELS)
MAX_PEOPLE = 100  # per-person charts beyond this many tracks would bury the folder


class RowWriter:
    """Streams one JSON object (``jsonl``) or CSV row (``csv``) per face, flushed after every frame so
    that nothing already analysed is lost if a later input fails or the run is interrupted."""

    def __init__(self, stream: IO[str], fmt: str = "jsonl") -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
        self.stream, self.fmt, self.rows = stream, fmt, 0
        self._csv = csv.DictWriter(stream, fieldnames=list(ROW_COLUMNS)) if fmt == "csv" else None
        if self._csv:
            self._csv.writeheader()

    def write(self, frame: FrameResult) -> None:
        for face in frame.faces:
            if self._csv:
                self._csv.writerow(safe_record(face_row(face, frame)))  # a file name may read as a formula
            else:
                self.stream.write(json.dumps(face_record(face, frame)) + "\n")
            self.rows += 1
        self.stream.flush()

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stream.flush()


def label_shares(df: pd.DataFrame) -> np.ndarray:
    """Share of faces per emotion (LABELS order); zeros when there are no faces."""
    counts: np.ndarray = df["label"].value_counts().reindex(list(LABELS), fill_value=0).to_numpy(float)
    return counts / counts.sum() if counts.sum() else counts


def _figure(width: float = 7.0, height: float = 4.0) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _histogram(ax: Axes, df: pd.DataFrame, title: str) -> None:
    x = np.arange(len(LABELS))
    shares = label_shares(df)
    mean_probs = df[list(LABELS)].mean().to_numpy(float) if len(df) else np.zeros(len(LABELS))
    ax.bar(x - 0.2, shares, 0.4, color=COLOURS, label="share of faces (top emotion)")
    ax.bar(x + 0.2, mean_probs, 0.4, color=COLOURS, alpha=0.45, hatch="//", label="mean probability")
    ax.set_xticks(x, LABELS)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share")
    ax.set_title(f"{title} ({len(df)} faces)" if len(df) else f"{title}: no faces found")
    ax.legend(loc="upper right", fontsize="small")


def write_histogram(df: pd.DataFrame, path: Path, title: str) -> Path:
    fig = _figure()
    _histogram(fig.add_subplot(), df, title)
    fig.savefig(path)
    return path


def write_timeline(df: pd.DataFrame, path: Path, bins: int = 60) -> Path:
    """Stacked shares of each emotion over time (videos) or over the images in input order."""
    fig = _figure(9.0, 4.0)
    ax = fig.add_subplot()
    if len(df) and df["time_s"].max() > df["time_s"].min():
        x, unit = df["time_s"].to_numpy(float), "time (s)"
    else:
        x = df.groupby(["source", "frame"], sort=False).ngroup().to_numpy(float)
        unit = "image (input order)"
    if len(df):
        edges = np.histogram_bin_edges(x, bins=min(bins, max(1, len(np.unique(x)))))
        which = np.clip(np.digitize(x, edges[1:-1]), 0, len(edges) - 2)
        codes = df["label"].map({name: i for i, name in enumerate(LABELS)}).to_numpy(int)
        counts = np.zeros((len(LABELS), len(edges) - 1))
        np.add.at(counts, (codes, which), 1)
        shares = counts / np.maximum(counts.sum(axis=0), 1)
        centres = (edges[:-1] + edges[1:]) / 2
        ax.stackplot(centres, shares, labels=LABELS, colors=COLOURS, step=None)
        ax.set_xlim(centres[0], centres[-1] if len(centres) > 1 else centres[0] + 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel(unit)
    ax.set_ylabel("share of faces")
    ax.set_title("Emotions over time" if len(df) else "Emotions over time: no faces found")
    if len(df):
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    fig.savefig(path)
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:60] or "input"


def write_report(df: pd.DataFrame, folder: Path) -> list[Path]:
    """Write ``table.csv``, ``histogram.png`` (all faces), ``timeline.png`` and one
    ``people/<source>-face<id>.png`` histogram per tracked person; returns the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    table = folder / "table.csv"
    from pandas.api.types import is_numeric_dtype

    text = [str(column) for column in df.columns if not is_numeric_dtype(df[column])]  # a file name may read as
    df.assign(**{column: df[column].map(safe_cell) for column in text}).to_csv(table, index=False)  # a formula
    written = [table, write_histogram(df, folder / "histogram.png", "All faces"),
               write_timeline(df, folder / "timeline.png")]
    tracked = df[df["face_id"].notna()]
    if len(tracked):
        people = folder / "people"
        people.mkdir(exist_ok=True)
        groups = sorted(tracked.groupby(["source", "face_id"]), key=lambda g: -len(g[1]))[:MAX_PEOPLE]
        for (source, face_id), rows in groups:
            name = f"{_slug(Path(str(source)).name)}-face{int(face_id)}.png"
            written.append(write_histogram(rows, people / name, f"{Path(str(source)).name}, face {int(face_id)}"))
    return written
