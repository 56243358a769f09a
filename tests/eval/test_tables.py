"""Table assembly from the fixture result files of tests/tables_fixtures.py (the layout of ARCHITECTURE "Result paths")."""

import json

import pandas as pd
import pytest

from smart.eval import tables
from tables_fixtures import PAPER_TASKS, _metrics, results  # noqa: F401  (fixture)


def test_tables_cells_and_sources(results, tmp_path):  # noqa: F811
    root, vpath = results
    out = tmp_path / "tables"
    sources = tables.write_tables(root, vpath, out)
    for n in range(1, 7):
        assert (out / f"table{n}.csv").is_file() and (out / f"table{n}.md").is_file()

    t2 = pd.read_csv(out / "table2.csv").set_index("Pretext SSL task")
    assert t2.loc["SMART", "FT AUC"] == "0.900 ± 0.100"
    assert t2.loc["SMART", "FT AP50"] == "60.0 ± 10.0"            # percent, like the paper
    assert t2.loc["SMART", "Probe AUC"] == "0.650 ± 0.071"
    assert t2.loc["SMART", "Probe AR50"] == "30.0 ± 14.1"         # only folds 0, 1 exist
    assert t2.loc["SMIT", "FT AUC"] == "0.850 ± 0.000"
    assert t2.loc["Scratch", "FT AUC"] == "—"
    assert t2.loc["SMART", "sources"].split(";")[0] == "probe/lidc/smart/1.0/fold_0/metrics.json"
    assert "finetune/lidc/smart__cls/1.0/fold_2/metrics.json" in sources["table2"]["SMART"]
    assert not any("pooled" in s or "/0.5/" in s for s in sources["table2"]["SMART"])

    t4 = pd.read_csv(out / "table4.csv").set_index("Pretext SSL task")
    assert tuple(t4.loc["SMART", ["Noisy Teacher", "Semantic Attention", "AITD"]]) == ("✓", "✓", "✓")
    assert tuple(t4.loc["SMIT", ["Noisy Teacher", "Semantic Attention", "AITD", "GITD"]]) == ("×", "×", "×", "✓")

    t1 = pd.read_csv(out / "table1.csv")
    assert t1.loc[0, "Intra-cluster (↓)"] == "1.28 ± 0.57" and t1.loc[0, "Backbone"] == "Swin"
    t5 = pd.read_csv(out / "table5.csv")
    assert t5.loc[0, "SA stage"] == "S3" and t5.loc[0, "LIDC FT AUC"] == "0.900 ± 0.100"
    assert (out / "table2.md").read_text().startswith("**Table II: LIDC malignancy: linear probing and fine-tuning")
    assert "vs LIDC fine-tuning AUC (Table IV a+b)" in (out / "table4.md").read_text()
    assert pd.read_csv(out / "table3.csv").empty
    assert "No variant" in (out / "table3.md").read_text()

    lim = pd.read_csv(out / "limited_data.csv")
    row = lim[(lim.variant == "smart") & (lim.fraction == 0.5)].iloc[0]
    assert row.auc_mean == pytest.approx(0.7) and row.n_folds == 3
    assert (out / "limited_data.png").is_file()
    assert json.loads((out / "sources.json").read_text())["table1"]["SMART"] == ["cluster/smart/clusters.json"]


def test_unknown_table_numeral_is_rejected(tmp_path):
    vpath = tmp_path / "v.json"
    vpath.write_text(json.dumps({"a": {"tables": ["VII"]}}))
    with pytest.raises(ValueError, match="unknown tables"):
        tables.load_variants(vpath)


