"""``smart embed``: frozen-encoder features of OrganMNIST3D for the clustering study (paper Table I, Fig. 5).

Which vector represents an image and how inputs are sized follow ``smart.downstream.features``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from smart.atomic import atomic_path
from smart.data.organmnist import load_organmnist3d, organmnist_blank
from smart.downstream.features import extract_features, feature_kind, fit_size, input_multiple
from smart.models.encoder_io import load_encoder


def embed_npz(encoder_path: str, npz_path: str, out_path: str, kind: str = "auto", batch_size: int = 8,
              splits: Sequence[str] = ("train", "val", "test"), device: str = "cpu", size: int | None = None) -> dict:
    """``smart embed``: features of the OrganMNIST3D ``splits`` -> ``out_path`` npz with ``features (n, C)``,
    ``labels (n,)``, ``split (n,)``, ``kind``, ``encoder``. Images are resized to ``size`` (default: the smallest
    encoder-compatible edge >= the stored edge, 28 -> 32 for Swin). The returned summary counts the blank volumes
    (``blank_volumes``: count, indices into the concatenation, indices per split; :mod:`smart.data.blank`)."""
    if not Path(encoder_path).is_file():
        raise ValueError(f"encoder file {encoder_path} does not exist")
    encoder, meta = load_encoder(encoder_path)
    images, labels = load_organmnist3d(npz_path, splits=tuple(splits))
    sizes = _split_sizes(npz_path, splits)
    names = np.concatenate([np.full(n, s) for s, n in zip(splits, sizes)])
    blank = organmnist_blank(images, sizes, splits)
    target = (size,) * 3 if size else fit_size(images.shape[2:], input_multiple(encoder))
    resolved = feature_kind(encoder, kind)
    feats = extract_features(encoder, torch.from_numpy(np.ascontiguousarray(images)), kind=resolved,
                             batch_size=batch_size, device=device, resize_to=target, progress=True)
    with atomic_path(out_path, suffix=".npz") as tmp:
        np.savez(tmp, features=feats, labels=np.asarray(labels).ravel(), split=names.astype(str),
                 kind=np.asarray(resolved), encoder=np.asarray(str(encoder_path)), input_size=np.asarray(target))
    return {"n": int(feats.shape[0]), "dim": int(feats.shape[1]), "kind": resolved, "input_size": list(target),
            "method": meta.get("method") if isinstance(meta, dict) else None, "blank_volumes": blank}


def _split_sizes(npz_path: str, splits: Sequence[str]) -> list[int]:
    from pathlib import Path

    from smart.data.organmnist import read_npz_member

    with np.load(npz_path) as z:  # a damaged member names the file (smart.inputs.InputFileError)
        return [int(read_npz_member(z, f"{s}_labels", Path(npz_path)).shape[0]) for s in splits]
