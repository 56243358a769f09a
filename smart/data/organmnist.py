"""Reader for MedMNIST's OrganMNIST3D npz (paper Sec. IV-A task 1, unsupervised organ clustering).

Reads the file with numpy only: the ``medmnist`` package pulls a CUDA torchvision that breaks next to CPU torch
(docs/data_synthetic.md), and nothing is downloaded at run time. Layout: ``{train,val,test}_images`` uint8 (n, S, S, S) with
S = 28 (``organmnist3d.npz``) or 64 (``organmnist3d_64.npz``), ``{train,val,test}_labels`` (n, 1) in 0-10.
``smart synth organs`` writes a file with the same layout.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from smart.data.blank import blank_indices, blank_note
from smart.data.validation import check_finite_voxels
from smart.inputs import InputFileError

# MedMNIST OrganMNIST3D label order (medmnist INFO["organmnist3d"]["label"]); the synthetic stand-in and the cluster
# figures use these names.
CLASS_NAMES = ("liver", "kidney-right", "kidney-left", "femur-right", "femur-left", "bladder", "heart", "lung-right",
               "lung-left", "spleen", "pancreas")
N_CLASSES = len(CLASS_NAMES)
VALID_SPLITS = ("train", "val", "test")


def load_organmnist3d(npz_path: str | os.PathLike, splits: tuple[str, ...] = VALID_SPLITS) -> tuple[np.ndarray, np.ndarray]:
    """Images float32 (n, 1, S, S, S) scaled to [0, 1] and labels int64 (n,), ``splits`` concatenated in order.

    Blank volumes (one value in every voxel, :mod:`smart.data.blank`) are kept but reported: one line per split on
    stderr with their count and indices within the split (:func:`organmnist_blank` gives them as data)."""
    path = Path(npz_path)
    if isinstance(splits, str):
        splits = (splits,)
    bad = [s for s in splits if s not in VALID_SPLITS]
    if bad or not splits:
        raise ValueError(f"splits {splits!r}: each must be one of {VALID_SPLITS}")
    if not path.is_file():
        raise FileNotFoundError(
            f"OrganMNIST3D file not found: {path}. Nothing is downloaded at run time: put MedMNIST's organmnist3d.npz "
            f"(or organmnist3d_64.npz, from https://zenodo.org/records/10519652) at that path, point the config at it, "
            f"or generate a synthetic stand-in with `smart synth organs --out DIR`."
        )
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as exc:  # zip/npy corruption surfaces as many exception types
        raise InputFileError(path, f"not a readable npz file ({type(exc).__name__}: {exc})") from None
    images, labels = [], []
    size = None
    with data:
        for split in splits:
            for key in (f"{split}_images", f"{split}_labels"):
                if key not in data.files:
                    raise ValueError(f"{path}: missing key {key!r} (found {sorted(data.files)}); expected MedMNIST layout")
            img = read_npz_member(data, f"{split}_images", path)
            check_finite_voxels(f"{path}[{split}_images]", img)
            lab = read_npz_member(data, f"{split}_labels", path)
            if img.ndim != 4 or len(set(img.shape[1:])) != 1:
                raise ValueError(f"{path}: {split}_images has shape {img.shape}, expected (n, S, S, S)")
            if size is not None and img.shape[1] != size:
                raise ValueError(f"{path}: {split}_images are {img.shape[1]}^3 but earlier splits are {size}^3")
            size = img.shape[1]
            lab = lab.reshape(len(lab), -1) if lab.ndim == 2 else lab.reshape(-1, 1)
            if lab.shape != (img.shape[0], 1):
                raise ValueError(f"{path}: {split}_labels has shape {data[f'{split}_labels'].shape}, "
                                 f"expected ({img.shape[0]}, 1) to match {split}_images")
            if lab.size and (lab.min() < 0 or lab.max() >= N_CLASSES):
                raise ValueError(f"{path}: {split}_labels outside 0-{N_CLASSES - 1} (min {lab.min()}, max {lab.max()})")
            images.append(_to_unit(img, path, split))
            labels.append(lab[:, 0].astype(np.int64))
            blank = blank_indices(img)
            if len(blank):
                print("note: " + blank_note(f"{path} {split}_images", blank, len(img)), file=sys.stderr)
    return np.concatenate(images)[:, None], np.concatenate(labels)


def organmnist_blank(images: np.ndarray, split_sizes: Sequence[int], splits: Sequence[str]) -> dict:
    """``{"count": K, "indices": [...], "by_split": {split: [indices within the split]}}`` of the blank volumes of
    :func:`load_organmnist3d`'s ``images`` (indices into the concatenation, then per split)."""
    found = blank_indices(images).tolist()
    starts = np.concatenate([[0], np.cumsum(split_sizes)])
    by_split = {s: [i - int(starts[n]) for i in found if starts[n] <= i < starts[n + 1]] for n, s in enumerate(splits)}
    return {"count": len(found), "indices": found, "by_split": by_split}


def read_npz_member(data, key: str, path: Path) -> np.ndarray:
    """One array of the npz; a damaged member (bad CRC, truncated deflate stream, bad npy header) raises
    :class:`InputFileError` — the zip directory can be intact while a member is not."""
    try:
        return data[key]
    except Exception as exc:  # zipfile.BadZipFile, zlib.error, EOFError, ValueError from the npy header
        raise InputFileError(path, f"npz member {key!r} is damaged ({type(exc).__name__}: {exc})") from None


def _to_unit(img: np.ndarray, path: Path, split: str) -> np.ndarray:
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    if np.issubdtype(img.dtype, np.floating) and (img.size == 0 or (img.min() >= 0.0 and img.max() <= 1.0)):
        return img.astype(np.float32)
    raise ValueError(f"{path}: {split}_images dtype {img.dtype} is neither uint8 nor float in [0, 1]")
