"""``smart tables`` on a results folder without metrics."""

import json

import pandas as pd

from smart.cli import main


def test_tables_cli_on_empty_results(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "v.json").write_text(json.dumps({"smart": {"method": "smart", "label": "SMART", "tables": ["II"]}}))
    (tmp_path / "tasks.json").write_text(json.dumps({"tasks": {"a": {"label": "A", "title": "Task A"}},
                                                     "tables": {n: "a" for n in ("II", "III", "IV", "V", "VI")}}))
    assert main(["tables", "--results", str(tmp_path / "results"), "--variants", str(tmp_path / "v.json"),
                 "--tasks", str(tmp_path / "tasks.json"), "--out", str(tmp_path / "t")]) == 0
    t2 = pd.read_csv(tmp_path / "t" / "table2.csv")
    assert t2.loc[0, "FT AUC"] == "—" and not (tmp_path / "t" / "limited_data.csv").exists()
    assert (tmp_path / "t" / "table2.md").read_text().startswith("**Table II: Task A: linear probing")
