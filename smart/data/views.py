"""Two-view pretraining data (Sec. III-C, IV-C): two random 3D crops ``u, v`` of one resampled CT.

Reproducibility contract (what makes ``--resume`` bit-exact and DDP equal to one process at the same global batch):
the training stream is an infinite sequence of *sample positions* ``p = step * global_batch + k``. Position ``p``
reads case ``perm_e[p mod n]`` of epoch ``e = p // n`` (``perm_e`` a permutation seeded by ``(seed, e)``), and its
crops/flips come from a NumPy generator seeded by ``(seed, p)``. Rank ``r`` of ``W`` takes positions
``k = r*B .. r*B+B-1`` of each step. Nothing depends on iterator state, so a resumed run just starts at its step.

Loading: each CT is read through a memory-mapped uncompressed copy (:mod:`smart.data.volume_store`), axes
``(D, H, W) = (z, y, x)`` like every other network input (docs/ARCHITECTURE.md "Axes"). A view is a random crop (a
short axis is taken whole and padded with air, like MONAI ``SpatialPad`` + ``RandSpatialCrop``), converted with
``hu_to_unit`` and flipped per axis with probability 1/2; only the crop's voxels are copied, so per-process memory
does not grow with the number of CTs (an in-RAM float32 cache of the paper's 10,412 CTs would be ~251 GB per rank).

``view_offset`` (config ``data.view_offset``, voxels; ``None`` = the two crops are independent) draws *overlapping
views inside the body*: ``u``'s centre is a random body voxel (> ``BODY_HU``) among the centres a full crop allows,
and ``v``'s centre is ``u``'s shifted by at most ``view_offset`` voxels per axis (clipped to the volume). The body
voxels come from an index stored once per CT and crop size beside its memory-mapped copy
(:mod:`smart.data.body_index`), so a sample reads the two crops, not the whole CT. Independent
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

from smart.data.body_index import (BODY_HU, body_runs, candidate_count, corner_at, corner_grid, open_body_index,
                                   padding)
from smart.data.intensity import hu_to_unit
from smart.data.volume_store import load_zyx, open_stored
from smart.seeding import derive_seed  # its home is smart.seeding; kept importable here for existing callers

MANIFEST_COLUMNS = ("case_id", "path", "status")
__all__ = ["BODY_HU", "MANIFEST_COLUMNS", "StepSampler", "TwoViewDataset", "collate_views", "crop_box", "derive_seed",
           "near_views", "padded_crop", "random_view", "read_manifest"]
_PURPOSE_EPOCH = 1
_PURPOSE_CROP = 2


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


def crop_box(shape: Sequence[int], crop_size: Sequence[int], rng: np.random.Generator) -> tuple[list[slice], list[tuple[int, int]]]:
    """A random crop window of a ``(D, H, W)`` volume: per axis the source slice and the ``(before, after)`` padding.

    An axis at least as long as the crop starts uniformly in ``[0, size - crop]``; a shorter one is taken whole and
    padded symmetrically (``before = (crop - size) // 2``, MONAI ``SpatialPad``'s split).
    """
    slices, pads = [], []
    for size, crop in zip(shape, crop_size):
        if size >= crop:
            start = int(rng.integers(0, size - crop + 1))
            slices.append(slice(start, start + crop))
            pads.append((0, 0))
        else:
            slices.append(slice(0, size))
            pads.append(((crop - size) // 2, crop - size - (crop - size) // 2))
    return slices, pads


def random_view(volume: np.ndarray, crop_size: Sequence[int], seed: int) -> torch.Tensor:
    """One view ``(1, D, H, W)`` float32 in [0, 1]: a random crop of the HU ``volume`` ``(D, H, W)``, air-padded, and
    a flip per axis with probability 1/2, all drawn from ``seed``.

    Only the crop's voxels are read (``volume`` may be a memory map) and converted (:func:`hu_to_unit`); padding is
    0 = air, as everywhere in the pipeline.
    """
    rng = np.random.default_rng(seed)
    slices, pads = crop_box(volume.shape, crop_size, rng)
    flips = rng.random(3) < 0.5
    view = hu_to_unit(np.array(volume[tuple(slices)]))
    if any(before or after for before, after in pads):
        view = np.pad(view, pads, constant_values=0.0)
    axes = tuple(int(a) for a in np.flatnonzero(flips))
    if axes:
        view = np.flip(view, axis=axes)
    return torch.from_numpy(np.ascontiguousarray(view, dtype=np.float32))[None]


def padded_crop(volume: np.ndarray, corner: Sequence[int], crop_size: Sequence[int]) -> np.ndarray:
    """The crop at ``corner`` of the air-padded volume (:func:`smart.data.body_index.padding`), float32 in [0, 1]:
    only the crop's voxels of the HU ``volume`` (a memory map is fine) are read and converted (:func:`hu_to_unit`),
    the part outside the CT is 0 = air."""
    pads = padding(volume.shape, crop_size)
    src, fill = [], []
    for q, c, s, (before, _) in zip(corner, crop_size, volume.shape, pads):
        lo, hi = q - before, q - before + c  # the crop in CT coordinates; outside [0, s) is padding
        src.append(slice(max(lo, 0), min(hi, s)))
        fill.append((max(-lo, 0), max(hi - s, 0)))
    crop = hu_to_unit(np.array(volume[tuple(src)]))
    if any(before or after for before, after in fill):
        crop = np.pad(crop, fill, constant_values=0.0)
    return crop


def near_views(volume: np.ndarray, crop_size: Sequence[int], view_offset: int, seed: int,
               body: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Two views ``(1, D, H, W)`` float32 in [0, 1] whose crop corners differ by at most ``view_offset`` voxels per
    axis, the first centred on a body voxel (> ``BODY_HU``); each flipped per axis with probability 1/2, all drawn
    from ``seed`` (module docstring, ``view_offset``).

    ``body`` is the HU ``volume``'s body index for ``crop_size`` (:mod:`smart.data.body_index`, stored once per CT);
    then only the index entries of the drawn corner and the two crops are read. Without it the index is built here
    from the whole volume (a transient float32 copy of one CT). Both give the same views for the same ``seed``.
    """
    rng = np.random.default_rng(seed)
    crop_size = [int(c) for c in crop_size]
    if body is None:
        body = body_runs(volume, crop_size)
    grid = corner_grid(volume.shape, crop_size)
    total = candidate_count(body)
    if total:
        corner = corner_at(body, int(rng.integers(total)), grid)
    else:  # no body voxel (an all-air pad): any corner
        corner = [int(rng.integers(g)) for g in grid]
    shifted = [min(max(c + int(rng.integers(-view_offset, view_offset + 1)), 0), g - 1) for c, g in zip(corner, grid)]
    views = []
    for start in (corner, shifted):
        crop = padded_crop(volume, start, crop_size)
        axes = tuple(a for a in range(3) if rng.random() < 0.5)
        if axes:
            crop = np.flip(crop, axis=axes)
        views.append(torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32))[None])
    return views[0], views[1]


