"""``smart tables`` on a results folder without metrics, and its one-line error for a missing or malformed plan."""

import json

import pandas as pd

from smart.cli import main
from tables_fixtures import write_plan


def test_tables_cli_on_empty_results(tmp_path):
    (tmp_path / "results").mkdir()
    plan = write_plan(tmp_path / "plan.json", {"smart": {"label": "SMART", "tables": ["II"]}},
                      {"a": {"label": "A", "title": "Task A"}}, {n: "a" for n in ("II", "III", "IV", "V", "VI")})
    assert main(["tables", "--results", str(tmp_path / "results"), "--plan", str(plan),
                 "--out", str(tmp_path / "t")]) == 0
    t2 = pd.read_csv(tmp_path / "t" / "table2.csv")
    assert t2.loc[0, "FT AUC"] == "—" and not (tmp_path / "t" / "limited_data.csv").exists()
    assert (tmp_path / "t" / "table2.md").read_text().startswith("**Table II: Task A: linear probing")


def test_missing_or_malformed_plan_is_one_error_line(tmp_path, capsys):
    (tmp_path / "results").mkdir()
    plan = tmp_path / "plan.json"
    args = ["tables", "--results", str(tmp_path / "results"), "--plan", str(plan), "--out", str(tmp_path / "t")]
    assert main(args) == 2
    assert capsys.readouterr().err == (f"smart tables: error: plan file {plan} does not exist (the workflow's "
                                       f"plan_json rule writes it: snakemake {plan})\n")
    plan.write_text(json.dumps({"variants": {}}))
    assert main(args) == 2
    assert capsys.readouterr().err == (f"smart tables: error: {plan}: not a workflow plan: expected the mappings "
                                       f"['variants', 'tasks', 'table_tasks'] (smart.workflow.plan.Plan)\n")
    assert not (tmp_path / "t").exists()
