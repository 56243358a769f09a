"""The one guard every reader of a torch file (training checkpoints, encoder files, MONAI weights) goes through:
the file must exist and ``torch.load(weights_only=True)`` must read it (no pickled code runs), else one error line
naming the file, what was expected and why.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


class MissingFileError(FileNotFoundError, ValueError):
    """A file that is not there: a ``FileNotFoundError`` and a ``ValueError``, so callers catching either see it."""


def read_torch_file(path: str | os.PathLike, what: str, map_location: str | torch.device = "cpu",
                    hint: str = "") -> Any:
    """``torch.load(path, weights_only=True)``. Raises :class:`MissingFileError` ``"<what> <path> does not exist"``
    (plus ``hint``, e.g. what to pass instead) and ``ValueError`` ``"<path>: not a readable <what> (<error>)"`` for a
    truncated or foreign file; checking the loaded object's layout is the caller's part."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{what} {path} does not exist" + (f" ({hint})" if hint else ""))
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for truncated/foreign files: report them uniformly
        raise ValueError(f"{path}: not a readable {what} ({type(err).__name__}: {err})") from err