class TwoViewDataset(Dataset):
    """``dataset[p]`` -> ``{"u": (1,D,H,W), "v": (1,D,H,W), "position": p, "case": i}`` for sample position ``p``.

    ``cache=True`` reads the CTs through their memory-mapped uncompressed copies (:mod:`smart.data.volume_store`,
    created on first use by whichever process needs one): resident memory does not grow with the number of CTs.
    ``cache=False`` decodes the NIfTI at every read (no extra disk; slow). Both give identical views.
    ``num_workers`` is accepted for the caller's symmetry and unused: nothing is preloaded.
    """

    def __init__(self, paths: Sequence[str], crop_size: Sequence[int], seed: int = 0, cache: bool = True,
                 num_workers: int = 0, view_offset: int | None = None) -> None:
        if len(paths) == 0:
            raise ValueError("TwoViewDataset needs at least one image path")
        if len(crop_size) != 3 or any(int(c) <= 0 for c in crop_size):
            raise ValueError(f"crop_size must be three positive ints, got {crop_size!r}")
        self.paths = list(paths)
        self.crop_size = [int(c) for c in crop_size]
        self.seed = int(seed)
        self.cache = bool(cache)
        if view_offset is not None and int(view_offset) < 0:
            raise ValueError(f"view_offset must be >= 0 voxels or None, got {view_offset!r}")
        self.view_offset = None if view_offset is None else int(view_offset)

    def __len__(self) -> int:
        # Positions are unbounded; the sampler decides which are read. len = cases, for DataLoader bookkeeping.
        return len(self.paths)

    def case_at(self, position: int) -> int:
        n = len(self.paths)
        epoch, offset = divmod(int(position), n)
        perm = np.random.default_rng(derive_seed(self.seed, _PURPOSE_EPOCH, epoch)).permutation(n)
        return int(perm[offset])

    def __getitem__(self, position: int) -> dict[str, Any]:
        case = self.case_at(position)
        path = self.paths[case]
        volume = open_stored(path) if self.cache else load_zyx(path)
        seed = derive_seed(self.seed, _PURPOSE_CROP, int(position))
        if self.view_offset is not None:
            # the stored body index of the CT (built once per CT and crop size) spares a whole-volume search per sample
            body = open_body_index(path, self.crop_size) if self.cache else None
            u, v = near_views(volume, self.crop_size, self.view_offset, seed, body=body)
            del body
        else:
            u = random_view(volume, self.crop_size, seed)
            v = random_view(volume, self.crop_size, derive_seed(seed, 1))
        del volume  # unmap: the crops are copies
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
    """Stack the views; ``position`` stays a tuple of host ints (the step derives per-sample seeds from it, and a
    tensor would be moved to the GPU by DDP and read back every step)."""
    return {"u": torch.stack([i["u"] for i in items]), "v": torch.stack([i["v"] for i in items]),
            "position": tuple(int(i["position"]) for i in items),
            "case": torch.tensor([i["case"] for i in items], dtype=torch.long)}
