"""smart.workflow.variants / overrides / tasks / study / segmentation / targets: values against the shipped demo
config and small hand-written configs (each expectation worked out from the config by hand)."""

from __future__ import annotations

import json

import pytest

from plan_configs import shipped
from smart import overlay
from smart.workflow import overrides, segmentation, study, targets, tasks, variants


@pytest.fixture(scope="module")
def demo():
    return shipped("config.yaml")


@pytest.fixture(scope="module")
def paper():
    return shipped("paper.yaml")


def test_default_heads_follow_sa():
    assert variants.default_heads(True) == ["cls"]
    assert variants.default_heads(False) == ["pooled"]


def test_demo_variant_sets(demo):
    assert variants.variant_names(demo) == ["smart", "smit", "smart_no_nt", "scratch"]
    assert variants.pretrained_variants(demo) == ["smart", "smit", "smart_no_nt"]
    assert variants.sa_variants(demo) == ["smart", "smart_no_nt"]          # smit: sa false
    assert variants.sa_variants(demo, ["smit", "smart_no_nt", "scratch"]) == ["smart_no_nt"]
    assert [variants.variant_heads(demo, v) for v in variants.variant_names(demo)] == [
        ["cls"], ["pooled"], ["cls"], ["cls"]]


def test_paper_heads_and_model_overrides(paper):
    assert variants.variant_heads(paper, "smart") == ["cls", "pooled", "random_sa"]
    assert variants.variant_heads(paper, "smart_no_sa") == ["pooled"]
    assert variants.model_overrides(paper, "smart_vit") == {"model.arch": "vit"}
    assert variants.model_overrides(paper, "smart_no_nt") == {}


def test_overrides_merge_later_wins_first_position_kept():
    assert overlay.merged({"a": 1, "b": 2}, None, {"a": 3, "c": [1, 2]}) == {"a": 3, "b": 2, "c": [1, 2]}
    assert list(overlay.merged({"a": 1, "b": 2}, {"a": 3})) == ["a", "b"]
    items = overlay.set_items({"model.sa_stage": None, "masking.strategy": "random", "x": [1, 2]})
    assert items == ["model.sa_stage=null", "masking.strategy=random", "x=[1, 2]"]
    assert overlay.parse_set(items) == {"model.sa_stage": None, "masking.strategy": "random", "x": [1, 2]}
    assert overrides.set_args({"x": [1, 2]}, {"y": "a b"}) == "--set 'x=[1, 2]' --set 'y=a b'"
    assert overrides.optional_arg("--config", None) == ""
    assert overrides.optional_arg("--config", "my file.yaml") == "--config 'my file.yaml'"


def test_pretrain_words(demo, paper):
    assert variants.pretrain_words(demo, "smart_no_nt") == (
        "--method smart --preset tiny --max-steps 100 --set noisy_teacher.drop_ratio=0.0")
    assert variants.pretrain_words(paper, "smart_no_sa") == (
        "--method smart --preset paper --set model.sa_stage=null --set masking.strategy=random --set loss.aitd=0.0")


def test_scratch_and_downstream_overrides(demo):
    cfg = {**demo, "pretrain": {**demo["pretrain"], "set": {"model.embed_dim": 24, "optim.lr": 0.1}}}
    assert variants.scratch_overrides(cfg, "scratch") == {
        "scratch_method": "smart", "scratch_preset": "tiny", "scratch_model.embed_dim": 24}
    # finetune.set, then the task's set; the scratch keys first
    assert tasks.downstream_overrides(demo, "lidc", "smart") == {
        "epochs": 1, "batch_size": 4, "augment": False, "probe_max_iter": 500}
    assert tasks.downstream_overrides(demo, "lidc", "scratch") == {
        "scratch_method": "smart", "scratch_preset": "tiny", "epochs": 1, "batch_size": 4, "augment": False,
        "probe_max_iter": 500}
    assert tasks.downstream_words(demo, "response", "smit") == (
        "--set epochs=1 --set batch_size=4 --set augment=false --set probe_max_iter=500")


