"""The rehearsal of the paper configuration (issue 12): config/rehearsal.yaml on a generated paper-shaped tree, under
the real loopback SLURM through `--profile slurm`, target `rehearsal` (every rule family of `all` once).

The tree here is `smart synth rehearsal --small` (every shape of the full tree — 512x512 DICOM slices with rescale,
nested folders, the DB's real LIDC UIDs with LIDC-IDRI-0672's slice gap, the MedMNIST keys — but few items, ~1 min
to write). The full-size tree was run once by hand: BENCHMARKS.md "Rehearsal".

Run: flock /tmp/smart-slurm.lock python -m pytest tests/workflow/test_rehearsal.py -m slow -q
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from slurm_cluster import slurm_run, submitted_job_counts
from workflow_workspace import load_yaml, make_workspace, snakemake_env

pytestmark = [pytest.mark.slow, pytest.mark.slurm]


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory):
    from smart.data.synthetic.rehearsal import SMALL

    out = tmp_path_factory.mktemp("rehearsal_data")
    env = {**snakemake_env(), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "smart", "synth", "rehearsal", "--small", "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, SMALL


def test_generated_tree_is_paper_shaped(small_tree):
    from smart.data.io import read_image
    from smart.data.lidc import annotated_series_uids, index_dicom_series
    from smart.data.synthetic.lidc_dicom import IRREGULAR_SCAN

    out, sizes = small_tree
    series = sorted(p.parent for p in (out / "ct/lung").rglob("0000.dcm"))
    assert len(series) == sizes.dicom_series
    assert all(len(s.relative_to(out / "ct/lung").parts) == 3 for s in series)  # site/patient/series: nested
    image = read_image(series[0])
    assert image.GetSize()[:2] == (512, 512)
    assert 0.6 <= image.GetSpacing()[0] <= 0.9 and 1.25 <= image.GetSpacing()[2] <= 2.5
    assert sitk.GetArrayViewFromImage(image).min() == -1024  # air, through RescaleIntercept -1024
    assert len(list((out / "ct/other").rglob("*.nii.gz"))) == sizes.nifti_volumes
    lidc = index_dicom_series(out / "LIDC-IDRI")
    assert len(lidc) == sizes.lidc_scans and set(lidc) <= annotated_series_uids()
    assert (out / "LIDC-IDRI/LIDC-IDRI-0672").is_dir()  # DB scan IRREGULAR_SCAN: the real slice gaps
    assert IRREGULAR_SCAN == 983
    npz = np.load(out / "medmnist/organmnist3d_64.npz")
    assert sorted(npz.files) == sorted(f"{s}_{k}" for s in ("train", "val", "test") for k in ("images", "labels"))
    for split, n in sizes.organ_splits.items():
        assert npz[f"{split}_images"].shape == (n, 64, 64, 64) and npz[f"{split}_images"].dtype == np.uint8
        assert npz[f"{split}_labels"].shape == (n, 1) and npz[f"{split}_labels"].dtype == np.uint8
    response = pd.read_csv(out / "immunotherapy/cohort.csv")
    assert len(response) == sizes.response and set(response.label) == {0, 1}
    assert len(pd.read_csv(out / "5R/raters.csv")) == sizes.raters


@pytest.mark.timeout(5400)  # ~15 min on 2 idle cores (25 SLURM jobs, pretraining at 128^3); pyproject's 900 s is too short
def test_rehearsal_runs_end_to_end_under_slurm(tmp_path, small_tree, slurm_cluster):
    out, sizes = small_tree
    wf = make_workspace(tmp_path / "wf")
    os.symlink(out, wf / "rehearsal_data")
    proc = slurm_run(wf, slurm_cluster, "rehearsal", configfiles=("config/rehearsal.yaml",), timeout=5000, jobs=2)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    check_rehearsal_outputs(wf, log, sizes)


def check_rehearsal_outputs(wf, log: str, sizes) -> None:
    """What a finished `rehearsal` run must hold (also run by hand on the full-size run's folder)."""
    from smart.data import lidc

    cfg = load_yaml(wf / "config/rehearsal.yaml")
    jobs = submitted_job_counts(log)
    shards = cfg["preprocess"]["shards"]
    assert jobs["resample_shard"] == shards >= 2
    assert {"resample", "lidc_cohort", "response_crops", "raters_consensus", "splits", "pretrain", "finetune",
            "linear_probe", "embed", "umap", "zeroshot", "attention_maps"} <= set(jobs), jobs

    pre = wf / "results/preprocess"
    manifest = pd.read_csv(pre / "manifest.csv")
    assert len(manifest) == sizes.dicom_series + sizes.nifti_volumes  # every CT, DICOM and NIfTI, found in sub-folders
    assert sum(len(pd.read_csv(pre / f"resample/shard_{i}_of_{shards}.csv")) for i in range(shards)) == len(manifest)
    assert pd.read_csv(pre / "rejected.csv").empty

    # LIDC: the cohort holds exactly the generated scans' nodules; every other DB nodule is excluded and counted
    summary = json.loads((pre / "lidc/cohort.summary.json").read_text())
    cohort = pd.read_csv(pre / "lidc/cohort.csv")
    db_total = len(lidc.nodule_table(lidc.read_database()))
    assert summary["crops"] == len(cohort) > 0 and summary["excluded_total"] + len(cohort) == db_total
    assert summary["excluded"] == {"no DICOM": db_total - len(cohort)}
    assert summary["regridded_crops"] >= 1  # LIDC-IDRI-0672's nodule sits next to a real slice gap
    assert cohort["patient_id"].nunique() == sizes.lidc_scans
    splits = json.loads((pre / "lidc/splits.json").read_text())
    assert sorted(splits["test"] + [s for f in splits["folds"] for s in f]) == sorted(cohort.sample_id)
    crop = sitk.ReadImage(str(pre / "lidc" / cohort.image[0]))
    assert crop.GetSize() == (128, 128, 128)  # cut at the fine-tuning crop size of the paper config
    response = pd.read_csv(pre / "response/cohort.csv")
    assert len(response) == sizes.response
    assert sitk.ReadImage(str(pre / "response" / response.image[0])).GetSize() == (128, 128, 128)

    res = wf / "results"
    steps = [json.loads(line)["step"] for line in (res / "pretrain/smart/metrics.jsonl").read_text().splitlines()
             if '"step"' in line]
    assert max(steps) == math.ceil(len(manifest) / cfg["pretrain"]["set"]["data.batch_size"])  # 1 epoch
    for task in ("lidc", "response"):
        ft = json.loads(next((res / f"finetune/{task}/smart__cls").rglob("metrics.json")).read_text())
        probe = json.loads(next((res / f"probe/{task}/smart").rglob("metrics.json")).read_text())
        for metrics in (ft, probe):
            val = metrics["val"]
            assert val["n"] > 0 and metrics["n_train"] > 0
            if 0 < val["n_pos"] < val["n"]:  # both classes in the held-out fold: the AUC is defined
                assert 0.0 <= val["auc"] <= 1.0
    clusters = json.loads((res / "cluster/smart/clusters.json").read_text())
    assert clusters["n"] == sum(sizes.organ_splits.values()) and clusters["feature_dim"] == 8 * 12  # stage 3 of width 12
    for name in ("smart", "random"):
        zs = json.loads((res / f"zeroshot/{name}/summary.json").read_text())
        assert zs["n_cases"] == sizes.raters
    assert (res / "figures/attention/lidc/smart.png").stat().st_size > 0
