"""90th-percentile thresholding, cropping and the per-case DSC on known maps."""

import json

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import torch

from smart.data.io import ImageReadError
from smart.eval import zeroshot


def test_percentile_exact_count_inside_region():
    rng = np.random.default_rng(0)
    att = rng.permutation(4000).reshape(10, 20, 20).astype(float)   # distinct values
    region = np.zeros_like(att, bool)
    region[:5] = True                                             # 2000 region voxels
    seg = zeroshot.percentile_segmentation(att, region, 90.0)
    # linear percentile at 0.9*(2000-1) = 1799.1 -> values strictly above it: ranks 1800..1999 = 200 voxels
    assert seg.sum() == 200
    assert not seg[5:].any()
    top = np.sort(att[region])[-200:]
    assert set(att[seg].tolist()) == set(top.tolist())


def test_percentile_rejects_bad_q():
    with pytest.raises(ValueError, match="percentile q"):
        zeroshot.percentile_segmentation(np.zeros(3), np.ones(3, bool), 100.0)


def test_crop_box_and_extract_pad_with_fill():
    vol = np.arange(4 * 6 * 6, dtype=np.float32).reshape(4, 6, 6)
    body = np.zeros(vol.shape, bool)
    body[1:3, 4:6, 4:6] = True
    starts = zeroshot.crop_box(body, (8, 4, 4))
    assert starts == [-2, 2, 2]          # D padded (4 < 8), H/W centred on the body and clamped at the edge
    out = zeroshot.extract(vol, starts, (8, 4, 4), -1000.0)
    assert out.shape == (8, 4, 4)
    assert (out[:2] == -1000).all() and (out[6:] == -1000).all()
    np.testing.assert_array_equal(out[2:6], vol[:, 2:6, 2:6])


def test_body_mask_fills_lungs_per_slice():
    hu = np.full((3, 10, 10), -1000.0)
    hu[:, 2:8, 2:8] = 40.0       # chest wall
    hu[:, 3:7, 3:7] = -850.0     # lungs, enclosed in every slice
    body = zeroshot.body_mask(hu)
    assert body.sum() == 3 * 36 and not body[:, :2].any()


def test_upsample_constant_and_random_map():
    up = zeroshot.upsample_attention(torch.full((8,), 0.125), (2, 2, 2), (8, 8, 8))
    assert up.shape == (8, 8, 8) and np.allclose(up, 0.125)
    a = zeroshot.random_attention((2, 2, 2), seed=1)
    assert torch.equal(a, zeroshot.random_attention((2, 2, 2), seed=1)) and a.sum().item() == pytest.approx(1.0)


def test_evaluate_case_attention_on_tumour(tmp_path):
    hu = np.full((16, 16, 16), -1000.0, np.float32)
    hu[:, 2:14, 2:14] = 0.0                 # body: 16*12*12 = 2304 voxels
    cons = np.zeros(hu.shape, bool)
    cons[4:8, 4:8, 4:8] = True              # tumour in the first mask-grid cell (grid 2^3 of 8^3 voxels)

    def attention_fn(hu_crop):
        att = torch.zeros(8)
        att[0] = 1.0                        # all attention on grid cell (0,0,0)
        return att, (2, 2, 2)

    r = zeroshot.evaluate_case("c1", hu, cons, (16, 16, 16), attention_fn)
    assert r.n_body == 2304 and r.coverage == 1.0
    assert 0 < r.n_pred <= int(np.ceil(0.1 * 2304))
    assert r.dsc == pytest.approx(2 * (r.prediction & cons).sum() / (r.n_pred + 64))
    # trilinear attention decays away from cell (0,0,0): every selected voxel lies in that octant, and hits the tumour
    assert r.prediction[8:].sum() == 0 and r.prediction[:, 8:].sum() == 0 and r.prediction[:, :, 8:].sum() == 0
    assert r.dsc > 0.15   # at most 2*64/(226+64) = 0.44 with 226 predicted voxels
    assert zeroshot.plot_overlays([r], tmp_path / "o.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_case_shape_mismatch():
    with pytest.raises(ValueError, match="c2: CT"):
        zeroshot.evaluate_case("c2", np.zeros((4, 4, 4)), np.zeros((4, 4, 3)), (4, 4, 4), None)


def test_overlay_figure_shows_every_case_with_legend_colour_bar_and_name():
    hu = np.full((16, 16, 16), -1000.0, np.float32)
    hu[:, 2:14, 2:14] = 0.0
    cons = np.zeros(hu.shape, bool)
    cons[4:8, 4:8, 4:8] = True

    def attention_fn(hu_crop):
        return torch.arange(8, dtype=torch.float32), (2, 2, 2)

    cases = [zeroshot.evaluate_case(f"c{i}", hu, cons, (16, 16, 16), attention_fn) for i in range(4)]
    fig = zeroshot.overlay_figure(cases, title="smart_no_nt (method smart): zero-shot DSC")
    titles = [ax.get_title() for ax in fig.axes]
    assert [t.split()[0] for t in titles if t.startswith("c")] == ["c0", "c1", "c2", "c3"]   # all 4 cases
    assert fig._suptitle.get_text().startswith("smart_no_nt")
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["5-rater consensus",
                                                                  "attention > 90th percentile (body)"]
    bars = [ax for ax in fig.axes if ax.get_ylabel() == "attention (SA map, upsampled)"]
    assert len(bars) == 1 and bars[0].get_ylim() == pytest.approx((0.0, 7.0))  # one scale: the range of all maps
    import matplotlib.pyplot as plt
    plt.close(fig)


# ---------------------------------------------------------------- issue #10 kind 4: consensus in physical space

FLIP = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)


