"""A results tree in the layout of ARCHITECTURE "Result paths" (metrics, pretraining configs, clusters) and the
workflow's plan.json (written from a real ``smart.workflow.plan.Plan``), for the table and README-block tests."""

import json

import pytest

from smart.workflow.plan import Plan


def _write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _metrics(root, kind, task, variant_dir, fraction, aucs, ap=(0.5, 0.6, 0.7), ar=(0.2, 0.4, 0.6)):
    for k, auc in enumerate(aucs):
        _write(root / kind / task / variant_dir / fraction / f"fold_{k}" / "metrics.json",
               {"val": {"auc": 0.5}, "test": {"auc": auc, "ap50": ap[k], "ar50": ar[k], "n": 10}})


def _config(root, variant, drop, sa_stage, arch="swin", losses=(1.0, 0.1, 0.1, 0.1)):
    _write(root / "pretrain" / variant / "config.json",
           {"model": {"arch": arch, "sa_stage": sa_stage}, "noisy_teacher": {"drop_ratio": drop},
            "loss": dict(zip(("amip", "ampd", "aitd", "gitd"), losses))})


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results"
    _config(root, "smart", 0.7, 3)
    _config(root, "smit", 0.0, None, losses=(1.0, 0.1, 0.0, 0.1))
    _metrics(root, "finetune", "lidc", "smart__cls", "1.0", [0.8, 0.9, 1.0])
    _metrics(root, "finetune", "lidc", "smart__cls", "0.5", [0.7, 0.7, 0.7])
    _metrics(root, "finetune", "lidc", "smart__pooled", "1.0", [0.1, 0.1, 0.1])   # cls is preferred
    _metrics(root, "probe", "lidc", "smart", "1.0", [0.6, 0.7])
    _metrics(root, "finetune", "lidc", "smit__pooled", "1.0", [0.85])
    _write(root / "cluster" / "smart" / "clusters.json", {"intra_mean": 1.284, "intra_std": 0.571,
                                                          "inter_mean": 5.93, "inter_std": 3.3})
    variants = {"smart": {"method": "smart", "set": {}, "label": "SMART", "tables": ["I", "II", "IV", "V", "VI"]},
                "smit": {"method": "smit", "set": {}, "label": "SMIT", "tables": ["II", "IV"]},
                "scratch": {"method": "none", "label": "Scratch", "tables": ["II"]}}
    return root, write_plan(tmp_path / "plan.json", variants)


# The paper's tasks and table_tasks (config/config.yaml `tasks`, `table_tasks`), as the workflow's plan holds them.
PAPER_TASKS = {"lidc": {"label": "LIDC", "title": "LIDC malignancy"},
               "response": {"label": "Response", "title": "Immunotherapy response"}}
PAPER_TABLE_TASKS = {"II": "lidc", "III": "response", "IV": "lidc", "V": "lidc", "VI": "lidc"}


def write_plan(path, variants, tasks=None, table_tasks=None):
    """``path`` holding the plan the workflow's plan_json rule writes, with ``variants`` (each entry completed to
    ``smart.workflow.plan.VARIANT_KEYS``) and the paper's tasks unless given; returns ``path``."""
    full = {name: {"method": "smart", "set": {}, "label": name, "tables": [], "sa": True, "heads": ["cls"], **spec}
            for name, spec in variants.items()}
    tasks = PAPER_TASKS if tasks is None else tasks
    plan = Plan(arch={v: "swin" for v in full}, cls_token={v: True for v in full}, crop_edge={t: 64 for t in tasks},
                variants=full, tasks=tasks, table_tasks=PAPER_TABLE_TASKS if table_tasks is None else table_tasks)
    Plan.from_dict(json.loads(json.dumps(plan.to_dict())), str(path))  # the fixture is a plan the writer accepts
    path.write_text(json.dumps(plan.to_dict()))
    return path
