"""``smart zeroshot`` end to end on tiny generated raters (real encoder, real files)."""

import json

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from smart.cli import main


def _nifti(array, path, spacing=2.0):
    img = sitk.GetImageFromArray(array)
    img.SetSpacing((spacing,) * 3)
    sitk.WriteImage(img, str(path))


@pytest.fixture
def raters(tmp_path):
    rng = np.random.default_rng(1)
    rows = []
    for c in range(2):
        hu = np.full((36, 40, 40), -1000, np.float32)
        hu[:, 6:34, 6:34] = 20.0                                      # chest wall ...
        hu[:, 10:30, 10:30] = rng.normal(-850, 40, (36, 20, 20))     # ... around lung; air outside
        cons = np.zeros(hu.shape, np.uint8)
        cons[14 + c:22 + c, 16:24, 16:24] = 1
        hu[cons > 0] = 30.0
        _nifti(hu, tmp_path / f"ct{c}.nii.gz")
        _nifti(cons, tmp_path / f"cons{c}.nii.gz")
        rows.append({"case_id": f"case{c}", "image": f"ct{c}.nii.gz", **{f"rater{r}": f"cons{c}.nii.gz" for r in range(1, 6)},
                     "consensus": f"cons{c}.nii.gz"})
    pd.DataFrame(rows).to_csv(tmp_path / "raters.csv", index=False)
    return tmp_path / "raters.csv"


def test_zeroshot_encoder_and_random(raters, tiny_encoder, tmp_path):
    common = ["--raters", str(raters), "--crop", "32", "32", "32", "--spacing", "0", "--device", "cpu"]
    assert main(["zeroshot", "--encoder", str(tiny_encoder), "--out", str(tmp_path / "enc"), *common]) == 0
    assert main(["zeroshot", "--encoder", "random", "--out", str(tmp_path / "rnd"), "--random-grid", "2", "2", "2",
                 *common]) == 0
    for name in ("enc", "rnd"):
        dsc = pd.read_csv(tmp_path / name / "dsc.csv")
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        assert dsc.case_id.tolist() == ["case0", "case1"]
        assert ((dsc.dsc >= 0) & (dsc.dsc <= 1)).all() and (dsc.coverage == 1.0).all()
        # body = 32 x 28 x 28 voxels inside the 32^3 crop -> the top 10 % by attention
        assert (dsc.n_body == 32 * 28 * 28).all() and (dsc.n_pred <= int(np.ceil(0.1 * 32 * 28 * 28))).all()
        assert summary["dsc_mean"] == pytest.approx(dsc.dsc.mean()) and summary["n_cases"] == 2
        assert (tmp_path / name / "overlays.png").is_file()
    assert json.loads((tmp_path / "rnd" / "summary.json").read_text())["method"] == "random"
    assert json.loads((tmp_path / "enc" / "summary.json").read_text())["method"] == "smart"


def test_zeroshot_missing_column(tmp_path, capsys):
    (tmp_path / "r.csv").write_text("case_id,image\nc,x.nii.gz\n")
    # bad input: one line on stderr and exit status 2 (smart.cli), not a traceback
    assert main(["zeroshot", "--encoder", "random", "--raters", str(tmp_path / "r.csv"), "--out", str(tmp_path / "o")]) == 2
    assert "missing columns" in capsys.readouterr().err


def test_zeroshot_crops_of_mostly_padding(raters, tmp_path, capsys):
    # 36 slices under a 160-voxel crop: 22.5 % of the crop is image (< 25 %, smart.data.crop_window) for every case
    args = ["zeroshot", "--encoder", "random", "--raters", str(raters), "--out", str(tmp_path / "o"), "--crop", "160",
            "40", "40", "--spacing", "0"]
    assert main(args) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[:2] == [f"smart zeroshot: excluded case case{c}: {tmp_path / f'ct{c}.nii.gz'}: no image: only 22.5% of "
                       f"the crop (160, 40, 40) lies inside the image (36, 40, 40) (minimum 25%): the rest would be "
                       f"padding" for c in range(2)]
    assert err[2].startswith(f"smart zeroshot: error: {raters}: every case is excluded") and len(err) == 3
    assert main(args[:-6] + ["--crop", "144", "40", "40", "--spacing", "0"]) == 0  # 36/144 = 25 %: kept
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["n_cases"] == 2 and summary["n_excluded"] == 0
    assert pd.read_csv(tmp_path / "o" / "excluded.csv").empty