def _case(tmp_path):
    """CT with direction diag(-1,-1,1) (body + off-centre tumour) and the tumour's consensus as an NRRD with an
    identity direction, same size and spacing, covering the same physical voxels (mirrored indices)."""
    shape = (16, 20, 24)
    hu = np.full(shape, -1000, np.int16)
    hu[2:14, 3:17, 3:21] = 30
    truth = np.zeros(shape, bool)
    truth[5:9, 4:8, 4:9] = True
    hu[truth] = 60
    ct = sitk.GetImageFromArray(hu)
    ct.SetSpacing((2.0, 2.0, 2.0))
    ct.SetDirection(FLIP)
    ct.SetOrigin((60.0, 50.0, -20.0))
    sitk.WriteImage(ct, str(tmp_path / "ct.nii.gz"))
    nx, ny, _ = ct.GetSize()
    cons = sitk.GetImageFromArray(truth[:, ::-1, ::-1].astype(np.uint8))
    cons.SetSpacing(ct.GetSpacing())
    cons.SetOrigin(ct.TransformIndexToPhysicalPoint((nx - 1, ny - 1, 0)))
    sitk.WriteImage(cons, str(tmp_path / "consensus.nrrd"))
    return truth


@pytest.mark.parametrize("spacing", [None, 2.0])
def test_consensus_in_physical_space(tmp_path, spacing):
    truth = _case(tmp_path)
    hu, cons = zeroshot.load_case_arrays(tmp_path / "ct.nii.gz", tmp_path / "consensus.nrrd", spacing)
    assert hu.shape == cons.shape == truth.shape
    assert zeroshot.dice(cons, truth) == 1.0  # index-wise the files overlap nowhere (DSC 0)
    assert zeroshot.dice(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "consensus.nrrd"))) > 0, truth) == 0.0


def test_run_counts_the_physical_consensus_and_rejects_no_overlap(tmp_path):
    truth = _case(tmp_path)
    pd.DataFrame([{"case_id": "c1", "image": "ct.nii.gz", "consensus": "consensus.nrrd"}]).to_csv(
        tmp_path / "raters.csv", index=False)
    zeroshot.run_zeroshot("random", tmp_path / "raters.csv", tmp_path / "out", crop=(16, 16, 16), spacing=None)
    row = pd.read_csv(tmp_path / "out" / "dsc.csv").iloc[0]
    assert row.n_consensus == int(truth.sum()) and row.coverage == 1.0
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["n_cases"] == 1
    far = sitk.ReadImage(str(tmp_path / "consensus.nrrd"))
    far.SetOrigin([o + 400.0 for o in far.GetOrigin()])
    sitk.WriteImage(far, str(tmp_path / "consensus.nrrd"))
    with pytest.raises(ImageReadError, match="does not overlap CT"):
        zeroshot.run_zeroshot("random", tmp_path / "raters.csv", tmp_path / "out2", crop=(16, 16, 16), spacing=None)


def test_crop_of_mostly_padding_is_excluded_and_counted(tmp_path, capsys):
    # Issue 20, item 7 (zero-shot crops): a CT of 3 slices gives a 16^3 crop that is 3/16 image (below the 25 % of
    # smart.data.crop_window); the case is excluded with the reason, the others are evaluated, the summary counts it.
    _case(tmp_path)
    hu = np.full((3, 20, 24), -1000, np.int16)
    hu[:, 3:17, 3:21] = 30
    thin = sitk.GetImageFromArray(hu)
    thin.SetSpacing((2.0, 2.0, 2.0))
    sitk.WriteImage(thin, str(tmp_path / "thin.nii.gz"))
    cons = sitk.GetImageFromArray((hu > 0).astype(np.uint8))
    cons.CopyInformation(thin)
    sitk.WriteImage(cons, str(tmp_path / "thin_consensus.nii.gz"))
    pd.DataFrame([{"case_id": "c1", "image": "ct.nii.gz", "consensus": "consensus.nrrd"},
                  {"case_id": "thin", "image": "thin.nii.gz", "consensus": "thin_consensus.nii.gz"}]).to_csv(
        tmp_path / "raters.csv", index=False)
    summary = zeroshot.run_zeroshot("random", tmp_path / "raters.csv", tmp_path / "out", crop=(16, 16, 16),
                                    spacing=None)
    assert summary["n_cases"] == 1 and summary["n_excluded"] == 1
    assert pd.read_csv(tmp_path / "out" / "dsc.csv").case_id.tolist() == ["c1"]
    excluded = pd.read_csv(tmp_path / "out" / "excluded.csv")
    assert excluded.case_id.tolist() == ["thin"] and excluded.file.item() == str(tmp_path / "thin.nii.gz")
    assert excluded.reason.item() == ("no image: only 18.8% of the crop (16, 16, 16) lies inside the image "
                                      "(3, 20, 24) (minimum 25%): the rest would be padding")
    assert capsys.readouterr().err == (f"smart zeroshot: excluded case thin: {tmp_path / 'thin.nii.gz'}: "
                                       f"{excluded.reason.item()}\n")
    pd.DataFrame([{"case_id": "thin", "image": "thin.nii.gz", "consensus": "thin_consensus.nii.gz"}]).to_csv(
        tmp_path / "only_thin.csv", index=False)
    with pytest.raises(ValueError, match="every case is excluded .*thin.nii.gz: no image: only 18.8%"):
        zeroshot.run_zeroshot("random", tmp_path / "only_thin.csv", tmp_path / "out2", crop=(16, 16, 16),
                              spacing=None)
