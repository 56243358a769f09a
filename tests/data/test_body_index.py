"""smart.data.body_index: the stored run-length index of body corners gives exactly the corners (and so the views)
that a search of the whole converted CT gives — the views drawn for a seed did not change when it replaced that
search (resume / DDP determinism, smart.data.views)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from smart.data import body_index
from smart.data.intensity import hu_to_unit
from smart.data.views import TwoViewDataset, derive_seed, near_views


def whole_volume_near_views(volume, crop_size, view_offset, seed):
    """The draw as written before the index: convert and pad the whole CT, np.argwhere the body centres."""
    rng = np.random.default_rng(seed)
    unit = hu_to_unit(np.asarray(volume, dtype=np.float32))
    pads = [((c - s) // 2, c - s - (c - s) // 2) if s < c else (0, 0) for s, c in zip(unit.shape, crop_size)]
    unit = np.pad(unit, pads, constant_values=0.0)
    hi = [s - c for s, c in zip(unit.shape, crop_size)]
    half = [c // 2 for c in crop_size]
    window = unit[half[0]:half[0] + hi[0] + 1, half[1]:half[1] + hi[1] + 1, half[2]:half[2] + hi[2] + 1]
    body = np.argwhere(window > float(hu_to_unit(np.array([-500.0]))[0]))
    if len(body):
        corner = body[int(rng.integers(len(body)))].tolist()
    else:
        corner = [int(rng.integers(h + 1)) for h in hi]
    shifted = [min(max(c + int(rng.integers(-view_offset, view_offset + 1)), 0), h) for c, h in zip(corner, hi)]
    views = []
    for start in (corner, shifted):
        crop = unit[start[0]:start[0] + crop_size[0], start[1]:start[1] + crop_size[1], start[2]:start[2] + crop_size[2]]
        axes = tuple(a for a in range(3) if rng.random() < 0.5)
        if axes:
            crop = np.flip(crop, axis=axes)
        views.append(torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32))[None])
    return views


def phantom(shape, seed=0, dtype=np.int16):
    """Air with an ellipsoid body holding darker 'lungs' (runs of body voxels broken inside each row)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    hu = np.full(shape, -1000.0)
    hu[(z / 0.9) ** 2 + (y / 0.8) ** 2 + (x / 0.9) ** 2 < 1] = 40.0
    hu[((x - 0.35) / 0.25) ** 2 + (y / 0.5) ** 2 + (z / 0.6) ** 2 < 1] = -850.0
    hu[((x + 0.35) / 0.25) ** 2 + (y / 0.5) ** 2 + (z / 0.6) ** 2 < 1] = -850.0
    hu += rng.normal(0, 30, shape)
    return hu.astype(dtype) if dtype == np.int16 else hu.astype(dtype)


CASES = [((30, 34, 28), (16, 16, 16)),        # every axis longer than the crop
         ((12, 40, 9), (16, 15, 16)),         # short axes are air-padded (odd crop too)
         ((16, 16, 16), (16, 16, 16))]        # one corner only


@pytest.mark.parametrize("shape, crop", CASES)
def test_runs_enumerate_the_argwhere_corners_in_order(shape, crop):
    volume = phantom(shape)
    unit = np.pad(hu_to_unit(volume.astype(np.float32)), body_index.padding(shape, crop))
    grid = body_index.corner_grid(shape, crop)
    half = [c // 2 for c in crop]
    window = unit[tuple(slice(h, h + g) for h, g in zip(half, grid))]
    expected = np.argwhere(window > float(hu_to_unit(np.array([-500.0]))[0]))
    runs = body_index.body_runs(volume, crop)
    assert runs.dtype == np.int64 and runs.shape[0] == 2
    assert body_index.candidate_count(runs) == len(expected) > 0
    assert [body_index.corner_at(runs, k, grid) for k in range(len(expected))] == expected.tolist()


def test_an_all_air_ct_has_no_candidates():
    runs = body_index.body_runs(np.full((20, 20, 20), -1000, np.int16), (8, 8, 8))
    assert body_index.candidate_count(runs) == 0 and runs.tolist() == [[13 ** 3], [0]]


@pytest.mark.parametrize("shape, crop", CASES + [((20, 20, 20), (8, 8, 8))])
def test_views_equal_the_whole_volume_search_for_every_seed(shape, crop):
    volume = phantom(shape, seed=1) if shape != (20, 20, 20) else np.full(shape, -1000, np.int16)
    runs = body_index.body_runs(volume, crop)
    for seed in range(25):
        expected = whole_volume_near_views(volume, crop, 3, seed)
        for got in (near_views(volume, crop, 3, seed, body=runs), near_views(volume, crop, 3, seed)):
            assert all(torch.equal(g, e) for g, e in zip(got, expected)), seed


def test_the_dataset_stores_one_index_per_ct_and_crop_and_draws_the_same_views(tmp_path):
    import nibabel as nib

    volume = phantom((28, 36, 30), seed=2)                          # (z, y, x)
    path = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(volume.transpose(2, 1, 0), np.diag([2.0, 2.0, 2.0, 1.0])), path)
    crop = (16, 16, 16)
    cached = TwoViewDataset([str(path)], crop, seed=4, cache=True, view_offset=4)
    decoded = TwoViewDataset([str(path)], crop, seed=4, cache=False, view_offset=4)
    for position in range(6):
        a, b = cached[position], decoded[position]
        expected = whole_volume_near_views(volume, crop, 4, derive_seed(4, 2, position))
        assert torch.equal(a["u"], expected[0]) and torch.equal(a["v"], expected[1])
        assert torch.equal(b["u"], a["u"]) and torch.equal(b["v"], a["v"])
    index = body_index.index_path(path, crop)
    assert index.parent.name == ".int16" and index.name.endswith(".body-500.16x16x16.npy")
    stamp = index.stat().st_mtime_ns
    cached[7]
    assert index.stat().st_mtime_ns == stamp                         # built once, then only read
    assert np.array_equal(np.load(index), body_index.body_runs(volume, crop))
    TwoViewDataset([str(path)], (8, 8, 8), seed=4, cache=True, view_offset=4)[0]
    assert body_index.index_path(path, (8, 8, 8)).is_file()          # another crop size, another index


def test_an_unwritable_index_is_a_clear_error(tmp_path):
    import nibabel as nib

    path = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(phantom((20, 20, 20)), np.eye(4)), path)
    body_index.index_path(path, (8, 8, 8)).mkdir(parents=True)     # a folder where the index file should be
    with pytest.raises(ValueError, match=r"ct\.nii\.gz: cannot write its body index"):
        body_index.ensure_body_index(path, (8, 8, 8))
