"""Two-view pretraining data (Sec. III-C, IV-C): two random 3D crops ``u, v`` of one resampled CT.

Reproducibility contract (what makes ``--resume`` bit-exact and DDP equal to one process at the same global batch):
the training stream is an infinite sequence of *sample positions* ``p = step * global_batch + k``. Position ``p``
reads case ``perm_e[p mod n]`` of epoch ``e = p // n`` (``perm_e`` a permutation seeded by ``(seed, e)``), and its
crops/flips come from a NumPy generator seeded by ``(seed, p)``. Rank ``r`` of ``W`` takes positions
``k = r*B .. r*B+B-1`` of each step. Nothing depends on iterator state, so a resumed run just starts at its step.

Loading is MONAI: ``LoadImaged -> EnsureChannelFirstd -> (x,y,z) to (z,y,x) + hu_to_unit -> SpatialPadd(crop)`` is
cached in memory (``CacheDataset``) once per process; the random part is ``RandSpatialCropd`` twice and ``RandFlipd``
per axis, with their random state set from the position's seed. The axis reversal makes the views' axes those of
every other network input, ``(D, H, W) = (z, y, x)`` (docs/ARCHITECTURE.md "Axes").

``view_offset`` (config ``data.view_offset``, voxels; ``None`` = the two crops are independent) draws *overlapping
views inside the body*: ``u``'s centre is a random body voxel (> ``BODY_HU``) among the centres a full crop allows,
and ``v``'s centre is ``u``'s shifted by at most ``view_offset`` voxels per axis (clipped to the volume). Independent
crops of a padded CT are often mostly air and rarely overlap, so cross-view AITD/GITD targets carry little shared
content; SMART's views are "random cropping of 3D regions from input CT volume" (Sec. III-C) and its DINO/iBOT anchors
use overlapping global crops of one image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, Sampler

from smart.data.intensity import hu_to_unit

MANIFEST_COLUMNS = ("case_id", "path", "status")
BODY_HU = -500.0  # above lung parenchyma (~ -850 HU) and air: soft tissue, bone, vessels
_PURPOSE_EPOCH = 1
_PURPOSE_CROP = 2


def derive_seed(*parts: int) -> int:
    """A 32-bit seed from integers via NumPy's SeedSequence (well mixed: nearby steps give unrelated streams)."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(1)[0])


def read_manifest(manifest: str | Path, group: str | None = None) -> list[str]:
    """Paths of ``status == "ok"`` rows of a CT manifest (docs/ARCHITECTURE.md "Data contracts").

    ``group`` (config ``data.group``) keeps only the rows whose ``group`` column equals it — the Sec. VII study of
    lung-only vs non-lung pretraining is two variants over one manifest with a ``group`` column (e.g. ``lung`` /
    ``other``), added by the user to the resampling manifest.

    Relative paths are resolved against the manifest's folder. Raises ``ValueError`` before any training starts if
    the file, a column, every usable row, or any referenced image is missing.
    """
    manifest = Path(manifest)
    if not manifest.is_file():
        raise ValueError(f"manifest {manifest} does not exist")
    try:
        frame = pd.read_csv(manifest)
    except Exception as exc:
        raise ValueError(f"manifest {manifest} is not a readable CSV: {exc}") from exc
    missing_cols = [c for c in MANIFEST_COLUMNS if c not in frame.columns]
    if missing_cols:
        raise ValueError(f"manifest {manifest} lacks column(s) {missing_cols}; has {list(frame.columns)}")
    ok = frame[frame["status"].astype(str) == "ok"]
    if group is not None:
        if "group" not in frame.columns:
            raise ValueError(f"manifest {manifest} has no 'group' column, but data.group={group!r} selects by it")
        ok = ok[ok["group"].astype(str) == str(group)]
        if ok.empty:
            groups = sorted(frame["group"].astype(str).unique())
            raise ValueError(f"manifest {manifest} has no 'ok' rows of group {group!r}; its groups: {groups}")
    if ok.empty:
        raise ValueError(f"manifest {manifest} has no rows with status == 'ok' ({len(frame)} rows in total)")
    paths = []
    for raw in ok["path"].astype(str):
        p = Path(raw)
        paths.append(str(p if p.is_absolute() else (manifest.parent / p).resolve()))
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        shown = ", ".join(missing[:5]) + (f" ... (+{len(missing) - 5} more)" if len(missing) > 5 else "")
        raise ValueError(f"manifest {manifest}: {len(missing)} of {len(paths)} 'ok' image file(s) do not exist: {shown}")
    return paths


