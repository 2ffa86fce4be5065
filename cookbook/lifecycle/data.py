"""Read CSV files into frames, with one-line errors that name the file and the column."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cookbook.core.errors import DataError, first_line_of


def read_csv(path: Path | str, *, what: str = "", **options: Any):
    """Return ``pandas.read_csv(path, **options)``, or raise ``DataError`` saying what is wrong.

    *what* prefixes the file's name in messages ("Training data").
    """
    import pandas as pd

    label = f"{what} {path}" if what else str(path)
    try:
        return pd.read_csv(path, **options)
    except FileNotFoundError:
        hint = ": run `make data`" if what == "Training data" else ""
        raise DataError(f"{label} is missing{hint}.") from None
    except IsADirectoryError:
        raise DataError(f"{label} is a directory, not a CSV file.") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{label} is empty.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{label} is not a valid CSV file: {first_line_of(exc)}") from None


def require_columns(frame: Any, columns: Sequence[str], label: str) -> None:
    """Raise ``DataError`` naming every one of *columns* that *frame* lacks."""
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise DataError(
            f"{label} lacks column(s) {', '.join(missing)}; "
            f"it has {', '.join(map(str, frame.columns)) or 'none'}."
        )


def to_numeric(frame: Any, column: str, label: str) -> None:
    """Convert *frame*'s *column* to numbers in place, or raise ``DataError`` naming a bad cell."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(frame[column]):
        raise DataError(f"{label}: column {column} must be numeric, found booleans.")
    if pd.api.types.is_numeric_dtype(frame[column]):
        return
    converted = pd.to_numeric(frame[column], errors="coerce")
    bad = frame[column][converted.isna() & frame[column].notna()]
    if len(bad):
        raise DataError(
            f"{label}: column {column} must be numeric, found {bad.iloc[0]!r} at row "
            f"{bad.index[0] + 1}."
        )
    frame[column] = converted


def load_table(
    path: Path | str,
    *,
    numeric: Sequence[str],
    categorical: Sequence[str] = (),
    what: str = "Training data",
    keep: Callable[[str], bool] | None = None,
) -> tuple[Any, int]:
    """Return ``(frame, rows_dropped)``: *numeric* columns as floats, *categorical* as text,
    rows missing any of them dropped; raise ``DataError`` for a bad file or column."""
    label = f"{what} {path}"
    frame = read_csv(path, what=what)
    columns = [*numeric, *(c for c in categorical if c not in numeric)]
    require_columns(frame, columns, label)
    for column in numeric:
        to_numeric(frame, column, label)
    rows_before = len(frame)
    frame = frame.dropna(subset=columns).reset_index(drop=True)
    for column in categorical:
        frame[column] = frame[column].astype(str)
    if frame.empty:
        raise DataError(f"{label} has no rows with all of {', '.join(columns)}.")
    return frame, rows_before - len(frame)
