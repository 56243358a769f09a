"""Every shipped config resolves through the package before any job (smart.workflow.resolve / checks), and a
variant that could not start is a config-time error naming the variant and the key."""

from __future__ import annotations

import copy

import pytest

from plan_configs import SHIPPED, filled, shipped
from smart.config import SCHEMA as PRETRAIN_SCHEMA
from smart.downstream.protocol import TYPES as DOWNSTREAM_TYPES
from smart.workflow.checks import check_before_any_job, check_raw_config
from smart.workflow.resolve import resolve_plan, resolve_segmentation, resolve_study_probe, resolve_task
from smart.workflow.tasks import downstream_words

PAPER_SWIN = ["smart", "smit", "ibot", "scratch", "smart_no_nt", "smart_no_sa", "loss_amip", "loss_amip_ampd",
              "loss_amip_ampd_aitd", "loss_amip_aitd_gitd", "loss_ampd_aitd_gitd", "smart_sa1", "smart_sa2",
              "smart_sa4", "ibot_smart", "pdr_01", "pdr_03", "pdr_05", "pdr_09"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_resolves_every_variant_and_task(path):
    config = shipped(path.name)
    plan = resolve_plan(config)   # placeholders (data paths) are not read by the resolution
    assert set(plan.arch) == set(config["variants"]) and set(plan.crop_edge) == set(config["tasks"])
    for variant, spec in config["variants"].items():
        if spec.get("sa", True) and spec["method"] != "scratch":
            assert plan.cls_token[variant], variant


def test_paper_plan_values():
    plan = resolve_plan(shipped("paper.yaml"))
    assert sorted(v for v, a in plan.arch.items() if a == "swin") == sorted(PAPER_SWIN)
    assert sorted(v for v, a in plan.arch.items() if a == "vit") == ["attmask", "mst", "smart_vit", "smit_vit"]
    # no SA on a Swin = no [CLS]; the ViT always has one (smart.models.factory.BACKBONES)
    assert sorted(v for v, c in plan.cls_token.items() if not c) == ["ibot", "smart_no_sa", "smit"]
    assert plan.crop_edge == {"lidc": 128, "response": 128}          # finetune.set crop_size [128, 128, 128]
    assert plan.segmentation_variants == ["smart", "smit", "scratch"]


def test_demo_plan_values():
    from smart.downstream.protocol import DEFAULTS

    plan = resolve_plan(shipped("config.yaml"))
    assert plan.arch == {"smart": "swin", "smit": "swin", "smart_no_nt": "swin", "scratch": "swin"}
    assert plan.cls_token == {"smart": True, "smit": False, "smart_no_nt": True, "scratch": True}
    # no crop_size in finetune.set: the downstream default
    assert plan.crop_edge == {"lidc": max(DEFAULTS["crop_size"]), "response": max(DEFAULTS["crop_size"])}
    # study defaults (config/schema.yaml): smart_no_sa and smit have no SA
    assert plan.study_sa_arms == ["smart", "smart_no_nt", "amip"]
    # what `smart tables` reads from results/plan.json (config/config.yaml variants, tasks, table_tasks)
    assert list(plan.variants) == ["scratch", "smart", "smart_no_nt", "smit"]
    assert plan.variants["smit"] == {"method": "smit", "set": {}, "label": "SMIT (S)",
                                     "tables": ["I", "II", "III", "IV", "VI"], "sa": False, "heads": ["pooled"]}
    assert plan.variants["smart_no_nt"]["set"] == {"noisy_teacher.drop_ratio": 0.0}
    assert plan.tasks == {"lidc": {"label": "LIDC", "title": "LIDC malignancy"},
                          "response": {"label": "Response", "title": "Immunotherapy response"}}
    assert plan.table_tasks == {"II": "lidc", "III": "response", "IV": "lidc", "V": "lidc", "VI": "lidc"}


@pytest.mark.parametrize("name", ["paper.yaml", "rehearsal.yaml"])
def test_smart_no_sa_with_aitd_on_fails_at_config_time(name):
    """The shipped w/o-SA ablation before its fix: AITD distils a [CLS] the variant has not."""
    config = shipped(name)
    del config["variants"]["smart_no_sa"]["set"]["loss.aitd"]
    with pytest.raises(ValueError) as err:
        resolve_plan(config)
    # the variant and the key named here; the reason is smart.config's own message
    message = str(err.value)
    assert message.startswith("config variants.smart_no_sa (method 'smart'): ") and "loss.aitd" in message, message
    assert "[CLS]" in message and "\n" not in message


def test_a_cls_head_without_cls_fails():
    config = shipped("config.yaml")
    config["variants"]["smit"]["heads"] = ["pooled", "random_sa"]
    with pytest.raises(ValueError, match=r"^config variants.smit.heads: \['random_sa'\] read the \[CLS\] token"):
        resolve_plan(config)
    config = shipped("config.yaml")
    config["variants"]["smit"]["sa"] = True
    with pytest.raises(ValueError, match=r"^config variants.smit.heads: \['cls'\] read the \[CLS\] token"):
        resolve_plan(config)


def test_sa_flag_without_attention_map_fails():
    config = shipped("config.yaml")
    config["variants"]["smit"].update(sa=True, heads=["pooled"])
    with pytest.raises(ValueError, match=r"^config variants.smit.sa = true, but its encoder has no \[CLS\]"):
        resolve_plan(config)


@pytest.mark.parametrize("edit, prefix, key", [
    (lambda c: c["tasks"]["lidc"]["set"].update(crop_size=[64, 64]),
     "config tasks.lidc (fine-tuning variant 'smart'): ", "crop_size"),
    (lambda c: c["study"]["sets"].update(smart={"masking.ratio": 1.5}), "config study.methods.smart ('smart'): ",
     "masking.ratio"),
])
def test_package_errors_name_where_and_the_key(edit, prefix, key):
    """The reason is the package's own message (smart.config / smart.downstream.protocol); the workflow names
    where in the workflow config it came from."""
    config = shipped("config.yaml")
    edit(config)
    with pytest.raises(ValueError) as err:
        resolve_plan(config)
    assert str(err.value).startswith(prefix) and key in str(err.value), str(err.value)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["finetune"]["set"].update({"loss.aitd": 0}),
     "config finetune.set: 'loss.aitd' is a pretraining key; put it under pretrain.set or a variant's set"),
    (lambda c: c["variants"]["smart"].update(set={"model.sa_stag": 2}),
     "unknown pretraining config key 'model.sa_stag' in config variants.smart.set (did you mean 'model.sa_stage'?); "
     "allowed: " + ", ".join(sorted(PRETRAIN_SCHEMA["model"]))),
    (lambda c: c["pretrain"]["set"].update(batch_size=2),  # a fine-tuning key given to pretraining
     "config pretrain.set: 'batch_size' is not a pretraining key (smart.config, docs/ARCHITECTURE.md "
     "'Pretraining config keys'); fine-tuning keys go under finetune.set"),
    (lambda c: c["finetune"]["set"].update(epochz=1),  # named as finetune.set's, not as the first task's
     "config finetune.set: unknown downstream config key 'epochz' in --set (did you mean 'epochs'?); allowed: "
     + ", ".join(sorted(DOWNSTREAM_TYPES))),
    (lambda c: c["pretrain"]["set"].update({"model.arch": "vit"}) or c["segmentation"].update(variants=["smart"]),
     "config segmentation.variants: 'smart' is not a Swin encoder (model.arch 'vit'); SwinUNETR needs one"),
])
def test_resolution_errors_name_the_key(edit, message):
    config = shipped("config.yaml")
    edit(config)
    with pytest.raises(ValueError) as err:
        resolve_plan(config)
    assert str(err.value) == message


