"""Issue #10, kind 4 in zero-shot: the consensus is compared with the CT in physical space."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from smart.data.io import ImageReadError
from smart.eval.metrics import dice
from smart.eval.zeroshot import load_case_arrays, run_zeroshot

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
    hu, cons = load_case_arrays(tmp_path / "ct.nii.gz", tmp_path / "consensus.nrrd", spacing)
    assert hu.shape == cons.shape == truth.shape
    assert dice(cons, truth) == 1.0  # index-wise the files overlap nowhere (DSC 0)
    assert dice(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "consensus.nrrd"))) > 0, truth) == 0.0


def test_run_counts_the_physical_consensus_and_rejects_no_overlap(tmp_path):
    truth = _case(tmp_path)
    pd.DataFrame([{"case_id": "c1", "image": "ct.nii.gz", "consensus": "consensus.nrrd"}]).to_csv(
        tmp_path / "raters.csv", index=False)
    run_zeroshot("random", tmp_path / "raters.csv", tmp_path / "out", crop=(16, 16, 16), spacing=None)
    row = pd.read_csv(tmp_path / "out" / "dsc.csv").iloc[0]
    assert row.n_consensus == int(truth.sum()) and row.coverage == 1.0
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["n_cases"] == 1
    far = sitk.ReadImage(str(tmp_path / "consensus.nrrd"))
    far.SetOrigin([o + 400.0 for o in far.GetOrigin()])
    sitk.WriteImage(far, str(tmp_path / "consensus.nrrd"))
    with pytest.raises(ImageReadError, match="does not overlap CT"):
        run_zeroshot("random", tmp_path / "raters.csv", tmp_path / "out2", crop=(16, 16, 16), spacing=None)
