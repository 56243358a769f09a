"""A results tree in the layout of ARCHITECTURE "Result paths" (metrics, pretraining configs, clusters) and its
variants.json and tasks.json, for the table and README-block tests."""

import json

import pytest


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
    vpath = tmp_path / "variants.json"
    vpath.write_text(json.dumps(variants))
    (tmp_path / "tasks.json").write_text(json.dumps(PAPER_TASKS))  # beside variants.json, where write_tables looks
    return root, vpath


# The paper's mapping (config/config.yaml `tasks`, `table_tasks`), as the workflow's tasks_json rule writes it.
PAPER_TASKS = {"tasks": {"lidc": {"label": "LIDC", "title": "LIDC malignancy"},
                         "response": {"label": "Response", "title": "Immunotherapy response"}},
               "tables": {"II": "lidc", "III": "response", "IV": "lidc", "V": "lidc", "VI": "lidc"}}
