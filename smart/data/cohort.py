"""Classification cohorts (LIDC nodules, treatment response, synthetic): the CSV contract and the torch Dataset.

CSV contract (docs/ARCHITECTURE.md "Data contracts"): ``sample_id, patient_id, image, label`` plus free extra columns;
``label`` is 0/1; ``image`` is a NIfTI (or anything SimpleITK reads) crop in HU, absolute or relative to the CSV's
folder. Network input follows the shared intensity convention (``smart.data.intensity.hu_to_unit``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from smart.data.intensity import hu_to_unit
from smart.data.io import table_path

REQUIRED_COLUMNS = ("sample_id", "patient_id", "image", "label")


def read_cohort(csv_path: str | os.PathLike) -> pd.DataFrame:
    """Read and validate a cohort CSV; ``image`` becomes an absolute path, ``label`` an int column.

    Errors name the file and the CSV line (header = line 1) of the offending row.
    """
    path = Path(csv_path)
    if not path.is_file():
        raise FileNotFoundError(f"cohort file not found: {path}")
    from smart.inputs import read_csv

    frame = read_csv(path, "cohort CSV", dtype={"sample_id": str, "patient_id": str, "image": str},
                     keep_default_na=False)
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; required {list(REQUIRED_COLUMNS)}, found {list(frame.columns)}")
    if frame.empty:
        raise ValueError(f"{path}: cohort has no rows")
    frame = _drop_unlabelled(frame, path)
    _require_images(frame, path)
    for column in ("sample_id", "patient_id"):
        empty = frame.index[frame[column].astype(str).str.strip() == ""]
        if len(empty):
            raise ValueError(f"{path}: line {empty[0] + 2}: empty {column}")
    duplicated = frame["sample_id"][frame["sample_id"].duplicated()]
    if len(duplicated):
        raise ValueError(f"{path}: duplicate sample_id {duplicated.iloc[0]!r} (line {duplicated.index[0] + 2})")

    labels = pd.to_numeric(frame["label"].astype(str).str.strip(), errors="coerce")
    bad = frame.index[~labels.isin([0, 1])]
    if len(bad):
        raise ValueError(f"{path}: line {bad[0] + 2}: label {frame['label'].loc[bad[0]]!r} is not 0 or 1")
    frame["label"] = labels.astype(int)

    images = []
    for row, value in zip(frame.index, frame["image"]):
        image = table_path(value, path.parent)
        if not image.exists():
            raise FileNotFoundError(f"{path}: line {row + 2} (sample_id {frame['sample_id'].loc[row]!r}): image not found: {image}")
        images.append(str(image.resolve()))
    frame["image"] = images
    return frame.reset_index(drop=True)


def _drop_unlabelled(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Rows with an empty ``label`` are excluded nodules (``smart lidc-nodules --ambiguous exclude``, or no
    malignancy rating): they are dropped with a note on stderr rather than failing the whole cohort."""
    empty = frame["label"].astype(str).str.strip() == ""
    if not empty.any():
        return frame
    if empty.all():
        raise ValueError(f"{path}: all {len(frame)} rows have an empty label; nothing to train or evaluate on")
    print(f"note: {path}: dropped {int(empty.sum())} of {len(frame)} row(s) with an empty label "
          f"(excluded samples, e.g. `smart lidc-nodules --ambiguous exclude`)", file=sys.stderr)
    return frame[~empty]  # original index kept: error messages report CSV line = index + 2


def _require_images(frame: pd.DataFrame, path: Path) -> None:
    """An empty ``image`` means the crop was never cut (LIDC nodule table without DICOM): fail with the remedy."""
    empty = frame.index[frame["image"].astype(str).str.strip() == ""]
    if len(empty) == 0:
        return
    first = frame["sample_id"].loc[empty[0]]
    raise ValueError(
        f"{path}: {len(empty)} of {len(frame)} row(s) have no image (first: sample_id {first!r}). Crops are cut "
        f"from the CT images: for LIDC the DICOM must be present — rerun `smart lidc-nodules` with --dicom-root "
        f"PATH (or set [dicom] path in ~/.pylidcrc) and --crops-dir; for other cohorts fill the image column "
        f"(e.g. `smart cohort-crops`)."
    )


