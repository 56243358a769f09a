"""Atomic file writes: write to a temporary file in the destination folder, then ``os.replace``.

A killed job (SLURM preemption, OOM, Ctrl-C) therefore never leaves a half-written output that Snakemake or a resumed
run would mistake for a finished one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``, on error it is removed.

    ``suffix`` defaults to the destination's full suffix (e.g. ``.nii.gz``) so writers that pick the format from the
    file name (SimpleITK, nibabel, pandas) still do.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix is None:
        suffix = "".join(path.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give the result the permissions a plain open() would (shared cluster storage).
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> Path:
    return write_text(path, json.dumps(obj, indent=indent, sort_keys=False, default=_json_default) + "\n")


def write_csv(path: str | os.PathLike, frame: "Any", **to_csv_kwargs: Any) -> Path:
    """Write a pandas DataFrame atomically (``index=False`` unless given)."""
    to_csv_kwargs.setdefault("index", False)
    with atomic_path(path, suffix=".csv") as tmp:
        frame.to_csv(tmp, **to_csv_kwargs)
    return Path(path)


def _json_default(obj: Any) -> Any:
    # numpy scalars/arrays and Paths show up in metrics dicts; make them plain JSON.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
