"""Tasks (config ``tasks``): the downstream classification tasks, each with a source converter into cohort.csv
(docs/ARCHITECTURE.md "Data contracts") and its own fine-tuning overrides."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smart.overlay import merged
from smart.workflow.overrides import optional_arg, set_args
from smart.workflow.variants import is_pretrained, scratch_overrides

# What each task source (the converter into cohort.csv) needs from the task's entry.
TASK_SOURCE_NEEDS = {"synthetic": "synthetic", "pylidc": "dicom_root", "csv": "cohort", "lesions": "cohort"}


def task_names(config: Mapping[str, Any]) -> list[str]:
    """The tasks to run: ``finetune.tasks``, or every configured task (config order)."""
    return list(config["finetune"]["tasks"] or config["tasks"])


def tasks_from(config: Mapping[str, Any], source: str) -> list[str]:
    return [t for t, spec in config["tasks"].items() if spec["source"] == source]


def downstream_overrides(config: Mapping[str, Any], task: str, variant: str) -> dict[str, Any]:
    """What ``smart finetune`` / ``smart linear-probe`` of ``variant`` on ``task`` receive as ``--set``: the scratch
    architecture keys (scratch variants only), then ``finetune.set``, then the task's ``set`` (later wins)."""
    scratch = {} if is_pretrained(config, variant) else scratch_overrides(config, variant)
    return merged(scratch, config["finetune"]["set"], config["tasks"][task]["set"])


def downstream_words(config: Mapping[str, Any], task: str, variant: str) -> str:
    """``--config`` / ``--set`` of ``smart finetune`` and ``smart linear-probe`` (downstream keys only)."""
    return " ".join(filter(None, [optional_arg("--config", config["finetune"]["config_yaml"]),
                                  set_args(downstream_overrides(config, task, variant))]))


def n_folds(config: Mapping[str, Any]) -> int:
    """Fine-tuning folds: ``finetune.folds``, else every fold of ``splits.folds``."""
    return config["finetune"]["folds"] or config["splits"]["folds"]


def plan_tasks(config: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Config ``tasks`` as ``{task: {label, title}}`` (config order; a missing one is the task's name):
    :attr:`smart.workflow.plan.Plan.tasks`."""
    return {t: {"label": spec.get("label", t), "title": spec.get("title", t)} for t, spec in config["tasks"].items()}


def check_tasks(config: Mapping[str, Any]) -> None:
    """Every task names what its converter needs; every list or table of task names names configured tasks; the
    fine-tuning folds exist in the splits."""
    for task, spec in config["tasks"].items():
        need = TASK_SOURCE_NEEDS[spec["source"]]
        if not spec.get(need):
            raise ValueError(f"config tasks.{task}.source={spec['source']!r} needs tasks.{task}.{need}")
    known = list(config["tasks"])
    named = [("finetune.tasks", config["finetune"]["tasks"] or []),
             ("evaluate.attention_tasks", config["evaluate"]["attention_tasks"]),
             ("table_tasks", list(config["table_tasks"].values()))]
    for where, names in named:
        unknown = sorted(set(names) - set(known))
        if unknown:
            raise ValueError(f"config {where}: unknown task(s) {unknown}; configured tasks: {known}")
    folds = config["finetune"]["folds"]
    if folds is not None and folds > config["splits"]["folds"]:
        raise ValueError(f"config finetune.folds={folds} exceeds splits.folds={config['splits']['folds']}")
