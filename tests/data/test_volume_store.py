"""smart.data.volume_store + the two-view crops read through it: values, dtypes, invalidation, cache on/off equality."""

from __future__ import annotations

import os

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from smart.data.views import TwoViewDataset, random_view
from smart.data.volume_store import STORE_FOLDER, ensure_stored, load_zyx, open_stored, store_path


def _write(path, zyx, spacing=(2.0, 2.0, 2.0)):
    img = sitk.GetImageFromArray(zyx)
    img.SetSpacing(spacing)
    sitk.WriteImage(img, os.fspath(path))
    return path


def _coordinate_volume(shape=(10, 12, 14)):
    # every voxel's HU encodes its (z, y, x): hu = z*200 + y*14 + x - 1000, inside hu_to_unit's [-1000, 1000] window
    z, y, x = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    return (z * 200 + y * 14 + x - 1000).astype(np.int16)


def test_store_keeps_int16_values_axes_and_lives_beside_the_ct(tmp_path):
    vol = _coordinate_volume()
    src = _write(tmp_path / "ct.nii.gz", vol)
    stored = ensure_stored(src)
    assert stored.parent == tmp_path / STORE_FOLDER and stored.name.startswith("ct.")
    arr = np.load(stored)
    assert arr.dtype == np.int16 and arr.shape == vol.shape
    np.testing.assert_array_equal(arr, vol)
    mapped = open_stored(src)
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable


def test_float_volumes_keep_fractions_and_nan(tmp_path):
    vol = np.full((4, 5, 6), -1000.0, np.float32)
    vol[1, 2, 3] = 12.25
    assert load_zyx(_write(tmp_path / "frac.nii.gz", vol)).dtype == np.float32
    vol[0, 0, 0] = np.nan
    got = load_zyx(_write(tmp_path / "nan.nii.gz", vol))
    assert got.dtype == np.float32 and np.isnan(got[0, 0, 0]) and got[1, 2, 3] == 12.25
    whole = np.rint(vol[1:]).astype(np.float32)  # integer-valued floats are stored exactly as int16
    assert load_zyx(_write(tmp_path / "int.nii.gz", whole)).dtype == np.int16


def test_rewritten_ct_gets_a_new_store_file(tmp_path):
    src = _write(tmp_path / "ct.nii.gz", _coordinate_volume())
    first = ensure_stored(src)
    _write(src, _coordinate_volume() + 1)
    os.utime(src, ns=(os.stat(first).st_mtime_ns + 10**9,) * 2)
    second = store_path(src)
    assert second != first and not second.exists()
    np.testing.assert_array_equal(open_stored(src), _coordinate_volume() + 1)


def test_unwritable_folder_is_a_clear_error(tmp_path):
    src = _write(tmp_path / "ct.nii.gz", _coordinate_volume())
    (tmp_path / STORE_FOLDER).write_text("a file where the store folder should be")
    with pytest.raises(ValueError, match=r"ct\.nii\.gz: cannot write its memory-mapped copy"):
        ensure_stored(src)


@pytest.mark.parametrize("seed", range(6))
def test_view_is_a_flipped_window_of_the_volume(seed):
    # decode each view voxel back to source coordinates: every axis must be a run of `crop` consecutive indices
    # (ascending, or descending where flipped) inside the volume, the same run for every line of that axis
    vol = _coordinate_volume()
    crop = (6, 9, 5)
    view = random_view(vol, crop, seed)
    assert view.shape == (1, *crop) and view.dtype == torch.float32
    hu = np.rint(view[0].numpy().astype(np.float64) * 2000 - 1000).astype(int) + 1000
    z, rest = np.divmod(hu, 200)
    y, x = np.divmod(rest, 14)
    for axis, coords in enumerate((z, y, x)):
        line = np.moveaxis(coords, axis, 0).reshape(crop[axis], -1)
        assert np.all(line == line[:, :1])  # constant across the other axes
        run = line[:, 0]
        steps = np.diff(run)
        assert np.all(steps == 1) or np.all(steps == -1)
        assert 0 <= run.min() and run.max() < vol.shape[axis]


def test_short_axes_are_taken_whole_and_padded_with_air():
    vol = np.zeros((3, 20, 4), np.int16)  # 0 HU -> 0.5
    view = random_view(vol, (8, 8, 8), seed=0)[0]
    inside = view == 0.5
    assert int(inside.sum()) == 3 * 8 * 4 and set(torch.unique(view).tolist()) == {0.0, 0.5}
    zs, _, xs = np.nonzero(inside.numpy())
    # before = (8 - n) // 2, after the rest; a flip of the axis swaps the two
    assert sorted(set(zs)) in ([2, 3, 4], [3, 4, 5]) and sorted(set(xs)) == [2, 3, 4, 5]


def test_cached_and_uncached_views_are_identical(tmp_path):
    paths = [str(_write(tmp_path / f"c{i}.nii.gz", _coordinate_volume() + i)) for i in range(3)]
    cached, plain = TwoViewDataset(paths, (8, 8, 8), seed=5, cache=True), TwoViewDataset(paths, (8, 8, 8), seed=5,
                                                                                         cache=False)
    for position in range(7):
        a, b = cached[position], plain[position]
        assert a["case"] == b["case"]
        assert torch.equal(a["u"], b["u"]) and torch.equal(a["v"], b["v"])
    assert len(list((tmp_path / STORE_FOLDER).glob("*.npy"))) == 3
