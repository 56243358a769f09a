"""Rules raters_consensus and response_crops (config block `clinical`) run for real in a throw-away workspace."""

from __future__ import annotations

import numpy as np
import pandas as pd
import SimpleITK as sitk

from workflow_workspace import make_workspace, run_snakemake, tiny_config


def _full_ct_table(root):
    """4 full CTs (identity and flipped directions) with one tumour mask each (stored with its own direction) and a
    second lesion given by its centre: 8 lesion rows, labels 0/1."""
    root.mkdir(parents=True)
    rows = []
    for p in range(4):
        hu = np.full((30, 32, 34), -1000, np.int16)
        hu[3:27, 4:28, 4:30] = 40
        ct = sitk.GetImageFromArray(hu)
        ct.SetSpacing((1.5, 1.5, 2.0))
        if p % 2:
            ct.SetDirection((-1, 0, 0, 0, -1, 0, 0, 0, 1))
        sitk.WriteImage(ct, str(root / f"ct{p}.nii.gz"))
        mask = sitk.Image(ct.GetSize(), sitk.sitkUInt8)
        mask.SetSpacing(ct.GetSpacing())
        mask.SetOrigin(ct.TransformIndexToPhysicalPoint((10, 10, 12)))
        for k in range(4):
            for j in range(4):
                for i in range(4):
                    mask[i, j, k] = 1
        sitk.WriteImage(mask, str(root / f"mask{p}.nrrd"))
        centre = ct.TransformIndexToPhysicalPoint((20, 18, 15))
        rows.append({"sample_id": f"p{p}_a", "patient_id": f"P{p}", "image": f"ct{p}.nii.gz", "label": p % 2,
                     "mask": f"mask{p}.nrrd", "center_x": "", "center_y": "", "center_z": ""})
        rows.append({"sample_id": f"p{p}_b", "patient_id": f"P{p}", "image": f"ct{p}.nii.gz", "label": "DCB",
                     "mask": "", "center_x": centre[0], "center_y": centre[1], "center_z": centre[2]})
    pd.DataFrame(rows).to_csv(root / "lesions.csv", index=False)
    return root / "lesions.csv"


def test_response_crops_and_consensus_rules(tmp_path):
    table = _full_ct_table(tmp_path / "clinic")
    cfg = tiny_config(**{"tasks.response": {"source": "lesions", "cohort": str(table)},
                         "clinical": {"consensus": "majority", "response_crop_size": 16, "response_crop_spacing": 2.0}})
    wf = make_workspace(tmp_path / "wf", cfg)
    targets = ["results/preprocess/response/cohort.csv", "results/preprocess/raters/raters.csv"]
    proc = run_snakemake(wf, "--cores", "1", *targets, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    cohort = pd.read_csv(wf / targets[0])
    assert sorted(cohort.sample_id) == sorted(f"p{p}_{s}" for p in range(4) for s in "ab")
    assert set(cohort.label) == {0, 1}
    for image in cohort.image:
        assert sitk.ReadImage(str(wf / "results/preprocess/response" / image)).GetSize() == (16, 16, 16)
    raters = pd.read_csv(wf / targets[1])
    synth = pd.read_csv(wf / "results/synthetic/raters/raters.csv")
    assert raters.case_id.tolist() == synth.case_id.tolist()
    for case, cons in zip(raters.case_id, raters.consensus):
        votes = sum(sitk.GetArrayFromImage(sitk.ReadImage(str(wf / "results/synthetic/raters" / f)))
                    for f in synth.loc[synth.case_id == case, [f"rater{r}" for r in range(1, 6)]].iloc[0])
        got = sitk.GetArrayFromImage(sitk.ReadImage(str(wf / "results/preprocess/raters" / cons)))
        assert np.array_equal(got > 0, votes >= 3)  # majority of 5
    # the response task's splits (and so its fine-tuning) read the cut crops
    plan = run_snakemake(wf, "-n", "-p", "results/preprocess/response/splits.json", timeout=300)
    assert plan.returncode == 0, plan.stderr[-2000:]
    assert "smart splits --cohort results/preprocess/response/cohort.csv" in plan.stdout