def center_pad_crop(volume: np.ndarray, size: Sequence[int], fill: float = 0.0) -> np.ndarray:
    """Centre-crop axes longer than ``size`` and pad shorter ones symmetrically with ``fill`` (extra voxel after)."""
    if len(size) != volume.ndim:
        raise ValueError(f"size {tuple(size)} does not match a {volume.ndim}-D volume of shape {volume.shape}")
    crop, pad = [], []
    for n, s in zip(volume.shape, size):
        start = max(n - s, 0) // 2
        crop.append(slice(start, start + min(n, s)))
        before = max(s - n, 0) // 2
        pad.append((before, max(s - n, 0) - before))
    return np.pad(volume[tuple(crop)], pad, mode="constant", constant_values=fill)


def load_crop(image_path: str | os.PathLike, crop_size: Sequence[int]) -> np.ndarray:
    """HU crop -> float32 (D, H, W) = (z, y, x) in [0, 1], centre padded (with air) / cropped to ``crop_size``."""
    from smart.data.io import ImageReadError, read_array_zyx

    try:
        array = read_array_zyx(image_path)
    except ImageReadError as exc:
        raise ValueError(str(exc)) from exc
    return center_pad_crop(hu_to_unit(array), crop_size, fill=0.0)  # 0 = -1000 HU = air


class CohortDataset(torch.utils.data.Dataset):
    """Items ``(float32 tensor (1, D, H, W) in [0, 1], int label)`` from a :func:`read_cohort` frame.

    Loaded crops are cached in memory (crops are small: 64^3 float32 = 1 MiB). ``augment`` adds random flips on each
    axis and integer shifts of up to ``max_shift`` voxels (pad with air, random crop back), via MONAI transforms;
    ``seed`` makes the augmentation stream reproducible.
    """

    def __init__(self, frame: pd.DataFrame, crop_size: Sequence[int] = (64, 64, 64), augment: bool = False,
                 *, max_shift: int = 4, cache: bool = True, seed: int | None = None):
        missing = [c for c in ("image", "label") if c not in frame.columns]
        if missing:
            raise ValueError(f"cohort frame lacks column(s) {missing}")
        crop_size = tuple(int(s) for s in crop_size)
        if len(crop_size) != 3 or min(crop_size) < 1:
            raise ValueError(f"crop_size {crop_size} must be three positive sizes")
        if max_shift < 0:
            raise ValueError(f"max_shift ({max_shift}) must be >= 0")
        self.images = [str(p) for p in frame["image"]]
        self.labels = [int(v) for v in frame["label"]]
        self.crop_size = crop_size
        self.augment = bool(augment)
        self.cache = cache
        self._cache: dict[int, np.ndarray] = {}
        self._transform = self._build_augmentation(crop_size, max_shift, seed) if augment else None

    @staticmethod
    def _build_augmentation(crop_size, max_shift, seed):
        from monai.transforms import BorderPad, Compose, RandFlip, RandSpatialCrop

        transform = Compose(
            [RandFlip(prob=0.5, spatial_axis=axis) for axis in range(3)]
            + [BorderPad(spatial_border=max_shift, mode="constant", value=0.0),
               RandSpatialCrop(roi_size=crop_size, random_center=True, random_size=False)]
        )
        if seed is not None:
            transform.set_random_state(seed=seed)
        return transform

    def set_augmentation_seed(self, seed: int) -> None:
        """Restart the augmentation stream from ``seed`` (fine-tuning reseeds it per epoch, so a resumed run draws
        the same flips and shifts as an uninterrupted one). No-op without ``augment``."""
        if self._transform is not None:
            self._transform.set_random_state(seed=int(seed))

    def __len__(self) -> int:
        return len(self.images)

    def _volume(self, index: int) -> np.ndarray:
        if index in self._cache:
            return self._cache[index]
        volume = load_crop(self.images[index], self.crop_size)
        if self.cache:
            self._cache[index] = volume
        return volume

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x = torch.from_numpy(self._volume(index).copy()).unsqueeze(0)  # copy: callers may modify the item in place
        if self._transform is not None:
            out = self._transform(x)
            x = out.as_tensor() if hasattr(out, "as_tensor") else torch.as_tensor(out)  # plain tensor, not MetaTensor
        return x.float().contiguous(), self.labels[index]