def test_a_table_takes_its_task_from_tasks_json(results, tmp_path):  # noqa: F811
    # Table V filled by another task: its AUC columns carry that task's label and read that task's folders.
    root, vpath = results
    _metrics(root, "finetune", "small", "smart__cls", "1.0", [0.6, 0.8])
    mapping = {"tasks": {**PAPER_TASKS["tasks"], "small": {"label": "Small", "title": "Small nodules"}},
               "tables": {**PAPER_TASKS["tables"], "V": "small"}}
    tpath = tmp_path / "other_tasks.json"
    tpath.write_text(json.dumps(mapping))
    tables.write_tables(root, vpath, tmp_path / "out", tpath)
    t5 = pd.read_csv(tmp_path / "out" / "table5.csv")
    assert list(t5.columns[-3:]) == ["Small Probe AUC", "Small FT AUC", "sources"]
    assert t5.loc[0, "Small FT AUC"] == "0.700 ± 0.141" and t5.loc[0, "Small Probe AUC"] == "—"


@pytest.mark.parametrize("mapping, needle", [
    ({"tasks": {"lidc": {}}, "tables": {"II": "lidc"}}, r"no task for table\(s\) \['III', 'IV', 'V', 'VI'\]"),
    ({"tasks": {"lidc": {}}, "tables": {n: "lidc" for n in ("II", "IV", "V", "VI")} | {"III": "resp"}},
     r"\{'III': 'resp'\} name tasks that are not defined \(known: \['lidc'\]\)"),
    ({"tasks": ["lidc"], "tables": {}}, "expected {'tasks'"),
])
def test_bad_tasks_file_is_rejected_naming_it(tmp_path, mapping, needle):
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps(mapping))
    with pytest.raises(ValueError, match=needle) as err:
        tables.load_tasks(path)
    assert str(err.value).startswith(f"{path}: ")
    with pytest.raises(ValueError, match="tasks file .* does not exist"):
        tables.load_tasks(tmp_path / "nope.json")


def test_missing_results_folder(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        tables.Results(tmp_path / "nope")


def test_cross_validation_only_task_reports_the_held_out_folds(tmp_path):
    """Treatment response has no test set in the paper (3-fold CV only, Sec. IV-B): with an empty test block the
    tables read each CV run's validation fold."""
    root = tmp_path / "results"
    folder = root / "finetune" / "response" / "smart__cls" / "1.0"
    for k, auc in enumerate([0.6, 0.7, 0.8]):
        (folder / f"fold_{k}").mkdir(parents=True)
        (folder / f"fold_{k}" / "metrics.json").write_text(json.dumps(
            {"val": {"auc": auc, "ap50": 0.5, "ar50": 0.5, "n": 20},
             "test": {"auc": None, "ap50": 0.0, "ar50": 0.0, "n": 0}}))
    assert tables.Results(root).fold_metric(folder, "auc").values == [0.6, 0.7, 0.8]


def test_tables_read_the_reported_block_only(tmp_path):
    """A metrics.json names its result (`reported`); the selection's numbers (inner_val, history, C_search) never
    reach a table (docs/evaluation.md "Selection")."""
    root = tmp_path / "results"
    folder = root / "probe" / "response" / "smart" / "1.0"
    for k, (val, inner) in enumerate([(0.6, 0.9), (0.7, 0.95), (0.8, 1.0)]):
        (folder / f"fold_{k}").mkdir(parents=True)
        (folder / f"fold_{k}" / "metrics.json").write_text(json.dumps(
            {"reported": "val", "inner_val": {"auc": inner, "ap50": 1.0, "ar50": 1.0, "n": 6},
             "val": {"auc": val, "ap50": 0.5, "ar50": 0.25, "n": 20},
             "test": {"auc": None, "ap50": 0.0, "ar50": 0.0, "n": 0},
             "C_search": [{"C": 1.0, "inner_val_auc": inner}]}))
    res = tables.Results(root)
    assert res.fold_metric(folder, "auc").values == [0.6, 0.7, 0.8]
    assert res.fold_metric(folder, "ar50").values == [0.25, 0.25, 0.25]
    lidc = root / "probe" / "lidc" / "smart" / "1.0" / "fold_0"
    lidc.mkdir(parents=True)
    (lidc / "metrics.json").write_text(json.dumps(
        {"reported": "test", "inner_val": {"auc": 0.99}, "val": {"auc": 0.3}, "test": {"auc": 0.55, "n": 9}}))
    assert res.fold_metric(lidc.parent, "auc").values == [0.55]