def test_tasks(demo):
    assert tasks.task_names(demo) == ["lidc", "response"]
    assert tasks.task_names({**demo, "finetune": {**demo["finetune"], "tasks": ["response"]}}) == ["response"]
    assert tasks.tasks_from(demo, "synthetic") == ["lidc", "response"]
    assert tasks.tasks_from(demo, "pylidc") == []
    assert tasks.n_folds(demo) == 2
    assert tasks.plan_tasks(demo) == {"lidc": {"label": "LIDC", "title": "LIDC malignancy"},
                                      "response": {"label": "Response", "title": "Immunotherapy response"}}
    untitled = {**demo, "tasks": {"t": {k: v for k, v in demo["tasks"]["lidc"].items() if k not in ("label", "title")}}}
    assert tasks.plan_tasks(untitled) == {"t": {"label": "t", "title": "t"}}


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["tasks"]["lidc"].update(source="pylidc", dicom_root=None),
     "config tasks.lidc.source='pylidc' needs tasks.lidc.dicom_root"),
    (lambda c: c["evaluate"].update(attention_tasks=["lidc", "nodule"]),
     "config evaluate.attention_tasks: unknown task(s) ['nodule']; configured tasks: ['lidc', 'response']"),
    (lambda c: c["finetune"].update(folds=4), "config finetune.folds=4 exceeds splits.folds=3"),
])
def test_check_tasks_names_the_key(demo, edit, message):
    cfg = json.loads(json.dumps(demo))
    edit(cfg)
    with pytest.raises(ValueError) as err:
        tasks.check_tasks(cfg)
    assert str(err.value) == message


def test_check_ablations(demo):
    cfg = json.loads(json.dumps(demo))
    cfg["ablations"] = {"x": ["smart", "smrt"]}
    with pytest.raises(ValueError, match=r"^config ablations.x: unknown variant\(s\) \['smrt'\]"):
        variants.check_ablations(cfg)
    cfg["ablations"] = {"pdr": ["smart", "scratch"]}
    with pytest.raises(ValueError, match=r"^config ablations.pdr: \['scratch'\] have no pretraining"):
        variants.check_ablations(cfg)


def test_plan_variants_make_defaults_explicit_in_name_order(demo):
    cfg = {**demo, "variants": {"b": {"method": "smit", "sa": False, "set": {"x": 1}}, "a": {"method": "smart"},
                                "c": {"method": "scratch", "heads": ["pooled", "cls"], "label": "C", "tables": ["II"]}}}
    assert variants.plan_variants(cfg) == {
        "a": {"method": "smart", "set": {}, "label": "a", "tables": [], "sa": True, "heads": ["cls"]},
        "b": {"method": "smit", "set": {"x": 1}, "label": "b", "tables": [], "sa": False, "heads": ["pooled"]},
        "c": {"method": "scratch", "set": {}, "label": "C", "tables": ["II"], "sa": True, "heads": ["pooled", "cls"]}}
    assert list(variants.plan_variants(cfg)) == ["a", "b", "c"]
    assert {v: r["heads"] for v, r in variants.plan_variants(demo).items()} == {
        "scratch": ["cls"], "smart": ["cls"], "smart_no_nt": ["cls"], "smit": ["pooled"]}


def test_pdr_sweep(paper):
    assert variants.pdr_sweep_variants(paper) == ["smart_no_nt", "pdr_01", "pdr_03", "pdr_05", "smart", "pdr_09"]
    assert variants.pdr_sweep_variants({**paper, "cluster": {"enabled": False}}) == []


