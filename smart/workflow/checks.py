"""The workflow's checks before any job, in two calls from rules/common.smk: :func:`check_raw_config` before the
schema (keys of an older layout, a fine-tuning key in a pretraining ``set``: the schema alone would only say
"unexpected" / "does not match"), and :func:`check_before_any_job` after it — the one place every cross-key check,
placeholder report and resolution through the package runs, so a further check (e.g. a GPU-memory fit) is one more
call here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from smart.workflow.inputs import check_ct_paths, check_lidc_roots
from smart.workflow.overrides import check_pretraining_key_shape
from smart.workflow.placeholders import placeholder_report
from smart.workflow.plan import Plan
from smart.workflow.resources import check_resources
from smart.workflow.segmentation import check_segmentation
from smart.workflow.study import check_study_sets
from smart.workflow.tasks import check_tasks
from smart.workflow.variants import check_ablations


def check_moved_keys(config: Mapping[str, Any]) -> None:
    """Keys of an older layout, named with their new place."""
    for section in ("pretrain", "finetune", "segmentation"):
        if isinstance(config.get(section), dict) and "resources" in config[section]:
            raise ValueError(f"config {section}.resources: resources now live in one block per rule group; move it "
                             f"to resources.{section} (config/schema.yaml 'resources')")


def check_raw_config(config: Mapping[str, Any]) -> None:
    """Before config/schema.yaml: the checks whose message the schema could not give (reads the config
    defensively). Imports no torch."""
    check_moved_keys(config)
    check_pretraining_key_shape(config)


def check_data_sources(config: Mapping[str, Any]) -> None:
    """A real data source names its file; ``paths`` names at least one path."""
    data = config["data"]
    for key, field in (("organmnist", "npz"), ("raters", "csv")):
        src = data[key]["source"]
        if src != "synthetic" and not data[key].get(field):
            raise ValueError(f"config data.{key}.source={src!r} needs data.{key}.{field}")
    if data["ct"]["source"] == "paths" and not data["ct"]["paths"]:
        raise ValueError("config data.ct.source='paths' needs a non-empty data.ct.paths")


def check_before_any_job(config: Mapping[str, Any], config_files: Iterable[str] = (),
                         targets: Sequence[str] | None = None) -> Plan:
    """Every check of the validated, default-filled workflow config (cross-key checks, placeholders, the data
    inputs exist), then the resolution of every variant, task and study arm through the package (imports torch);
    returns the :class:`Plan` the rules read. A further check before any job is one more call here.

    ``config_files``: the config file(s) given (named by the placeholder report); ``targets``: the requested
    targets (``[]`` = the default target, ``None`` = unknown). ``ValueError``: the first problem, one line naming
    the key, the value and the reason; or every placeholder the targets need, one line each.
    """
    from smart.resources.fit import workflow_check
    from smart.workflow.resolve import resolve_plan

    report = placeholder_report(config, config_files, targets)
    if report:
        raise ValueError(report)
    check_ablations(config)
    check_data_sources(config)
    check_tasks(config)
    check_resources(config)
    check_segmentation(config)
    check_study_sets(config)
    check_ct_paths(config)
    check_lidc_roots(config)
    plan = resolve_plan(config)
    workflow_check(config)  # each GPU rule's predicted peak vs its card (`smart plan`, smart.resources)
    return plan
