"""The torch ``Dataset`` over a classification cohort (:mod:`smart.data.cohort` holds the CSV contract and crop
loading, without torch, so the data-preparation rules need neither torch nor MONAI)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch

from smart.data.cohort import load_crop
from smart.data.views import derive_seed


class CohortDataset(torch.utils.data.Dataset):
    """Items ``(float32 tensor (1, D, H, W) in [0, 1], int label)`` from a :func:`read_cohort` frame.

    Loaded crops are cached in memory (crops are small: 64^3 float32 = 1 MiB). ``augment`` adds random flips on each
    axis and integer shifts of up to ``max_shift`` voxels (pad with air, random crop back), via MONAI transforms;
    ``seed`` makes the augmentation stream reproducible; after :meth:`set_augmentation_seed` each item draws from its
    own seed instead, so a ``DataLoader`` gives the same samples whatever its ``num_workers``.
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
        self._item_seed: int | None = None

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
        """From now on item ``i`` is augmented from ``derive_seed(seed, i)`` (fine-tuning calls this per epoch, so a
        resumed run draws the same flips and shifts as an uninterrupted one). A per-item seed rather than one stream:
        data-loader workers each hold a copy of the dataset, and a shared stream would depend on which worker loads
        which item. No-op without ``augment``."""
        self._item_seed = int(seed)

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
            if self._item_seed is not None:
                self._transform.set_random_state(seed=derive_seed(self._item_seed, index))
            out = self._transform(x)
            x = out.as_tensor() if hasattr(out, "as_tensor") else torch.as_tensor(out)  # plain tensor, not MetaTensor
        return x.float().contiguous(), self.labels[index]
