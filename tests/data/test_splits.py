"""Patient-grouped splits: disjoint patients, exact sizes, stratification, determinism, and the write-once CLI."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest

from smart.commands import splits as splits_cmd
from smart.data.splits import make_splits


def _cohort(n_patients: int = 240, seed: int = 0, unlabelled: int = 0) -> pd.DataFrame:
    """1-4 nodules per patient, ~25 % malignant, malignancy correlated within a patient (as in LIDC)."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        risk = rng.uniform(0.05, 0.5)
        for n in range(int(rng.integers(1, 5))):
            rows.append({"sample_id": f"P{p:04d}_n{n}", "patient_id": f"P{p:04d}", "label": int(rng.random() < risk)})
    frame = pd.DataFrame(rows)
    if unlabelled:
        frame.loc[frame.sample(unlabelled, random_state=seed).index, "label"] = np.nan
    return frame


def _parts(splits: dict) -> list[list[str]]:
    return [splits["test"], *splits["folds"]]


def test_parts_are_patient_disjoint_and_cover_every_labelled_sample():
    frame = _cohort()
    result = make_splits(frame, 150, n_folds=3, seed=0)
    patient = frame.set_index("sample_id")["patient_id"]
    patient_sets = [set(patient.loc[ids]) for ids in _parts(result)]
    for a in range(len(patient_sets)):
        for b in range(a + 1, len(patient_sets)):
            assert not patient_sets[a] & patient_sets[b]
    everything = [i for part in _parts(result) for i in part]
    assert sorted(everything) == sorted(frame["sample_id"]) and len(everything) == len(set(everything))


@pytest.mark.parametrize("test_size,expected", [(150, 150), (1, 1), (0.25, None), (0.5, None), (200.0, 200)])
def test_test_set_has_exactly_the_requested_size(test_size, expected):
    frame = _cohort()
    if expected is None:
        expected = int(np.floor(test_size * len(frame) + 0.5))
    result = make_splits(frame, test_size, n_folds=3, seed=3)
    assert len(result["test"]) == expected == result["counts"]["test"]["n"]
    assert sum(len(f) for f in result["folds"]) == len(frame) - expected


def test_test_set_and_folds_are_stratified():
    frame = _cohort(n_patients=400)
    result = make_splits(frame, 300, n_folds=3, seed=0)
    label = frame.set_index("sample_id")["label"]
    overall = frame["label"].mean()
    # test: per-label targets by largest remainder, so the malignant count is within 1 of 300 * prevalence
    assert abs(label.loc[result["test"]].sum() - 300 * overall) <= 1
    for fold in result["folds"]:
        assert abs(label.loc[fold].mean() - overall) < 0.03
    sizes = [len(f) for f in result["folds"]]
    assert max(sizes) - min(sizes) <= 0.1 * np.mean(sizes)


def test_counts_match_the_lists():
    frame = _cohort(unlabelled=7)
    result = make_splits(frame, 0.3, n_folds=4, seed=1)
    label = frame.set_index("sample_id")["label"]
    for ids, counts in zip(_parts(result), [result["counts"]["test"], *result["counts"]["folds"]]):
        assert counts["n"] == len(ids)
        assert counts["by_label"] == {str(k): int(v) for k, v in label.loc[ids].astype(int).value_counts().items()}
    assert result["counts"]["unlabelled"] == 7
    assert result["counts"]["total"]["n"] == len(frame) - 7
    assert len(result["folds"]) == result["n_folds"] == 4


def test_deterministic_by_seed():
    frame = _cohort()
    assert make_splits(frame, 100, seed=5) == make_splits(frame.sample(frac=1.0, random_state=9), 100, seed=5)
    assert make_splits(frame, 100, seed=5)["test"] != make_splits(frame, 100, seed=6)["test"]


def test_unlabelled_rows_are_left_out():
    frame = _cohort(unlabelled=12)
    result = make_splits(frame, 50, seed=0)
    dropped = set(frame.loc[frame["label"].isna(), "sample_id"])
    assert not dropped & {i for part in _parts(result) for i in part}


@pytest.mark.parametrize("kwargs,match", [
    ({"test_size": 10_000}, "labelled samples"), ({"test_size": 1.5}, "fraction"), ({"test_size": -3}, "test"),
    ({"test_size": True}, "count"), ({"test_size": 10, "n_folds": 1}, "n_folds"),
    ({"test_size": 10, "seed": -1}, "seed")])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_splits(_cohort(), **kwargs)


def test_bad_cohorts_are_named():
    frame = _cohort()
    with pytest.raises(ValueError, match="patient_id"):
        make_splits(frame.drop(columns="patient_id"), 10)
    dup = pd.concat([frame, frame.iloc[:1]])
    with pytest.raises(ValueError, match="unique"):
        make_splits(dup, 10)
    with pytest.raises(ValueError, match="folds"):
        make_splits(pd.DataFrame({"sample_id": ["a", "b", "c"], "patient_id": ["p", "q", "r"], "label": [0, 1, 0]}),
                    1, n_folds=3)


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    splits_cmd.add_arguments(parser)
    return splits_cmd.main(parser.parse_args(list(argv)))


def test_cli_writes_once_and_refuses_to_overwrite_different_splits(tmp_path, capsys):
    cohort = tmp_path / "cohort.csv"
    _cohort().to_csv(cohort, index=False)
    out = tmp_path / "splits.json"
    assert _run("--cohort", str(cohort), "--out", str(out), "--test-size", "120", "--seed", "2") == 0
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(make_splits(pd.read_csv(cohort), 120, seed=2)))
    assert {"seed", "n_folds", "test", "folds", "group_column", "counts"} <= set(written)
    mtime = out.stat().st_mtime_ns
    assert _run("--cohort", str(cohort), "--out", str(out), "--test-size", "120", "--seed", "2") == 0
    assert "left unchanged" in capsys.readouterr().out and out.stat().st_mtime_ns == mtime
    assert _run("--cohort", str(cohort), "--out", str(out), "--test-size", "0.1", "--seed", "2") == 3
    assert "--force" in capsys.readouterr().err and json.loads(out.read_text()) == written
    assert _run("--cohort", str(cohort), "--out", str(out), "--test-size", "0.1", "--seed", "2", "--force") == 0
    assert len(json.loads(out.read_text())["test"]) == int(np.floor(0.1 * len(_cohort()) + 0.5))


def test_cli_names_a_missing_cohort(tmp_path, capsys):
    assert _run("--cohort", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "s.json")) == 2
    assert "nope.csv" in capsys.readouterr().err


def test_parse_test_size():
    assert splits_cmd.parse_test_size("1000") == 1000 and isinstance(splits_cmd.parse_test_size("1000"), int)
    assert splits_cmd.parse_test_size("0.2") == 0.2
    with pytest.raises(argparse.ArgumentTypeError):
        splits_cmd.parse_test_size("many")


def test_test_size_zero_is_cross_validation_only():
    """The paper's treatment-response protocol (Sec. IV-B: 3-fold CV only): every labelled sample in a fold."""
    frame = pd.DataFrame({"sample_id": [str(i) for i in range(30)], "patient_id": [str(i // 2) for i in range(30)],
                          "label": [(i // 2) % 2 for i in range(30)]})
    splits = make_splits(frame, 0, n_folds=3, seed=0)
    assert splits["test"] == [] and splits["counts"]["test"]["n"] == 0
    assert sorted(s for f in splits["folds"] for s in f) == sorted(frame["sample_id"])