def test_study_arms_labels_and_probe(demo):
    cfg = json.loads(json.dumps(demo))
    cfg["study"]["methods"] = {"smart": "smart", "branch": "smart", "random_init": "scratch"}
    cfg["study"]["sets"] = {"branch": {"model.sa_placement": "branch", "loss.aitd": 0.0}}
    cfg["study"]["probe_set"] = {"probe_max_iter": 50}
    assert study.study_arms(cfg) == ["smart", "branch", "random_init"]
    assert study.study_arms(cfg, True) == ["smart", "branch"]
    assert study.study_arms(cfg, False) == ["random_init"]
    assert study.arm_labels(cfg) == {"smart": "smart", "branch": "smart, model.sa_placement=branch, loss.aitd=0.0",
                                     "random_init": "scratch"}
    assert study.probe_overrides(cfg, "random_init", 2) == {
        "scratch_method": "smart", "scratch_preset": cfg["study"]["preset"], "seed": 2, "probe_max_iter": 50}
    assert study.probe_overrides(cfg, "smart", 1) == {"seed": 1, "probe_max_iter": 50}
    cfg["study"]["sets"] = {"random_init": {"loss.aitd": 0.0}}
    with pytest.raises(ValueError, match=r"arm\(s\) \['random_init'\], whose method is scratch"):
        study.check_study_sets(cfg)


def test_segmentation_variants_follow_the_resolved_arch(demo):
    arch = {"smart": "swin", "smit": "swin", "smart_no_nt": "vit", "scratch": "swin"}
    assert segmentation.segmentation_variants(demo, arch) == ["smart", "smit", "scratch"]       # listed
    unlisted = {**demo, "segmentation": {**demo["segmentation"], "variants": None}}
    assert segmentation.segmentation_variants(unlisted, arch) == ["smart", "smit", "scratch"]   # every Swin
    listed_vit = {**demo, "segmentation": {**demo["segmentation"], "variants": ["smart_no_nt"]}}
    with pytest.raises(ValueError, match="'smart_no_nt' is not a Swin encoder \\(model.arch 'vit'\\)"):
        segmentation.check_segmentation(listed_vit, arch)


def test_segmentation_network_overrides(paper):
    assert segmentation.network_overrides(paper, "smart_vit") == {
        "model.arch": "vit", "model_preset": "paper", **paper["segmentation"]["set"]}


def test_targets(demo):
    folds, heads = 2, 1
    fine = targets.finetune_targets(demo)
    # per task: variants x heads x fractions x folds fine-tunings + variants x probe fractions x folds probes
    assert len(fine) == 4 * heads * (2 + 1) * folds + 2 * 4 * 1 * folds
    assert fine[0] == "results/finetune/lidc/smart__cls/0.5/fold_0/metrics.json"
    assert fine[4] == "results/probe/lidc/smart/1.0/fold_0/metrics.json"
    assert targets.zeroshot_targets(demo) == [
        "results/zeroshot/smart/summary.json", "results/zeroshot/smart_no_nt/summary.json",
        "results/zeroshot/random/summary.json", "results/figures/attention/response/smart.png",
        "results/figures/attention/response/smart_no_nt.png"]
    # one SA variant (the first: smart), first head, smallest fraction, fold 0, each job kind once
    assert targets.rehearsal_targets(demo) == [
        "results/preprocess/manifest.csv", "results/preprocess/lidc/splits.json",
        "results/preprocess/response/splits.json", "results/preprocess/pylidc/nodules.csv",
        "results/pretrain/smart/encoder.pt", "results/cluster/smart/clusters.json",
        "results/finetune/lidc/smart__cls/0.5/fold_0/metrics.json", "results/probe/lidc/smart/1.0/fold_0/metrics.json",
        "results/finetune/response/smart__cls/1.0/fold_0/metrics.json",
        "results/probe/response/smart/1.0/fold_0/metrics.json",
        "results/zeroshot/smart/summary.json", "results/zeroshot/random/summary.json",
        "results/figures/attention/response/smart.png"]


@pytest.mark.parametrize("argv, expected", [
    (["-n"], []),
    (["-n", "segmentation", "--cores", "2"], ["segmentation"]),
    (["study", "--configfile", "config/paper.yaml", "--profile", "slurm"], ["study"]),
    (["--cores"], None),   # unreadable: every target family counts as planned
])
def test_requested_targets(argv, expected):
    assert targets.requested_targets(argv) == expected