@pytest.mark.parametrize("where", ["finetune.set", "tasks.lidc.set"])
def test_optim_lr_in_a_finetuning_set_is_the_finetuning_lr(where):
    """The workflow takes the spelling the package takes (smart.overlay.OPTIM_ALIASES): ``optim.lr`` in a
    fine-tuning ``set`` passes the check before any job and is the fine-tuning ``lr`` of exactly the tasks it
    covers."""
    from smart.downstream.protocol import DEFAULTS

    config = shipped("config.yaml")
    block = config["finetune"]["set"] if where == "finetune.set" else config["tasks"]["lidc"]["set"]
    block.update({"optim.lr": 1e-4, "optim.weight_decay": 0.01})
    check_before_any_job(config, ["config/config.yaml"], [])
    for task in config["tasks"]:
        covered = where == "finetune.set" or task == "lidc"
        for variant in config["variants"]:
            resolved = resolve_task(config, task, variant)
            assert (resolved["lr"], resolved["weight_decay"]) == (
                (1e-4, 0.01) if covered else (DEFAULTS["lr"], DEFAULTS["weight_decay"])), (task, variant)
    assert "--set optim.lr=0.0001" in downstream_words(config, "lidc", "smart")  # what the rules pass


@pytest.mark.parametrize("where", ["finetune.set", "tasks.lidc.set"])
def test_a_misspelt_optim_lr_in_a_finetuning_set_is_one_line(where):
    config = shipped("config.yaml")
    block = config["finetune"]["set"] if where == "finetune.set" else config["tasks"]["lidc"]["set"]
    block["optim.lrr"] = 1e-4
    with pytest.raises(ValueError) as err:
        check_before_any_job(config, ["config/config.yaml"], [])
    message = str(err.value)
    block = "config finetune.set: " if where == "finetune.set" else "config tasks.lidc (fine-tuning variant 'smart'): "
    assert message.startswith(block + "unknown downstream config key 'optim.lrr' in --set (did you mean "
                              "'optim.lr'?); allowed: "), message
    assert "\n" not in message and ", lr, " in message


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["study"]["probe_set"].update(probe_maxiter=500),
     "config study.probe_set (probe of study arm 'smart'): unknown downstream config key 'probe_maxiter' in --set "
     "(did you mean 'probe_max_iter'?); allowed: "),
    (lambda c: c["study"]["probe_set"].update(probe_C=[0.1, "big"]),
     "config study.probe_set (probe of study arm 'smart'): downstream config key 'probe_C': expected a list of one "
     "or more numbers, got [0.1, 'big'] (from --set)"),
    # only the scratch arm builds its encoder from scratch_model: the first arm that cannot start is named
    (lambda c: c["study"]["probe_set"].update({"scratch_model.embed_dim": "wide"}),
     "config study.probe_set (probe of study arm 'random_init'): config key 'model.embed_dim': expected an "
     "integer, got 'wide' (from --set)"),
    (lambda c: c["segmentation"]["set"].update(stepz=60),
     "config segmentation.set (segmentation of variant 'smart'): unknown segmentation config key 'stepz' in --set "
     "(did you mean 'steps'?); allowed: batch_size, "),
    (lambda c: c["segmentation"]["set"].update(overlap=1.5),
     "config segmentation.set (segmentation of variant 'smart'): segmentation config key 'overlap': expected a "
     "number in [0, 1), got 1.5"),
])
def test_study_probe_set_and_segmentation_set_fail_before_any_job(edit, message):
    """study.probe_set and segmentation.set pass the schema as open mappings; the check before any job resolves
    them through the package's loaders, so a typo is one line naming the block, the key, the value and what is
    allowed instead of a failed job."""
    config = shipped("config.yaml")
    edit(config)
    with pytest.raises(ValueError) as err:
        check_before_any_job(config, ["config/config.yaml"], [])
    assert str(err.value).startswith(message) and "\n" not in str(err.value), str(err.value)


