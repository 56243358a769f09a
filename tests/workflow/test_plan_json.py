"""results/plan.json: the workflow's resolved plan (smart.workflow.plan.Plan) round-trips through JSON, a malformed
one is one line naming the field, and the torch-free writer of the plan_json rule writes it atomically."""

from __future__ import annotations

import json

import pytest

from plan_configs import shipped
from smart.workflow.plan import Plan
from smart.workflow.resolve import resolve_plan
from workflow_scripts.write_plan import main as write_plan


@pytest.fixture(scope="module")
def demo_plan() -> Plan:
    return resolve_plan(shipped("config.yaml"))


def test_the_plan_round_trips_through_json(demo_plan):
    data = json.loads(json.dumps(demo_plan.to_dict()))
    assert Plan.from_dict(data, "plan.json") == demo_plan
    assert list(data) == ["arch", "cls_token", "crop_edge", "study_sa_arms", "segmentation_variants", "variants",
                          "tasks", "table_tasks"]


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("tasks"), "x.json: plan fields missing ['tasks'], unknown []"),
    (lambda d: d.update(extra=1), "x.json: plan fields missing [], unknown ['extra']"),
    (lambda d: d.update(study_sa_arms={}), "x.json: plan field 'study_sa_arms' must be a list, got {}"),
    (lambda d: d.update(tasks=["lidc"]), "x.json: plan field 'tasks' must be a dict, got ['lidc']"),
    (lambda d: d["variants"]["smit"].pop("heads"),
     "x.json: variants.smit must hold exactly ['method', 'set', 'label', 'tables', 'sa', 'heads'], got "),
    (lambda d: d["table_tasks"].update(III="resp"),
     "x.json: table_tasks {'III': 'resp'} name tasks that are not defined (known: ['lidc', 'response'])"),
])
def test_a_malformed_plan_is_one_line_naming_the_field(demo_plan, edit, message):
    data = json.loads(json.dumps(demo_plan.to_dict()))
    edit(data)
    with pytest.raises(ValueError) as err:
        Plan.from_dict(data, "x.json")
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
    with pytest.raises(ValueError, match=r"^x.json: expected the workflow plan, a mapping with \['arch', "):
        Plan.from_dict([], "x.json")


def test_the_writer_writes_the_plan_or_one_error_line(demo_plan, tmp_path, capsys):
    out = tmp_path / "results" / "plan.json"
    assert write_plan(["--out", str(out), "--plan", json.dumps(demo_plan.to_dict())]) == 0
    assert json.loads(out.read_text()) == demo_plan.to_dict()
    assert capsys.readouterr().out == f"wrote the plan (4 variants, 2 tasks) to {out}\n"
    bad = {**demo_plan.to_dict(), "table_tasks": {"II": "nodule"}}
    assert write_plan(["--out", str(tmp_path / "bad.json"), "--plan", json.dumps(bad)]) == 1
    assert capsys.readouterr().err == ("error: --plan: table_tasks {'II': 'nodule'} name tasks that are not defined "
                                       "(known: ['lidc', 'response'])\n")
    assert not (tmp_path / "bad.json").exists()


def test_the_writer_imports_no_torch(tmp_path, demo_plan):
    import subprocess
    import sys

    code = ("import sys, workflow_scripts.write_plan as w; "
            f"w.main(['--out', {str(tmp_path / 'p.json')!r}, '--plan', sys.argv[1]]); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    done = subprocess.run([sys.executable, "-c", code, json.dumps(demo_plan.to_dict())], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "p.json").read_text()) == demo_plan.to_dict()
