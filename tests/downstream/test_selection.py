"""Selection never reads reported data (issue 19 item 2, docs/evaluation.md "Selection"): every choice (epoch, early
stopping, C; the AP50 threshold is fixed) is made on the inner validation split of the fold's training part, so
permuting the labels of fold k and of the test set changes the reported numbers and nothing else."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from smart import cli
from smart.data.splits import grouped_holdout
from smart.downstream import protocol as downstream
from smart.downstream.finetune import finetune
from smart.downstream.linear_probe import linear_probe

FAST = ["epochs=4", "lr=0.001", "batch_size=4", "crop_size=[32,32,32]", "augment=true", "feature_batch_size=8",
        "probe_max_iter=200"]
FOLD = 1


def _permuted_cohort(root, tmp_path):
    """The tiny cohort with the labels of fold FOLD and of the test set reversed within each part (a permutation:
    [0, 0, 1, 1] -> [1, 1, 0, 0]); image paths made absolute so the copy lives elsewhere."""
    splits = json.loads((root / "splits.json").read_text())
    frame = pd.read_csv(root / "cohort.csv", dtype={"sample_id": str})
    frame["image"] = [str(root / p) for p in frame["image"]]
    for ids in (splits["folds"][FOLD], splits["test"]):
        rows = frame["sample_id"].isin(ids)
        frame.loc[rows, "label"] = frame.loc[rows, "label"].to_numpy()[::-1]
    path = tmp_path / "cohort_permuted.csv"
    frame.to_csv(path, index=False)
    return path, frame


CHOICES = ("selected_on", "inner_val", "train_ids", "n_train")


def test_permuting_reported_labels_changes_no_choice(tiny_cohort, tiny_encoder, tmp_path):
    permuted, frame = _permuted_cohort(tiny_cohort, tmp_path)
    splits = tiny_cohort / "splits.json"
    original = pd.read_csv(tiny_cohort / "cohort.csv", dtype={"sample_id": str}).set_index("sample_id")["label"]
    changed = frame.set_index("sample_id")["label"] != original
    assert int(changed.sum()) == 8  # all 4 fold-1 and 4 test labels moved; the training part is untouched
    cfg = downstream.load_downstream_config(None, FAST)
    runs = {}
    for name, cohort in (("original", tiny_cohort / "cohort.csv"), ("permuted", permuted)):
        runs[name] = (finetune(str(tiny_encoder), cohort, splits, FOLD, tmp_path / name / "ft", cfg),
                      linear_probe(str(tiny_encoder), cohort, splits, FOLD, tmp_path / name / "probe", cfg))
    for a, b in zip(runs["original"], runs["permuted"]):
        for key in CHOICES:
            assert a[key] == b[key], key
        # the same model: every probability of every sample is bit-equal, only the labels scoring them differ
        assert a["predictions"] == b["predictions"]
        # the reported blocks did read the permuted labels: reversing [0,0,1,1] flips the AUC (1 - AUC)
        for split in ("val", "test"):
            assert b[split]["auc"] == pytest.approx(1.0 - a[split]["auc"])
    ft_a, ft_b = runs["original"][0], runs["permuted"][0]
    assert ft_a["history"] == ft_b["history"] and ft_a["selected_epoch"] == ft_b["selected_epoch"]
    assert [h["epoch"] for h in ft_a["history"]] == [1, 2, 3, 4]
    best = max(ft_a["history"], key=lambda h: (h["inner_val_auc"], -h["epoch"]))["epoch"]
    assert ft_a["selected_epoch"] == best == ft_a["selected_on"]["choices"]["epoch"]["value"]
    probe_a, probe_b = runs["original"][1], runs["permuted"][1]
    assert probe_a["C"] == probe_b["C"] and probe_a["C_search"] == probe_b["C_search"]
    assert probe_a["selected_on"]["choices"]["C"]["value"] == probe_a["C"]
    assert probe_a["selected_on"]["choices"]["threshold"] == downstream.THRESHOLD_CHOICE


def test_early_stopping_watches_the_inner_split(tiny_cohort, tiny_encoder, tmp_path):
    cfg = downstream.load_downstream_config(None, [*FAST, "epochs=6", "patience=1"])
    rec = finetune(str(tiny_encoder), tiny_cohort / "cohort.csv", tiny_cohort / "splits.json", FOLD, tmp_path, cfg)
    aucs = [h["inner_val_auc"] for h in rec["history"]]
    # patience 1: run while each epoch beats every earlier one; stop at the first that does not (or after 6)
    expected = next((e for e in range(2, 7) if e <= len(aucs) and aucs[e - 1] <= max(aucs[:e - 1])), 6)
    assert len(aucs) == expected and rec["selected_epoch"] == int(np.argmax(aucs)) + 1
    assert expected < 6  # this deterministic CPU run does stop early: the branch under test ran
    assert rec["selected_on"]["choices"]["early_stopping"] == {
        "value": expected, "stopped_early": expected < 6, "patience": 1,
        "rule": "stop after `patience` epochs without a higher inner_val AUC"}
    with pytest.raises(ValueError, match="'patience' .* needs selection 'best_val_auc'"):
        downstream.load_downstream_config(None, ["patience=3", "selection=last"])
    for bad, match in (("patience=0", "'patience': expected null or an integer >= 1, got 0"),
                       ("inner_val_fraction=1.0", "'inner_val_fraction': expected a number in \\(0, 1\\), got 1.0"),
                       ("inner_val_fraction=half", "'inner_val_fraction': expected a number, got 'half'")):
        with pytest.raises(ValueError, match=match):
            downstream.load_downstream_config(None, [bad])


def _cohort_frame(patients):
    """``patients`` = [(patient_id, [labels of its samples]), ...]."""
    rows = [(f"{pid}_s{i}", pid, label) for pid, labels in patients for i, label in enumerate(labels)]
    return pd.DataFrame(rows, columns=["sample_id", "patient_id", "label"])


def test_grouped_holdout_is_patient_grouped_stratified_and_seeded():
    # 20 single-sample patients, 5 positive: 0.2 x 20 = 4 held out, 3 negative + 1 positive (proportional)
    frame = _cohort_frame([(f"P{i:02d}", [int(i < 5)]) for i in range(20)])
    held = grouped_holdout(frame, 0.2, seed=4)
    assert int(held.sum()) == 4 and frame[held]["label"].tolist().count(1) == 1
    assert held.tolist() == grouped_holdout(frame, 0.2, seed=4).tolist()
    assert any(grouped_holdout(frame, 0.2, seed=s).tolist() != held.tolist() for s in range(5, 10))
    # patients of 3 samples: every patient is wholly in or wholly out
    multi = _cohort_frame([(f"P{i}", [i % 2] * 3) for i in range(10)])
    for seed in range(5):
        out = grouped_holdout(multi, 0.2, seed)
        assert multi[out]["patient_id"].nunique() * 3 == int(out.sum())
        assert set(multi[out]["label"]) == {0, 1}  # at least one patient of each label, even beyond 0.2 x 30 = 6
    with pytest.raises(ValueError, match="holdout fraction"):
        grouped_holdout(frame, 1.0, seed=0)


def test_inner_split_without_both_classes_is_one_line_before_any_work(tiny_cohort, tmp_path, capsys):
    # one positive patient in the training part: it can be in the inner validation or the inner training part only
    frame = _cohort_frame([("A", [0, 0]), ("B", [0]), ("C", [1, 1])])
    with pytest.raises(ValueError, match=r"fold 2: the inner training part cannot hold both classes: training part "
                                         r"5 samples / 3 patients \(label 0: 3, label 1: 2\)"):
        downstream.inner_split(frame, 2, 0.2, seed=0)
    # through the CLI, with an encoder file that does not exist: the split is checked before anything loads
    splits = json.loads((tiny_cohort / "splits.json").read_text())
    odd = [s for s in splits["folds"][2] if s.startswith("p07")]        # P07 (label 1) joins the test set
    lopsided = {**splits, "folds": [splits["folds"][0], splits["folds"][1], [s for s in splits["folds"][2]
                                                                              if s not in odd]],
                "test": splits["test"] + odd}
    path = tmp_path / "splits.json"
    path.write_text(json.dumps(lopsided))
    code = cli.main(["linear-probe", "--encoder", str(tmp_path / "missing.pt"), "--cohort",
                     str(tiny_cohort / "cohort.csv"), "--splits", str(path), "--fold", "1", "--out",
                     str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "fold 1: the inner" in err[0] and "training part 6 samples / 3 patients (label 0: 4, label 1: 2)" in err[0]
    assert not (tmp_path / "out" / "metrics.json").exists()
