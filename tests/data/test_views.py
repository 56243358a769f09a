"""smart.data.views: manifest checks before training, reproducible two-view crops, the step sampler."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import torch

from smart.data.cohort import read_cohort
from smart.data.cohort_dataset import CohortDataset
from smart.data.intensity import hu_to_unit
from smart.data.views import StepSampler, TwoViewDataset, read_manifest

from train_helpers import CROP, write_ct, write_manifest


def test_manifest_errors(tmp_path):
    img = write_ct(tmp_path / "a.nii.gz")
    with pytest.raises(ValueError, match="does not exist"):
        read_manifest(tmp_path / "none.csv")
    missing = write_manifest(tmp_path / "m1.csv", [img, tmp_path / "gone.nii.gz"])
    with pytest.raises(ValueError, match=r"1 of 2 'ok' image file\(s\) do not exist: .*gone\.nii\.gz"):
        read_manifest(missing)
    none_ok = write_manifest(tmp_path / "m2.csv", [img], ["rejected"])
    with pytest.raises(ValueError, match="no rows with status == 'ok'"):
        read_manifest(none_ok)
    pd.DataFrame({"case_id": ["a"], "file": [str(img)]}).to_csv(tmp_path / "m3.csv", index=False)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['path', 'status'\]"):
        read_manifest(tmp_path / "m3.csv")


def test_relative_paths_and_status_filter(tmp_path):
    a, b = write_ct(tmp_path / "a.nii.gz"), write_ct(tmp_path / "b.nii.gz", seed=1)
    pd.DataFrame({"case_id": ["a", "b", "c"], "path": ["a.nii.gz", str(b), "gone.nii.gz"],
                  "status": ["ok", "ok", "error"]}).to_csv(tmp_path / "m.csv", index=False)
    assert read_manifest(tmp_path / "m.csv") == [str(a.resolve()), str(b)]


def test_views_are_reproducible_padded_and_in_unit_range(tmp_path):
    # constant 0 HU (-> 0.5) and smaller than the crop on two axes: zeros can only be padding
    small = write_ct(tmp_path / "small.nii.gz", shape=(20, 24, 40), fill=0.0)
    ds = TwoViewDataset([str(small)], (CROP, CROP, CROP), seed=3, cache=True)
    first, again = ds[7], ds[7]
    assert first["u"].shape == (1, CROP, CROP, CROP) and first["u"].dtype == torch.float32
    assert type(first["u"]) is torch.Tensor
    assert torch.equal(first["u"], again["u"]) and torch.equal(first["v"], again["v"])
    # padding reads as air (hu_to_unit(-1000) == 0); the crop keeps min(size, 32) image voxels per axis
    assert set(torch.unique(first["u"]).tolist()) == {0.0, 0.5}
    assert int((first["u"] == 0.5).sum()) == 20 * 24 * 32

    textured = write_ct(tmp_path / "tex.nii.gz", shape=(40, 40, 40))
    ds = TwoViewDataset([str(textured)], (CROP, CROP, CROP), seed=3)
    assert not torch.equal(ds[0]["u"], ds[0]["v"])  # two different crops of one CT
    assert not torch.equal(ds[0]["u"], ds[1]["u"])  # positions differ
    assert not torch.equal(TwoViewDataset([str(textured)], (CROP,) * 3, seed=4)[0]["u"], ds[0]["u"])  # seeds differ


def test_epochs_visit_every_case_once(tmp_path):
    paths = [str(write_ct(tmp_path / f"c{i}.nii.gz", shape=(8, 8, 8), seed=i)) for i in range(5)]
    ds = TwoViewDataset(paths, (8, 8, 8), seed=0, cache=False)
    for epoch in range(3):
        assert sorted(ds.case_at(epoch * 5 + k) for k in range(5)) == list(range(5))
    assert [ds.case_at(k) for k in range(5)] != [ds.case_at(5 + k) for k in range(5)]  # reshuffled per epoch


def test_ranks_partition_the_single_process_stream():
    single = list(StepSampler(batch_size=4, world_size=1, rank=0, start_step=2, total_steps=5))
    ranks = [list(StepSampler(batch_size=2, world_size=2, rank=r, start_step=2, total_steps=5)) for r in range(2)]
    assert single == list(range(8, 20))
    merged = [p for step in range(3) for r in range(2) for p in ranks[r][2 * step:2 * step + 2]]
    assert merged == single
    with pytest.raises(ValueError, match="rank 2 outside world_size 2"):
        StepSampler(2, world_size=2, rank=2)


# ---- one axis convention for every network input: (B, C, D, H, W) with D = z, the SimpleITK/NumPy array order

SHAPE_ZYX = (6, 10, 14)  # every axis a different length, so a transposition cannot go unnoticed


def _asymmetric_hu() -> np.ndarray:
    z, y, x = np.meshgrid(*[np.arange(n) for n in SHAPE_ZYX], indexing="ij")
    return (-900 + 150 * z + 20 * y + 3 * x).astype(np.int16)  # distinct slopes: each axis identifiable by its values


def test_pretraining_view_and_cohort_crop_share_the_axis_order(tmp_path):
    hu = _asymmetric_hu()
    image = sitk.GetImageFromArray(hu)
    image.SetSpacing((0.7, 1.3, 2.5))  # anisotropic (x, y, z): spacing must not influence the array order
    sitk.WriteImage(image, str(tmp_path / "vol.nii.gz"))
    pd.DataFrame([{"sample_id": "a", "patient_id": "p", "image": "vol.nii.gz", "label": 1}]).to_csv(
        tmp_path / "cohort.csv", index=False)

    crop, _ = CohortDataset(read_cohort(tmp_path / "cohort.csv"), crop_size=SHAPE_ZYX)[0]
    expected = hu_to_unit(torch.from_numpy(hu.astype(np.float32)))[None]
    assert crop.shape == (1, *SHAPE_ZYX)
    torch.testing.assert_close(crop, expected)

    views = TwoViewDataset([str(tmp_path / "vol.nii.gz")], crop_size=SHAPE_ZYX, seed=3, cache=False)
    for position in range(4):
        item = views[position]
        for key in ("u", "v"):
            view = item[key]
            assert view.shape == (1, *SHAPE_ZYX), f"view {key} has axes {tuple(view.shape)}, cohort crop {SHAPE_ZYX}"
            # a same-size random crop is the whole volume; only the random flips may differ from the cohort crop
            flips = [dims for r in range(4) for dims in itertools.combinations((1, 2, 3), r)]
            assert any(torch.allclose(view, torch.flip(crop, dims) if dims else crop) for dims in flips)


def test_near_views_overlap_inside_the_body(tmp_path):
    """data.view_offset: u is centred on a body voxel (> -500 HU) and v's corner is within view_offset voxels of u's,
    so both views share most of their content; the draw is a function of (seed, position) only."""
    import SimpleITK as sitk

    vol = np.full((40, 48, 48), -1000.0, np.float32)
    vol[10:30, 12:36, 12:36] = 40.0  # a soft-tissue "body" in air
    vol += np.random.default_rng(0).normal(0, 5, vol.shape).astype(np.float32)
    img = sitk.GetImageFromArray(vol)
    img.SetSpacing((2.0, 2.0, 2.0))
    path = tmp_path / "body.nii.gz"
    sitk.WriteImage(img, str(path))
    ds = TwoViewDataset([str(path)], (16, 16, 16), seed=1, cache=True, view_offset=3)
    unflipped = []
    for p in range(30):
        item = ds[p]
        u, v = item["u"], item["v"]
        assert u.shape == v.shape == (1, 16, 16, 16)
        assert torch.equal(ds[p]["u"], u) and torch.equal(ds[p]["v"], v)  # position-seeded
        unflipped.append(float((u > 0.25).float().mean()))
    # views centred in the body are mostly body; independent crops of this volume are often mostly air
    assert np.mean(unflipped) > 0.5
    with pytest.raises(ValueError, match="view_offset must be >= 0"):
        TwoViewDataset([str(path)], (16, 16, 16), view_offset=-1)


def test_near_view_corners_differ_by_at_most_the_offset(tmp_path):
    import SimpleITK as sitk

    # A volume whose voxel value encodes its own index, so a crop's first voxel gives its corner.
    d, h, w = 30, 30, 30
    idx = np.arange(d * h * w, dtype=np.float32).reshape(d, h, w)
    hu = -400.0 + idx / idx.max() * 1300.0  # every voxel is "body"
    img = sitk.GetImageFromArray(hu.astype(np.float32))
    path = tmp_path / "ramp.nii.gz"
    sitk.WriteImage(img, str(path))
    ds = TwoViewDataset([str(path)], (8, 8, 8), seed=2, cache=True, view_offset=2)
    unit = (np.clip(hu, -1000, 1000) + 1000) / 2000
    for p in range(20):
        corners = []
        for key in ("u", "v"):
            view = ds[p][key][0].numpy()
            lo = view.min()  # the crop's smallest value sits at its (unflipped) corner
            corner = np.argwhere(np.isclose(unit, lo, atol=1e-7))[0]
            corners.append(corner)
        assert np.abs(corners[0] - corners[1]).max() <= 2


def test_manifest_group_selects_the_pretraining_cts(tmp_path):
    """data.group (Sec. VII lung-only vs non-lung pretraining): only the manifest rows of that group are read; a
    manifest without the column, or a group with no rows, is an error naming the file."""
    images = [write_ct(tmp_path / f"c{i}.nii.gz", shape=(8, 8, 8), seed=i) for i in range(3)]
    manifest = write_manifest(tmp_path / "m.csv", images)
    frame = pd.read_csv(manifest)
    with pytest.raises(ValueError, match=r"m.csv has no 'group' column, but data.group='lung'"):
        read_manifest(manifest, group="lung")
    frame["group"] = ["lung", "other", "lung"]
    frame.to_csv(manifest, index=False)
    assert read_manifest(manifest, group="lung") == [str(images[0].resolve()), str(images[2].resolve())]
    assert read_manifest(manifest, group="other") == [str(images[1].resolve())]
    assert len(read_manifest(manifest)) == 3
    with pytest.raises(ValueError, match=r"no 'ok' rows of group 'head'; its groups: \['lung', 'other'\]"):
        read_manifest(manifest, group="head")
