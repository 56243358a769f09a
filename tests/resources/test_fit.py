"""The fit check on a workflow config: which groups it covers, the settings it reads, and one clear line for an
unknown card, a micro-batch that does not divide the batch and a crop the encoder cannot take.

The config and the coefficients table: tests/resources_helpers.py (the workflow's own resolution is exercised end to
end in tests/workflow/test_gpu_plan.py)."""

from __future__ import annotations

import pytest
from resources_helpers import DATA, GIB, paper_config

from smart.resources.fit import check_fits
from smart.resources.workload import COMMAND_DEFAULTS, gpu_groups, workload


def gib(voxels_x_batch: int, per_voxel: float = 1024.0) -> float:
    return round((GIB + per_voxel * voxels_x_batch) / GIB, 2)


def test_groups_and_predictions_at_each_rules_settings():
    cfg = paper_config()
    assert gpu_groups(cfg) == ["pretrain", "finetune", "probe", "embed", "zeroshot", "attention_maps", "segmentation"]
    fits = {f.group: f for f in check_fits(cfg, DATA)}
    v128 = 128**3
    assert fits["pretrain"].predicted_peak_gb == gib(v128 * 4)            # 4 view pairs per GPU, bf16
    assert fits["finetune"].predicted_peak_gb == gib(v128 * 4, 256.0)     # micro-batch 4, bf16 + checkpointing
    assert fits["probe"].predicted_peak_gb == gib(v128 * 8)               # feature_batch_size 8 at the task crop
    assert fits["embed"].predicted_peak_gb == gib(64**3 * 8)              # `smart embed` defaults
    assert fits["zeroshot"].predicted_peak_gb == gib(v128)
    assert fits["segmentation"].predicted_peak_gb == gib(96**3 * 2)
    assert (fits["finetune"].gpu_model, fits["finetune"].gpu_mem_limit_gb) == ("a40", 48.0)
    assert all(f.fits for f in fits.values())


def test_refusal_names_rule_gib_card_and_a_fitting_setting():
    cfg = paper_config()
    cfg["finetune"]["set"].update(micro_batch_size=40, activation_checkpointing=False)
    fit = {f.group: f for f in check_fits(cfg, DATA)}["finetune"]
    assert not fit.fits and fit.predicted_peak_gb == gib(128**3 * 40)  # 81 GiB
    # largest micro-batch within 48 - 2 GiB: (46 - 1) GiB / (1 KiB x 128^3) = 22.5 -> the largest divisor of 40 is 20
    assert fit.suggestions[0] == "finetune.set micro_batch_size: 20 (divides batch_size 40; the effective batch stays 40)"
    # precision is already bf16 on CUDA (paper.yaml: precision auto): only checkpointing is suggested
    assert fit.suggestions[1] == "finetune.set activation_checkpointing: true with micro_batch_size: 40"
    # 81 GiB + the 2 GiB reserve exceed an 80 GiB card: the smallest listed card that holds it
    assert fit.suggestions[-1] == "resources.finetune.gpu_model: h200 (141 GiB)"
    text = fit.refusal()
    assert text.startswith(f"resources.finetune: one job is predicted to need {gib(128**3 * 40):.1f} GiB of GPU memory "
                           f"(finetune step, 128x128x128 x 40 in flight, bf16) but a40 has 48 GiB")
    assert text.endswith("; or ".join(fit.suggestions)) and "\n" not in text


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["resources"]["finetune"].update(gpu_model="v100"),
     "config resources.finetune.gpu_model='v100' is not in the card table"),
    (lambda c: c["finetune"]["set"].update(micro_batch_size=7),
     "config finetune.set / tasks.lidc.set: downstream config 'micro_batch_size' 7 does not divide 'batch_size' 40"),
    (lambda c: c["finetune"]["set"].update(crop_size=[100, 100, 100]),
     "config finetune.set / tasks.lidc.set crop_size=[100, 100, 100]: the encoder takes 3 edges that are multiples "
     "of 32"),
    (lambda c: c["pretrain"]["set"].update({"data.crop_size": [96, 96, 100]}),
     "config pretrain.set / variants.smart.set:"),
])
def test_bad_input_is_one_clear_line(edit, message):
    cfg = paper_config()
    edit(cfg)
    with pytest.raises(ValueError) as err:
        check_fits(cfg, DATA)
    assert str(err.value).startswith(message) and "\n" not in str(err.value), str(err.value)


def test_cpu_only_config_needs_no_coefficients():
    cfg = paper_config()
    for res in cfg["resources"].values():
        res["gpu"] = 0
    assert check_fits(cfg, None) == []  # the coefficients file is not even read


def test_command_defaults_match_the_commands_parsers():
    from smart.cli import build_parser

    for group, step, crop_flag in (("embed", "embed", None), ("zeroshot", "zeroshot", "crop"),
                                   ("attention_maps", "attention-maps", "crop")):
        args = build_parser(step).parse_args([step, "--encoder", "e.pt", *(
            ["--npz", "x.npz", "--out", "o"] if step == "embed" else
            ["--raters", "r.csv", "--out", "o"] if step == "zeroshot" else ["--cohort", "c.csv", "--out", "o"])])
        d = COMMAND_DEFAULTS[group]
        if crop_flag:
            assert list(getattr(args, crop_flag)) == d["crop"]
        if step == "embed":
            assert args.batch_size == d["batch_size"]
        if step == "attention-maps":
            assert args.n == d["batch_size"]
    w = workload("zeroshot", paper_config())
    assert (w.step, w.crop, w.batch) == ("attention", [128, 128, 128], 1)
