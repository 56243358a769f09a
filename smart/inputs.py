"""Input files that cannot be used: one error type naming the file and the reason, and the checked CSV reader.

Every reader of the package (npz, CSV, NIfTI/NRRD/DICOM, checkpoint, encoder) turns the many exception types of
its library (``zipfile.BadZipFile``, ``EOFError``, ``zlib.error``, pickle errors, pandas parser errors, ...) into
:class:`InputFileError`; ``smart.cli`` prints it as one line ``smart <step>: error: <file>: <reason>`` and exits
with status 2, without a traceback and before any output is written (docs/data_preparation.md "Damaged files").
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["InputFileError", "read_csv"]


class InputFileError(ValueError):
    """A file the package cannot use; ``path`` is the file, ``reason`` says why in words.

    A ``ValueError`` so that callers which already handle bad values handle bad files the same way.
    """

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):  # keep the two-argument constructor picklable (multiprocessing, pytest-xdist)
        return (type(self), (self.path, self.reason))


def read_csv(path: str | os.PathLike, what: str = "CSV", **kwargs):
    """``pandas.read_csv(path, **kwargs)``; a missing, empty, binary or malformed file raises
    :class:`InputFileError` ("<what> not found" / "unreadable <what> (<parser message>)")."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, f"{what} not found")
    try:
        return pd.read_csv(path, **kwargs)
    except (ValueError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        raise InputFileError(path, f"unreadable {what} ({reason[:300]})") from None