def test_study_probe_and_segmentation_resolve_to_the_words_the_rules_pass():
    from smart.downstream.protocol import DEFAULTS

    config = shipped("config.yaml")
    config["study"]["probe_set"] = {"probe_max_iter": 300, "optim.lr": 1e-3}
    probe = resolve_study_probe(config, "smart")
    assert (probe["probe_max_iter"], probe["lr"], probe["seed"]) == (300, 1e-3, config["study"]["seeds"][0])
    assert probe["scratch_preset"] == DEFAULTS["scratch_preset"]
    scratch = resolve_study_probe(config, "random_init")  # scratch arm: SMART at the study preset
    assert (scratch["scratch_method"], scratch["scratch_preset"]) == ("smart", config["study"]["preset"])
    segmentation = resolve_segmentation(config, "smart")
    for key, value in config["segmentation"]["set"].items():
        assert segmentation[key] == value, key
    assert segmentation["model_preset"] == config["pretrain"]["preset"]


def test_raw_checks_run_before_the_schema():
    with pytest.raises(ValueError, match=r"^config pretrain.set: 'epochs' is not a pretraining key"):
        check_raw_config({"pretrain": {"set": {"epochs": 5}}})
    with pytest.raises(ValueError, match=r"^config finetune.resources: resources now live in one block"):
        check_raw_config({"finetune": {"resources": {}}})
    check_raw_config({"variants": {"a": {"set": {"model.arch": "vit"}}}, "pretrain": "not a mapping"})


def test_check_before_any_job_returns_the_plan_and_reports_every_placeholder():
    demo = shipped("config.yaml")
    assert check_before_any_job(demo, ["config/config.yaml"], []) == resolve_plan(demo)
    paper = shipped("paper.yaml")
    with pytest.raises(ValueError) as err:
        check_before_any_job(paper, ["my/paper copy.yaml"], [])
    lines = str(err.value).splitlines()
    assert lines[0].startswith("my/paper copy.yaml: 6 value(s) still hold the placeholder REPLACE_ME")
    assert lines[1:] == [
        "  config data.ct.paths[0] = '/data/REPLACE_ME/pretrain_ct/lung' is a placeholder",
        "  config data.ct.paths[1] = '/data/REPLACE_ME/pretrain_ct/other' is a placeholder",
        "  config data.organmnist.npz = '/data/REPLACE_ME/medmnist/organmnist3d_64.npz' is a placeholder",
        "  config data.raters.csv = '/data/REPLACE_ME/5R/raters.csv' is a placeholder",
        "  config tasks.lidc.dicom_root = '/data/REPLACE_ME/LIDC-IDRI' is a placeholder",
        "  config tasks.response.cohort = '/data/REPLACE_ME/immunotherapy/cohort.csv' is a placeholder"]


def test_filled_config_is_not_mutated_by_resolution():
    config = shipped("paper.yaml")
    before = copy.deepcopy(config)
    resolve_plan(config)
    assert config == before
    assert filled(before) == before   # filling is idempotent
