"""Issue #10, kind 4: masks compared with their CT in physical space (smart.data.masks), never index by index."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from smart.data.masks import mask_on_grid, read_mask
from smart.data.validation import ImageReadError

FLIP = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)


def flipped_ct_and_tumour(shape_zyx=(10, 12, 14), spacing=(1.5, 1.5, 2.0)):
    """A CT grid stored with direction diag(-1,-1,1) and a tumour mask (z, y, x) on it, off-centre so a mirror
    image of it does not overlap itself."""
    truth = np.zeros(shape_zyx, bool)
    truth[3:7, 1:5, 2:6] = True
    ct = sitk.GetImageFromArray(np.full(shape_zyx, -1000, np.int16))
    ct.SetSpacing(spacing)
    ct.SetDirection(FLIP)
    ct.SetOrigin((100.0, 80.0, -30.0))
    return ct, truth


def identity_copy(ct: sitk.Image, truth: np.ndarray) -> sitk.Image:
    """The same physical tumour on an identity-direction grid of the same size and spacing (what Slicer writes)."""
    nx, ny, _ = ct.GetSize()
    mask = sitk.GetImageFromArray(truth[:, ::-1, ::-1].astype(np.uint8))
    mask.SetSpacing(ct.GetSpacing())
    mask.SetOrigin(ct.TransformIndexToPhysicalPoint((nx - 1, ny - 1, 0)))
    return mask


def test_identity_nrrd_mask_on_flipped_ct(tmp_path):
    """The issue's example: index-wise the mask is mirrored (no overlap with the truth); physically it is exact."""
    ct, truth = flipped_ct_and_tumour()
    mask = identity_copy(ct, truth)
    sitk.WriteImage(mask, str(tmp_path / "consensus.nrrd"))
    read = read_mask(tmp_path / "consensus.nrrd")
    assert not (sitk.GetArrayFromImage(read).astype(bool) & truth).any()  # what an index comparison would see
    assert np.array_equal(mask_on_grid(read, ct), truth)


def test_finer_shifted_mask(tmp_path):
    """Second example: the mask on a 2x finer identity-direction grid with its own origin, as a NIfTI. Each fine
    voxel takes the truth of the CT voxel containing its centre (computed here with numpy)."""
    ct, truth = flipped_ct_and_tumour()
    spacing, origin = np.array(ct.GetSpacing()), np.array(ct.GetOrigin())
    direction = np.array(ct.GetDirection()).reshape(3, 3)
    lo = np.minimum(origin, origin + direction @ (spacing * (np.array(ct.GetSize()) - 1)))
    fine_origin = lo - spacing / 4 - 3 * spacing / 2  # fine centres at CT centres -+ s/4, 3 fine voxels of margin
    fine_size = 2 * np.array(ct.GetSize()) + 6
    a, b, c = np.meshgrid(*[np.arange(n) for n in fine_size], indexing="ij")
    points = fine_origin + np.stack([a, b, c], -1) * spacing / 2
    ijk = np.rint((points - origin) @ np.linalg.inv(direction).T / spacing).astype(int)
    inside = np.all((ijk >= 0) & (ijk < np.array(ct.GetSize())), axis=-1)
    fine_xyz = np.zeros(fine_size, np.uint8)
    fine_xyz[inside] = truth[ijk[inside][:, 2], ijk[inside][:, 1], ijk[inside][:, 0]]
    assert int(fine_xyz.sum()) == 8 * int(truth.sum())  # every CT voxel became 2 x 2 x 2
    fine = sitk.GetImageFromArray(fine_xyz.transpose(2, 1, 0).copy())
    fine.SetSpacing(tuple(spacing / 2))
    fine.SetOrigin(tuple(fine_origin))
    sitk.WriteImage(fine, str(tmp_path / "rater.nii.gz"))
    assert np.array_equal(mask_on_grid(read_mask(tmp_path / "rater.nii.gz"), ct), truth)


def test_no_overlap_rejected_empty_kept(tmp_path):
    ct, truth = flipped_ct_and_tumour()
    far = identity_copy(ct, truth)
    far.SetOrigin([o + 500.0 for o in far.GetOrigin()])
    with pytest.raises(ImageReadError, match="does not overlap CT") as info:
        mask_on_grid(far, ct, mask_name=tmp_path / "far.nii.gz")
    assert info.value.path == str(tmp_path / "far.nii.gz") and "mm" in info.value.reason
    empty = identity_copy(ct, np.zeros_like(truth))
    assert not mask_on_grid(empty, ct).any()


def test_lesion_crop_mask_without_overlap_is_rejected(tmp_path):
    """Lesion crops: a mask elsewhere in space is rejected with the reason; the same mask on the CT is cropped
    around its physical centroid."""
    import pandas as pd

    from smart.data.lesion_crops import cut_lesion_crops, read_lesion_table

    ct, truth = flipped_ct_and_tumour()
    hu = sitk.GetArrayFromImage(ct).astype(np.int16)
    hu[truth] = 50
    ct_hu = sitk.GetImageFromArray(hu)
    ct_hu.CopyInformation(ct)
    sitk.WriteImage(ct_hu, str(tmp_path / "ct.nii.gz"))
    near = identity_copy(ct, truth)
    far = identity_copy(ct, truth)
    far.SetOrigin([o - 300.0 for o in far.GetOrigin()])
    sitk.WriteImage(near, str(tmp_path / "near.nrrd"))
    sitk.WriteImage(far, str(tmp_path / "far.nrrd"))
    pd.DataFrame([{"sample_id": s, "patient_id": "p", "image": "ct.nii.gz", "label": 1, "mask": f"{s}.nrrd"}
                  for s in ("near", "far")]).to_csv(tmp_path / "t.csv", index=False)
    cohort, rejected = cut_lesion_crops(read_lesion_table(tmp_path / "t.csv"), tmp_path, tmp_path / "out",
                                        crop_size=4, spacing=1.5)
    assert cohort.sample_id.tolist() == ["near"]
    assert rejected.sample_id.tolist() == ["far"] and "does not overlap CT" in rejected.reason[0]
    crop = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out" / cohort.image[0])))
    assert (crop == 50).sum() > 0.5 * crop.size  # the crop is centred on the tumour (4^3 inside a 4x4x4 block)
