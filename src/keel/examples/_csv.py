"""A small CSV encoder with fixed formatting: the same frame always gives the same bytes.

pandas' ``to_csv`` formats every value in Python and takes seconds per million rows, and
the example data has millions of event rows. Here each column is rendered into a byte
matrix with numpy (one row per record, padded to the widest value, with a mask of the bytes
that are not padding), the matrices are laid side by side and the masked bytes are kept.

Formats: floats with two decimals, integers in full, timestamps as ``YYYY-MM-DD HH:MM:SS``,
missing values as empty fields, and integer columns named in ``ids`` as ``prefix`` plus a
zero-padded number. The generator never writes text that needs quoting; text with a comma,
quote or line break is refused.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = ["IdFormat", "write_csv"]

IdFormat = tuple[str, int]
"""How an integer key is written: prefix and minimum number of digits, e.g. ("c_", 6)."""

Field = tuple[npt.NDArray[np.uint8], npt.NDArray[np.bool_]]
Ints = npt.NDArray[np.int64]

_CHUNK_ROWS = 20000
_DAY = 86_400
_ZERO = ord("0")
_PAIRS = np.array([[_ZERO + i // 10, _ZERO + i % 10] for i in range(100)], dtype=np.uint8)


def write_csv(path: Path, frame: pd.DataFrame, ids: Mapping[str, IdFormat] | None = None) -> None:
    """Write ``frame`` to ``path`` as CSV with a header line and ``\\n`` line endings."""
    ids = ids or {}
    with path.open("wb") as file:
        file.write((",".join(frame.columns) + "\n").encode())
        for low in range(0, len(frame), _CHUNK_ROWS):
            file.write(_encode(frame.iloc[low : low + _CHUNK_ROWS], ids))


def _encode(frame: pd.DataFrame, ids: Mapping[str, IdFormat]) -> bytes:
    rows, last = len(frame), len(frame.columns) - 1
    pieces: list[Field] = []
    for index, name in enumerate(frame.columns):
        pieces += _render(frame[name], ids.get(name))
        pieces.append(_constant(rows, "\n" if index == last else ","))
    matrix = np.hstack([piece[0] for piece in pieces])
    mask = np.hstack([piece[1] for piece in pieces])
    return matrix[mask].tobytes()


def _render(column: pd.Series, id_format: IdFormat | None) -> list[Field]:
    """The pieces that make up one field of every row; missing values are left empty."""
    missing = column.isna().to_numpy(dtype=np.bool_)
    if id_format is not None:
        pieces = _identifier(_as_ints(column), *id_format)
    elif pd.api.types.is_datetime64_any_dtype(column.dtype):
        seconds = column.to_numpy(dtype="datetime64[s]").view(np.int64)
        pieces = [_timestamp(np.where(missing, 0, seconds))]
    elif pd.api.types.is_float_dtype(column.dtype):
        values = column.to_numpy(dtype=np.float64, na_value=0.0)
        pieces = _decimal(np.where(missing, 0.0, values))
    elif pd.api.types.is_integer_dtype(column.dtype):
        pieces = _integer(_as_ints(column))
    else:
        pieces = [_text(column)]
    for _, mask in pieces:
        mask[missing] = False
    return pieces


def _as_ints(column: pd.Series) -> Ints:
    return np.asarray(column.to_numpy(dtype=np.int64, na_value=0), dtype=np.int64)


def _constant(rows: int, text: str) -> Field:
    row = np.frombuffer(text.encode(), dtype=np.uint8)
    return np.tile(row, (rows, 1)), np.ones((rows, len(row)), dtype=np.bool_)


def _digits(values: Ints, min_digits: int) -> Field:
    """Non-negative integers, zero-padded to at least ``min_digits``."""
    largest = int(values.max()) if len(values) else 0
    width = max(min_digits, len(str(largest)))
    matrix = np.empty((len(values), width), dtype=np.uint8)
    rest = values
    for column in range(width - 1, -1, -1):
        rest, digit = np.divmod(rest, 10)
        matrix[:, column] = digit + _ZERO
    if width == min_digits:  # every value fills the width, as keys usually do
        return matrix, np.ones(matrix.shape, dtype=np.bool_)
    used = np.maximum(_count_digits(values, width), min_digits)
    return matrix, np.arange(width) >= (width - used)[:, None]


def _count_digits(values: Ints, width: int) -> Ints:
    powers = 10 ** np.arange(1, width, dtype=np.int64)
    return 1 + np.searchsorted(powers, values, side="right").astype(np.int64)


def _sign(negative: npt.NDArray[np.bool_]) -> Field:
    matrix, _ = _constant(len(negative), "-")
    return matrix, negative[:, None].copy()


def _integer(values: Ints) -> list[Field]:
    return [_sign(values < 0), _digits(np.abs(values), 1)]


def _identifier(values: Ints, prefix: str, min_digits: int) -> list[Field]:
    return [_constant(len(values), prefix), _digits(values, min_digits)]


def _decimal(values: npt.NDArray[np.float64]) -> list[Field]:
    cents = np.rint(values * 100).astype(np.int64)
    whole, fraction = np.divmod(np.abs(cents), 100)
    cents_field = (_PAIRS[fraction], np.ones((len(values), 2), dtype=np.bool_))
    return [_sign(cents < 0), _digits(whole, 1), _constant(len(values), "."), cents_field]


def _timestamp(seconds: Ints) -> Field:
    """``YYYY-MM-DD HH:MM:SS``, looked up in a table of the days spanned and one of the clock."""
    days, clock = np.divmod(seconds, _DAY)
    first = int(days.min()) if len(days) else 0
    matrix = np.empty((len(seconds), 19), dtype=np.uint8)
    matrix[:, :10] = _calendar(first, int(days.max()) + 1 if len(days) else 0)[days - first]
    matrix[:, 10] = ord(" ")
    matrix[:, 11:] = _clock()[clock]
    return matrix, np.ones(matrix.shape, dtype=np.bool_)


def _calendar(first: int, end: int) -> npt.NDArray[np.uint8]:
    """``YYYY-MM-DD`` for each day from ``first`` up to ``end``, counted from 1970-01-01."""
    days = np.arange(first, end).astype("datetime64[D]")
    text = np.datetime_as_string(days, unit="D").astype("S10")
    return np.frombuffer(text.tobytes(), dtype=np.uint8).reshape(len(days), 10)


@functools.cache
def _clock() -> npt.NDArray[np.uint8]:
    """``HH:MM:SS`` for every second of a day."""
    hour, rest = np.divmod(np.arange(_DAY), 3600)
    minute, second = np.divmod(rest, 60)
    colon = np.full((_DAY, 1), ord(":"), dtype=np.uint8)
    return np.hstack([_PAIRS[hour], colon, _PAIRS[minute], colon, _PAIRS[second]])


def _text(column: pd.Series) -> Field:
    codes, uniques = pd.factorize(column)
    encoded = [_checked(str(value)).encode() for value in uniques] + [b""]
    width = max(len(value) for value in encoded) or 1
    table = np.zeros((len(encoded), width), dtype=np.uint8)
    for row, value in enumerate(encoded):
        table[row, : len(value)] = np.frombuffer(value, dtype=np.uint8)
    lengths = np.array([len(value) for value in encoded])
    codes = np.where(codes < 0, len(encoded) - 1, codes)
    return table[codes], np.arange(width) < lengths[codes][:, None]


def _checked(text: str) -> str:
    if any(char in text for char in ',"\n\r'):
        raise ValueError(f"the example CSV writer does not quote values; got {text!r}")
    return text
