"""What a result file records about how it was made (as DINO and nnU-Net runs do): git SHA, package versions,
seed and a stable hash of the resolved config."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

_PACKAGES = ("torch", "monai", "numpy", "SimpleITK", "scikit-learn", "umap-learn", "pandas", "snakemake", "smart-ssl")


def git_sha(cwd: str | Path | None = None) -> str:
    """The checkout's commit (with ``-dirty`` when the tree has changes), or ``"unknown"`` outside git."""
    cwd = Path(cwd) if cwd else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True,
                               text=True, check=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def config_hash(config: Any) -> str:
    """sha256 (first 16 hex) of the config as canonical JSON: equal configs hash equal whatever the key order."""
    blob = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks (inputs recorded in model cards and resume digests)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def provenance(config: Any = None, seed: int | None = None) -> dict[str, Any]:
    rec: dict[str, Any] = {"git_sha": git_sha(), "versions": package_versions(), "host": platform.node()}
    if seed is not None:
        rec["seed"] = int(seed)
    if config is not None:
        rec["config_hash"] = config_hash(config)
    return rec
