"""Fold selection, leak checks and real fine-tune / linear-probe runs on a tiny generated cohort."""

import json

import pytest
from sklearn.metrics import roc_auc_score

from smart.downstream import protocol as downstream

FAST = ["epochs=2", "batch_size=8", "crop_size=[32,32,32]", "augment=false", "feature_batch_size=8"]


def _frame(root):
    from smart.data.cohort import read_cohort
    return read_cohort(root / "cohort.csv")


def test_select_fold_uses_only_other_folds(tiny_cohort):
    data = downstream.select_fold(_frame(tiny_cohort), tiny_cohort / "splits.json", fold=1)
    # the training part (folds 0 and 2: P02, P03, P06, P07) = inner training + inner validation, whole patients
    assert sorted([*data.train.patient_id.unique(), *data.inner.patient_id.unique()]) == ["P02", "P03", "P06", "P07"]
    # 0.2 x 8 samples -> 2 wanted; each patient holds 2 of one label, so one patient per label is held out
    assert len(data.inner) == 4 and data.inner.label.tolist().count(1) == 2
    assert data.inner.patient_id.nunique() == 2 and data.train.label.value_counts().to_dict() == {0: 2, 1: 2}
    assert sorted(data.val.patient_id.unique()) == ["P04", "P05"]
    assert sorted(data.test.patient_id.unique()) == ["P00", "P01"] and len(data.test) == 4
    assert data.selected_on == {"split": "inner_val", "of": "training part of fold 1 (folds != 1)",
                                "inner_val_fraction": 0.2, "seed": 0, "n": 4, "n_pos": 2, "patients": 2,
                                "sample_ids": data.inner.sample_id.tolist()}


def test_fraction_is_stratified_and_seeded(tiny_cohort):
    frame = _frame(tiny_cohort)
    full = downstream.select_fold(frame, tiny_cohort / "splits.json", fold=0, fraction=1.0, seed=3)
    half = downstream.select_fold(frame, tiny_cohort / "splits.json", fold=0, fraction=0.5, seed=3)
    # inner training = 8 samples - 4 held out = 2 per label -> round(.5*2) = 1 per label
    assert full.train.label.value_counts().to_dict() == {0: 2, 1: 2}
    assert half.train.label.value_counts().to_dict() == {0: 1, 1: 1}
    assert set(half.train.sample_id) < set(full.train.sample_id)
    # the inner split is drawn before the fraction: every fraction chooses on the same samples
    assert half.inner.sample_id.tolist() == full.inner.sample_id.tolist()
    again = downstream.select_fold(frame, tiny_cohort / "splits.json", fold=0, fraction=0.5, seed=3)
    assert half.train.sample_id.tolist() == again.train.sample_id.tolist()
    with pytest.raises(ValueError, match="fraction"):
        downstream.stratified_fraction(frame, 0.0, 0)


def test_leaky_splits_are_rejected(tiny_cohort, tmp_path):
    splits = json.loads((tiny_cohort / "splits.json").read_text())
    splits["folds"][0].remove("p02_s1")
    splits["test"].append("p02_s1")        # patient P02 now in a training fold (p02_s0) and in the test set
    bad = tmp_path / "splits.json"
    bad.write_text(json.dumps(splits))
    with pytest.raises(ValueError, match="patient_id shared between train and test"):
        downstream.select_fold(_frame(tiny_cohort), bad, fold=1)
    with pytest.raises(ValueError, match="fold 5 out of range"):
        downstream.select_fold(_frame(tiny_cohort), tiny_cohort / "splits.json", fold=5)


def test_config_overrides_and_errors():
    cfg = downstream.load_downstream_config(None, ["epochs=3", "scratch_model.embed_dim=12", "selection=last"])
    assert cfg["epochs"] == 3 and cfg["scratch_model"] == {"embed_dim": 12} and cfg["batch_size"] == 40
    with pytest.raises(ValueError, match="unknown downstream config key 'epoch'"):
        downstream.load_downstream_config(None, ["epoch=3"])
    with pytest.raises(ValueError, match="selection"):
        downstream.load_downstream_config(None, ["selection=best"])


