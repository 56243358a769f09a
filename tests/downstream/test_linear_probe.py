"""smart.downstream.linear_probe (and fine-tuning) on a cross-validation-only task (splits test_size 0; the paper's
treatment response, Sec. IV-B): both run with an empty test part and record n = 0."""

from __future__ import annotations

import json

from smart.downstream import protocol as downstream
from smart.downstream.finetune import finetune
from smart.downstream.linear_probe import linear_probe

FAST = ["epochs=1", "batch_size=8", "crop_size=[32,32,32]", "augment=false", "feature_batch_size=8",
        "probe_max_iter=200"]


def test_downstream_runs_without_a_test_set(tiny_cohort, tiny_encoder, tmp_path):
    splits = json.loads((tiny_cohort / "splits.json").read_text())
    cv_only = {**splits, "folds": [f + (splits["test"] if k == 0 else []) for k, f in enumerate(splits["folds"])],
               "test": []}
    path = tmp_path / "splits_cv.json"
    path.write_text(json.dumps(cv_only))
    cfg = downstream.load_downstream_config(None, FAST)
    ft = finetune(str(tiny_encoder), tiny_cohort / "cohort.csv", path, 1, tmp_path / "ft", cfg)
    probe = linear_probe(str(tiny_encoder), tiny_cohort / "cohort.csv", path, 1, tmp_path / "probe", cfg)
    for record in (ft, probe):
        assert record["test"]["n"] == 0 and record["test"]["auc"] is None
        assert record["val"]["n"] == 4 and record["predictions"]["test"] == {}
        assert record["reported"] == "val"  # fold k is the result: nothing chose on it
        # training part: fold 0 (4 + the 4 former test samples) and fold 2 (4) = 12 samples of 6 patients; 0.2 x 12
        # -> 2 wanted, one 2-sample patient per label held out for the choices
        assert record["selected_on"]["n"] == 4 and record["selected_on"]["patients"] == 2
        assert record["n_train"] == 8