def _zyx_unit(x: Any) -> torch.Tensor:
    """MONAI-loaded ``(1, x, y, z)`` HU -> ``(1, D, H, W)`` = ``(1, z, y, x)`` in [0, 1] (docs/ARCHITECTURE.md "Axes").

    MONAI's readers index like ITK/nibabel, ``(x, y, z)``; reversing the spatial axes gives exactly the SimpleITK
    array that cohort crops, OrganMNIST and zero-shot feed the network. MONAI (nibabel) is kept as the reader because,
    unlike ITK's NIfTI reader, it does not turn NaN voxels into 0, so a corrupt volume still surfaces as a
    non-finite loss. A module-level function (not a lambda) so the transform pickles for spawned DataLoader workers.
    """
    x = x.as_tensor() if hasattr(x, "as_tensor") else torch.as_tensor(x)
    return hu_to_unit(x.permute(0, 3, 2, 1).contiguous())


def _deterministic_transform(crop_size: Sequence[int]):
    from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, Lambdad, SpatialPadd

    # Pad with 0 *after* hu_to_unit so padding reads as air (0 = -1000 HU), like the rest of the pipeline.
    return Compose([
        # nibabel pinned: manifests hold resampled NIfTI (ARCHITECTURE "Data contracts"), its (x, y, z) order is the
        # one _zyx_unit reverses, and MONAI does not probe (and warn about) its GPU DICOM reader.
        LoadImaged(keys="image", image_only=True, reader="NibabelReader"),
        EnsureChannelFirstd(keys="image"),
        Lambdad(keys="image", func=_zyx_unit),
        SpatialPadd(keys="image", spatial_size=list(crop_size), value=0.0),
    ])


def _random_transform(crop_size: Sequence[int]):
    from monai.transforms import Compose, RandFlipd, RandSpatialCropd

    return Compose([
        RandSpatialCropd(keys="image", roi_size=list(crop_size), random_size=False),
        *[RandFlipd(keys="image", prob=0.5, spatial_axis=axis) for axis in range(3)],
    ])