def _check_record(rec, root, fold):
    splits = json.loads((root / "splits.json").read_text())
    training_part = [s for k, f in enumerate(splits["folds"]) if k != fold for s in f]
    inner = rec["selected_on"]["sample_ids"]
    assert rec["train_ids"] == [s for s in training_part if s not in inner] and set(inner) < set(training_part)
    assert set(rec["predictions"]["inner_val"]) == set(inner) and rec["inner_val"]["n"] == len(inner) == 4
    assert set(rec["predictions"]["test"]) == set(splits["test"])
    assert set(rec["predictions"]["val"]) == set(splits["folds"][fold])
    assert rec["reported"] == "test" and rec["selected_on"]["choices"]["threshold"]["value"] == 0.5
    labels = _frame(root).set_index("sample_id")["label"]
    ids = splits["test"]
    probs = [rec["predictions"]["test"][s] for s in ids]
    assert all(0.0 <= p <= 1.0 for p in probs)
    assert rec["test"]["auc"] == pytest.approx(roc_auc_score(labels.loc[ids].to_numpy(), probs))
    assert rec["test"]["n"] == 4 and rec["val"]["n"] == len(splits["folds"][fold])
    assert rec["provenance"]["seed"] == 0 and len(rec["provenance"]["config_hash"]) == 16


def test_finetune_tiny(tiny_cohort, tiny_encoder, tmp_path, monkeypatch, capsys):
    from smart.downstream.finetune import finetune

    monkeypatch.setenv("SMART_PROGRESS_SECONDS", "0")
    cfg = downstream.load_downstream_config(None, FAST + ["save_encoder=true"])
    rec = finetune(str(tiny_encoder), tiny_cohort / "cohort.csv", tiny_cohort / "splits.json", 2, tmp_path, cfg,
                   progress=True)
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["test"] == pytest.approx(rec["test"])
    _check_record(on_disk, tiny_cohort, 2)
    assert [h["epoch"] for h in on_disk["history"]] == [1, 2]
    best = max(on_disk["history"], key=lambda h: (h["inner_val_auc"], -h["epoch"]))
    assert on_disk["selected_epoch"] == best["epoch"] and on_disk["head"] == "cls"
    assert on_disk["selected_on"]["choices"]["epoch"]["value"] == best["epoch"]
    from smart.models.encoder_io import load_encoder
    _, meta = load_encoder(tmp_path / "encoder_finetuned.pt")
    assert meta["method"] == "smart+finetune" and meta["step"] == on_disk["selected_epoch"]
    # batch-log progress (stderr is not a terminal under pytest): one line per epoch at SMART_PROGRESS_SECONDS=0
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("finetune fold 2: ")]
    assert [ln.split(" | ")[0] for ln in lines] == ["finetune fold 2: epoch 1/2 (50.0%)",
                                                   "finetune fold 2: epoch 2/2 (100.0%)"]
    assert all("loss" in ln and "samples/s" in ln and "ETA" in ln for ln in lines)
    # metrics.jsonl and TensorBoard scalars per epoch, equal to the history in metrics.json
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from smart.run_logging import read_metrics
    assert [(r["step"], r["train_loss"]) for r in read_metrics(tmp_path / "metrics.jsonl")] == \
        [(h["epoch"], h["train_loss"]) for h in on_disk["history"]]
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    scalars = events.Scalars("train_loss")
    assert [e.step for e in scalars] == [1, 2]
    assert [e.value for e in scalars] == pytest.approx([h["train_loss"] for h in on_disk["history"]], rel=1e-6)


def test_linear_probe_tiny_and_scratch(tiny_cohort, tiny_encoder, tmp_path):
    from smart.downstream.linear_probe import linear_probe

    cfg = downstream.load_downstream_config(None, FAST)
    rec = linear_probe(str(tiny_encoder), tiny_cohort / "cohort.csv", tiny_cohort / "splits.json", 0, tmp_path / "a", cfg)
    _check_record(json.loads((tmp_path / "a" / "metrics.json").read_text()), tiny_cohort, 0)
    assert rec["feature"] == "cls" and rec["feature_dim"] == 96 and rec["C"] in cfg["probe_C"]
    best = max(rec["C_search"], key=lambda s: (s["inner_val_auc"], -s["C"]))
    assert rec["C"] == best["C"] == rec["selected_on"]["choices"]["C"]["value"]
    scratch_cfg = downstream.load_downstream_config(None, FAST + ["scratch_preset=tiny", "scratch_method=smit"])
    scratch = linear_probe("none", tiny_cohort / "cohort.csv", tiny_cohort / "splits.json", 0, tmp_path / "c", scratch_cfg)
    assert scratch["feature"] == "pooled" and scratch["encoder"] == "none"
