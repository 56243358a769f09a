"""Tiny downstream fixtures (tests/downstream, tests/eval, tests/commands): a generated cohort of NIfTI crops,
patient-grouped splits, a tiny exported Swin encoder."""

import json

import numpy as np
import pytest
import SimpleITK as sitk
import torch

TINY_MODEL = {"arch": "swin", "embed_dim": 12, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 2, 2], "sa_stage": 3,
              "sa_depth": 1, "sa_heads": 2, "img_size": 32, "drop_path_rate": 0.0}
EDGE = 32


def _crop(rng, label):
    hu = rng.normal(-800, 40, (EDGE,) * 3).astype(np.float32)
    zz, yy, xx = np.mgrid[:EDGE, :EDGE, :EDGE]
    r = 8 if label else 3       # malignant-like: a large dense blob; benign-like: a small one
    hu[(zz - 16) ** 2 + (yy - 16) ** 2 + (xx - 16) ** 2 <= r * r] = 40.0
    img = sitk.GetImageFromArray(hu)
    img.SetSpacing((2.0, 2.0, 2.0))
    return img


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory):
    """8 patients x 2 samples; the label is per patient (odd = 1). Test = patients 0-1, folds {2,3}, {4,5}, {6,7}."""
    root = tmp_path_factory.mktemp("cohort")
    (root / "crops").mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for p in range(8):
        label = p % 2
        for s in range(2):
            sid = f"p{p:02d}_s{s}"
            sitk.WriteImage(_crop(rng, label), str(root / "crops" / f"{sid}.nii.gz"))
            rows.append(f"{sid},P{p:02d},crops/{sid}.nii.gz,{label}")
    (root / "cohort.csv").write_text("sample_id,patient_id,image,label\n" + "\n".join(rows) + "\n")
    ids = lambda ps: [f"p{p:02d}_s{s}" for p in ps for s in range(2)]  # noqa: E731
    splits = {"seed": 0, "n_folds": 3, "test": ids([0, 1]), "folds": [ids([2, 3]), ids([4, 5]), ids([6, 7])],
              "group_column": "patient_id", "counts": {}}
    (root / "splits.json").write_text(json.dumps(splits))
    return root


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory):
    from smart.models.encoder_io import export_encoder
    from smart.models.factory import build_encoder

    torch.manual_seed(0)
    enc = build_encoder(TINY_MODEL)
    path = tmp_path_factory.mktemp("enc") / "encoder.pt"
    export_encoder(enc, path, model_config=TINY_MODEL, method="smart", step=0)
    return path
