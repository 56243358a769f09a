"""Table assembly from the fixture result files of tests/tables_fixtures.py (the layout of ARCHITECTURE "Result paths")."""

import json

import pandas as pd
import pytest

from smart.eval import tables
from tables_fixtures import PAPER_TABLE_TASKS, PAPER_TASKS, _metrics, results, write_plan  # noqa: F401  (fixture)


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
    path = write_plan(tmp_path / "plan.json", {"a": {"tables": ["VII"]}})
    with pytest.raises(ValueError, match=r"plan.json: variant 'a' lists unknown tables \['VII'\]"):
        tables.load_plan(path)


def test_a_table_takes_its_task_from_the_plan(results, tmp_path):  # noqa: F811
    # Table V filled by another task: its AUC columns carry that task's label and read that task's folders.
    root, ppath = results
    _metrics(root, "finetune", "small", "smart__cls", "1.0", [0.6, 0.8])
    variants = json.loads(ppath.read_text())["variants"]
    other = write_plan(tmp_path / "other_plan.json", variants,
                       {**PAPER_TASKS, "small": {"label": "Small", "title": "Small nodules"}},
                       {**PAPER_TABLE_TASKS, "V": "small"})
    tables.write_tables(root, other, tmp_path / "out")
    t5 = pd.read_csv(tmp_path / "out" / "table5.csv")
    assert list(t5.columns[-3:]) == ["Small Probe AUC", "Small FT AUC", "sources"]
    assert t5.loc[0, "Small FT AUC"] == "0.700 ± 0.141" and t5.loc[0, "Small Probe AUC"] == "—"


@pytest.mark.parametrize("tasks, table_tasks, needle", [
    ({"lidc": {}}, {"II": "lidc"}, r"no task for table\(s\) \['III', 'IV', 'V', 'VI'\]"),
    ({"lidc": {}}, {n: "lidc" for n in ("II", "IV", "V", "VI")} | {"III": "resp"},
     r"\{'III': 'resp'\} name tasks that are not defined \(known: \['lidc'\]\)"),
    ({"lidc": "LIDC"}, dict(PAPER_TABLE_TASKS, III="lidc"), "task 'lidc' is not a mapping"),
])
def test_bad_tasks_in_the_plan_are_rejected_naming_it(tmp_path, tasks, table_tasks, needle):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"variants": {}, "tasks": tasks, "table_tasks": table_tasks}))
    with pytest.raises(ValueError, match=needle) as err:
        tables.load_plan(path)
    assert str(err.value).startswith(f"{path}: ")


@pytest.mark.parametrize("text, needle", [
    (None, "plan file {path} does not exist (the workflow's plan_json rule writes it: snakemake {path})"),
    ("{not json", "{path}: not valid JSON"),
    ('{"variants": {}, "tasks": {}}', "{path}: not a workflow plan: expected the mappings ['variants', 'tasks', "
                                      "'table_tasks'] (smart.workflow.plan.Plan)"),
    ('["variants"]', "{path}: not a workflow plan"),
])
def test_missing_or_malformed_plan_is_one_line_naming_the_file(tmp_path, text, needle):
    path = tmp_path / "plan.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ValueError) as err:
        tables.load_plan(path)
    assert needle.format(path=path) in str(err.value) and "\n" not in str(err.value)


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