class TwoViewDataset(Dataset):
    """``dataset[p]`` -> ``{"u": (1,D,H,W), "v": (1,D,H,W), "position": p, "case": i}`` for sample position ``p``."""

    def __init__(self, paths: Sequence[str], crop_size: Sequence[int], seed: int = 0, cache: bool = True,
                 num_workers: int = 0, view_offset: int | None = None) -> None:
        if len(paths) == 0:
            raise ValueError("TwoViewDataset needs at least one image path")
        if len(crop_size) != 3 or any(int(c) <= 0 for c in crop_size):
            raise ValueError(f"crop_size must be three positive ints, got {crop_size!r}")
        from monai.data import CacheDataset

        self.paths = list(paths)
        self.crop_size = [int(c) for c in crop_size]
        self.seed = int(seed)
        if view_offset is not None and int(view_offset) < 0:
            raise ValueError(f"view_offset must be >= 0 voxels or None, got {view_offset!r}")
        self.view_offset = None if view_offset is None else int(view_offset)
        self._base = CacheDataset(data=[{"image": p} for p in self.paths],
                                  transform=_deterministic_transform(self.crop_size),
                                  cache_rate=1.0 if cache else 0.0, num_workers=max(num_workers, 1),
                                  progress=False, copy_cache=False)
        self._random = _random_transform(self.crop_size)

    def __len__(self) -> int:
        # Positions are unbounded; the sampler decides which are read. len = cases, for DataLoader bookkeeping.
        return len(self.paths)

    def case_at(self, position: int) -> int:
        n = len(self.paths)
        epoch, offset = divmod(int(position), n)
        perm = np.random.default_rng(derive_seed(self.seed, _PURPOSE_EPOCH, epoch)).permutation(n)
        return int(perm[offset])

    def _view(self, image: torch.Tensor, seed: int) -> torch.Tensor:
        self._random.set_random_state(seed=seed)
        out = self._random({"image": image})["image"]
        if hasattr(out, "as_tensor"):  # drop MONAI's MetaTensor wrapper: plain tensors collate and move faster
            out = out.as_tensor()
        return torch.as_tensor(out).float().contiguous()

    def _near_views(self, image: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Two crops whose corners differ by at most ``view_offset`` per axis, the first centred on a body voxel;
        each flipped per axis with probability 0.5 (module docstring)."""
        rng = np.random.default_rng(seed)
        img = torch.as_tensor(image.as_tensor() if hasattr(image, "as_tensor") else image)
        spatial = img.shape[1:]
        hi = [s - c for s, c in zip(spatial, self.crop_size)]  # largest crop corner per axis
        half = [c // 2 for c in self.crop_size]
        # body voxels whose crop fits: centre - half in [0, hi]
        window = img[0, half[0]:half[0] + hi[0] + 1, half[1]:half[1] + hi[1] + 1, half[2]:half[2] + hi[2] + 1]
        body = (window > float(hu_to_unit(np.array([BODY_HU]))[0])).nonzero()
        if len(body):
            corner = body[int(rng.integers(len(body)))].tolist()
        else:  # no body voxel (an all-air pad): any corner
            corner = [int(rng.integers(h + 1)) for h in hi]
        shifted = [min(max(c + int(rng.integers(-self.view_offset, self.view_offset + 1)), 0), h)
                   for c, h in zip(corner, hi)]
        views = []
        for start in (corner, shifted):
            crop = img[:, start[0]:start[0] + self.crop_size[0], start[1]:start[1] + self.crop_size[1],
                       start[2]:start[2] + self.crop_size[2]]
            axes = [a + 1 for a in range(3) if rng.random() < 0.5]
            views.append((crop.flip(axes) if axes else crop).float().contiguous())
        return views[0], views[1]

    def __getitem__(self, position: int) -> dict[str, Any]:
        case = self.case_at(position)
        image = self._base[case]["image"]
        seed = derive_seed(self.seed, _PURPOSE_CROP, int(position))
        if self.view_offset is not None:
            u, v = self._near_views(image, seed)
        else:
            u = self._view(image, seed)
            v = self._view(image, derive_seed(seed, 1))
        return {"u": u, "v": v, "position": int(position), "case": case}


class StepSampler(Sampler[int]):
    """Yields this rank's sample positions for steps ``start_step .. total_steps-1`` (see module docstring)."""

    def __init__(self, batch_size: int, world_size: int = 1, rank: int = 0, start_step: int = 0,
                 total_steps: int = 1) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be > 0, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")
        self.batch_size, self.world_size, self.rank = batch_size, world_size, rank
        self.start_step, self.total_steps = start_step, total_steps

    def positions(self, step: int) -> list[int]:
        base = step * self.batch_size * self.world_size + self.rank * self.batch_size
        return list(range(base, base + self.batch_size))

    def __iter__(self) -> Iterator[int]:
        for step in range(self.start_step, self.total_steps):
            yield from self.positions(step)

    def __len__(self) -> int:
        return max(self.total_steps - self.start_step, 0) * self.batch_size


def collate_views(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"u": torch.stack([i["u"] for i in items]), "v": torch.stack([i["v"] for i in items]),
            "position": torch.tensor([i["position"] for i in items], dtype=torch.long),
            "case": torch.tensor([i["case"] for i in items], dtype=torch.long)}
