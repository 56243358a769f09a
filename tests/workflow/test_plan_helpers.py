"""smart.workflow.placeholders / schema / resources: values against hand-written configs."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from plan_configs import shipped
from smart.workflow import placeholders, resources, schema


def test_find_placeholders_in_config_order():
    node = {"a": {"b": "/x/REPLACE_ME/y", "c": ["ok", "REPLACE_ME_too"]}, "d": 3, "e": "fine"}
    assert placeholders.find_placeholders(node) == [("a.b", "/x/REPLACE_ME/y"), ("a.c[1]", "REPLACE_ME_too")]


@pytest.mark.parametrize("enabled, targets, expected", [
    (False, [], False), (True, [], True), (False, ["all"], False), (False, ["segmentation"], True),
    (False, ["results/tables/segmentation.csv"], True), (False, ["./results/segmentation/smart/metrics.json"], True),
    (False, ["study", "tables"], False), (False, None, True),
])
def test_segmentation_is_planned_only_by_its_targets(enabled, targets, expected):
    config = {"segmentation": {"enabled": enabled}}
    assert placeholders.plans_segmentation(config, targets) is expected


def test_segmentation_placeholder_asked_only_when_planned():
    paper = shipped("paper.yaml")
    keys = [k for k, _ in placeholders.needed_placeholders(paper, [])]
    assert "segmentation.csv" not in keys and len(keys) == 6
    keys = [k for k, _ in placeholders.needed_placeholders(paper, ["segmentation"])]
    assert keys[-1] == "segmentation.csv" and len(keys) == 7
    assert placeholders.placeholder_report(shipped("config.yaml"), ["config/config.yaml"], None) is None


def test_placeholder_resources_names_rule_and_resource():
    jobs = [SimpleNamespace(resources={"mem_mb": 100}, rule=SimpleNamespace(name="a")),
            SimpleNamespace(resources={"slurm_account": "REPLACE_ME_acct"}, rule=SimpleNamespace(name="b"))]
    assert placeholders.placeholder_resources(jobs).startswith(
        "resource slurm_account='REPLACE_ME_acct' of rule b is a placeholder; set it in the SLURM profile")
    assert placeholders.placeholder_resources(jobs[:1]) is None


def test_fill_defaults_fills_nested_and_partial_groups():
    sch = {"type": "object", "definitions": {"res": {"type": "object", "properties": {
        "gpu": {"type": "integer", "default": 0}, "runtime": {"type": "integer", "default": 10}}}},
        "properties": {"resources": {"type": "object", "default": {}, "properties": {
            "embed": {"$ref": "#/definitions/res", "default": {"runtime": 60, "mem_mb": 8000}}}}}}
    config = {"resources": {"embed": {"gpu": 1}}}
    schema.fill_defaults(config, sch, sch["definitions"])
    # the group's own default fills what the partial block leaves out, then the definition's defaults
    assert config == {"resources": {"embed": {"gpu": 1, "runtime": 60, "mem_mb": 8000}}}
    empty: dict = {}
    schema.fill_defaults(empty, sch, sch["definitions"])
    assert empty == {"resources": {"embed": {"runtime": 60, "mem_mb": 8000, "gpu": 0}}}


def test_command_line_values_are_yaml_typed():
    assert schema.typed_command_line({"pretrain": {"max_steps": "50", "preset": "null", "set": {"x": "[1, 2]"}},
                                      "top": "7"}) == {
        "pretrain": {"max_steps": 50, "preset": None, "set": {"x": "[1, 2]"}}, "top": "7"}
    assert schema.yaml_typed(["0.5", "", "a: b", "true"]) == [0.5, "", "a: b", True]


def test_rule_resources_and_launcher():
    res = {"runtime": 60, "mem_mb": 1000, "cpus_per_task": 4, "gpu": 4, "gpu_model": "a100", "nodes": 1}
    config = {"resources": {"pretrain": res}}
    assert resources.rule_resources(config, "pretrain") == {
        "runtime": 60, "mem_mb": 1000, "cpus_per_task": 4, "gpu": 4, "gpu_model": "a100"}
    assert resources.pretrain_launcher(config) == "torchrun --standalone --nproc_per_node 4"
    config["resources"]["pretrain"] = {**res, "nodes": 2}
    assert resources.rule_resources(config, "pretrain") == {
        "runtime": 60, "mem_mb": 1000, "cpus_per_task": 4, "nodes": 2, "tasks": 2, "mpi": "srun",
        "slurm_extra": "--gpus-per-node=a100:4"}
    assert resources.pretrain_launcher(config).startswith("srun --ntasks 2 --kill-on-bad-exit=1 torchrun --nnodes 2 ")
    config["resources"]["pretrain"] = {**res, "gpu": 0, "gpu_model": None}
    assert resources.pretrain_launcher(config) == "python"
    assert resources.rule_resources(config, "pretrain")["gpu"] == 0


@pytest.mark.parametrize("group, res, message", [
    ("embed", {"nodes": 2, "gpu": 1}, "config resources.embed.nodes=2: only resources.pretrain can span nodes"),
    ("pretrain", {"nodes": 2, "gpu": 0}, "config resources.pretrain.nodes=2 needs resources.pretrain.gpu >= 1"),
])
def test_check_resources(group, res, message):
    config = {"resources": {"pretrain": {"nodes": 1, "gpu": 0}, group: res}}
    with pytest.raises(ValueError, match=f"^{message}"):
        resources.check_resources(config)
