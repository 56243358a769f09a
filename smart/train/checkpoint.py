"""Training checkpoints: tensors and plain Python types only, written atomically.

``torch.load(path, weights_only=True)`` must be able to read every checkpoint (no pickled code runs on load), so RNG
states are converted: Python's Mersenne-Twister state to a list of ints, NumPy's to a dict of a tensor and ints.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from smart.atomic import atomic_path
from smart.torch_files import read_torch_file

FORMAT = "smart-checkpoint/1"


def capture_rng_state() -> dict[str, Any]:
    """All global RNG states that training consumes (those ``smart.seeding.seed_everything`` seeds), as
    weights_only-loadable values."""
    py_version, py_state, py_gauss = random.getstate()
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": int(py_version), "state": [int(v) for v in py_state],
                   "gauss": None if py_gauss is None else float(py_gauss)},
        "numpy": {"kind": str(np_kind), "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
                  "pos": int(np_pos), "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)},
        "torch": torch.get_rng_state(),
        "cuda": [s for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
    }
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`. CUDA states are restored only when the device count matches."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    npst = state["numpy"]
    np.random.set_state((npst["kind"], npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"],
                         npst["gauss"]))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Atomically write ``state`` (plus the format tag) with ``torch.save``."""
    path = Path(path)
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save({"format": FORMAT, **state}, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; a clear ``ValueError`` for a missing or foreign file."""
    state = read_torch_file(path, "checkpoint", map_location)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"checkpoint {path} is not a SMART training checkpoint (format {found!r}, expected {FORMAT!r})")
    return state


STUDENT_ENCODER_PREFIX = "student.encoder."


def export_from_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike, model_card: bool = True) -> Path:
    """Rebuild the student encoder of a training checkpoint and write it with ``smart.models.encoder_io.export_encoder``,
    and ``MODEL_CARD.md`` beside it when the checkpoint records its run (``smart.train.model_card``).

    The student (not the EMA teacher) is exported: it is what the paper fine-tunes (Sec. III-A).
    """
    from smart.models.factory import build_encoder
    from smart.models.encoder_io import export_encoder

    state = load_checkpoint(checkpoint)
    cfg = state.get("config") or {}
    if "model" not in cfg:
        raise ValueError(f"checkpoint {checkpoint} has no model config; cannot rebuild its encoder")
    weights = {k[len(STUDENT_ENCODER_PREFIX):]: v for k, v in state["model"].items() if k.startswith(STUDENT_ENCODER_PREFIX)}
    if not weights:
        raise ValueError(f"checkpoint {checkpoint} holds no '{STUDENT_ENCODER_PREFIX}*' weights")
    from smart.config import encoder_config

    encoder = build_encoder(encoder_config(cfg))
    encoder.load_state_dict(weights, strict=True)
    export_encoder(encoder, out, model_config=encoder.model_config, method=str(state.get("method", "")),
                   step=int(state["step"]))
    if model_card and state.get("run"):
        from smart.train.model_card import write_model_card

        write_model_card(out, cfg, int(state["step"]), state["run"])
    return Path(out)
