"""smart.config: resolution order, --set parsing, validation errors that name the key."""

from __future__ import annotations

import pytest
import yaml

from smart import config
from smart.config import DEFAULTS, PAPER_STEPS_PER_EPOCH, load_config
from smart.ssl.methods import method_names
from smart.ssl.sections import pretrain_sections
from smart.train.pretrain import run_stabilisers


def test_defaults_cover_every_contract_key():
    # docs/ARCHITECTURE.md "Pretraining config keys", written out independently of SCHEMA.
    contract = """model.arch model.embed_dim model.depths model.num_heads model.window_size model.patch_size
    model.drop_path_rate model.sa_stage model.sa_depth model.sa_heads model.vit_dim model.vit_depth model.vit_heads
    model.vit_patch data.crop_size data.batch_size data.num_workers data.cache masking.strategy masking.ratio
    masking.hint_ratio noisy_teacher.drop_ratio loss.amip loss.ampd loss.aitd loss.gitd loss.out_dim loss.student_temp
    loss.teacher_temp loss.warmup_teacher_temp loss.warmup_teacher_temp_steps loss.center_momentum ema.momentum_start
    ema.momentum_end optim.lr optim.min_lr optim.weight_decay optim.warmup_steps optim.clip_grad train.steps
    train.seed train.checkpoint_every train.log_every train.max_nonfinite train.compile""".split()
    flat = config.flatten(DEFAULTS)
    assert set(contract) <= set(flat)
    assert set(flat) == set(config.flatten(config.SCHEMA))


def test_paper_preset_matches_sec_iv_c():
    cfg = load_config("smart", "paper")
    m = cfg["model"]
    assert (m["embed_dim"], m["depths"], m["num_heads"], m["window_size"], m["patch_size"]) == (48, [2, 2, 8, 2], [4, 4, 8, 16], 4, 2)
    assert m["drop_path_rate"] == 0.1 and m["sa_stage"] == 3
    assert cfg["data"]["crop_size"] == [128, 128, 128]
    assert cfg["optim"]["lr"] == 8e-4
    # 4 GPUs x 4 pairs: one epoch = 651 steps
    stab = run_stabilisers(pretrain_sections(cfg), n_samples=10412, world_size=4)
    assert cfg["train"]["steps"] == 800 * PAPER_STEPS_PER_EPOCH and stab.warmup_steps == 80 * PAPER_STEPS_PER_EPOCH
    assert stab.steps_per_epoch == PAPER_STEPS_PER_EPOCH and stab.freeze_last_layer_steps == PAPER_STEPS_PER_EPOCH
    assert stab.lr == 8e-4 and (stab.weight_decay, stab.weight_decay_end) == (0.04, 0.4)
    assert stab.teacher_warmup_steps == 30 * PAPER_STEPS_PER_EPOCH
    assert stab.teacher_temps == {"ampd": (0.04, 0.04), "aitd": (0.04, 0.07), "gitd": (0.04, 0.07)}
    assert PAPER_STEPS_PER_EPOCH == -(-10412 // 16)
    assert (cfg["loss"]["amip"], cfg["loss"]["ampd"], cfg["loss"]["aitd"], cfg["loss"]["gitd"]) == (1.0, 0.1, 0.1, 0.1)
    assert (cfg["masking"]["ratio"], cfg["masking"]["hint_ratio"], cfg["noisy_teacher"]["drop_ratio"]) == (0.7, 0.1, 0.7)
    assert cfg["method"] == "smart"


def test_resolution_order_preset_method_yaml_set(tmp_path):
    yml = tmp_path / "c.yaml"
    # YAML beats the method (smit sets drop_ratio 0) and the preset (tiny sets lr 5e-4); --set beats YAML.
    yml.write_text(yaml.safe_dump({"noisy_teacher": {"drop_ratio": 0.3}, "optim.lr": 1e-3, "train": {"steps": 7}}))
    cfg = load_config("smit", "tiny", yml, ["train.steps=9", "model.depths=[1, 2, 1, 1]"])
    assert cfg["noisy_teacher"]["drop_ratio"] == 0.3
    assert cfg["optim"]["lr"] == 1e-3
    assert cfg["train"]["steps"] == 9
    assert cfg["model"]["depths"] == [1, 2, 1, 1]
    assert cfg["model"]["embed_dim"] == 12  # from the tiny preset
    assert cfg["masking"]["strategy"] == "random"  # from the smit method


def test_set_values_are_yaml_typed():
    cfg = load_config("smart", None, None, ["model.sa_stage=null", "masking.strategy=random", "loss.aitd=0",
                                           "data.cache=false", "optim.lr=2e-4"])
    assert cfg["model"]["sa_stage"] is None and cfg["data"]["cache"] is False
    assert cfg["loss"]["aitd"] == 0.0 and isinstance(cfg["loss"]["aitd"], float)
    assert cfg["optim"]["lr"] == 2e-4


def test_unknown_key_names_it_with_suggestion():
    with pytest.raises(ValueError, match=r"unknown config key 'loss\.aitdd'.*did you mean 'loss\.aitd'"):
        load_config("smart", None, None, ["loss.aitdd=0"])
    with pytest.raises(ValueError, match=r"unknown config key 'trian\.steps'"):
        load_config("smart", None, None, {"trian": {"steps": 3}})


@pytest.mark.parametrize("item, expected", [
    ("train.steps=abc", r"'train\.steps': expected an integer, got 'abc'"),
    ("train.steps=1.5", r"'train\.steps': expected an integer"),
    ("data.crop_size=[64,64]", r"'data\.crop_size': expected a list of 3 integers"),
    ("masking.strategy=top", r"'masking\.strategy': expected one of random, blockwise, attention_high, attention_low"),
    ("data.cache=3", r"'data\.cache': expected true or false"),
    ("optim.lr=true", r"'optim\.lr': expected a number"),
])
def test_wrong_type_names_key_expected_and_got(item, expected):
    with pytest.raises(ValueError, match=expected):
        load_config("smart", "tiny", None, [item])


@pytest.mark.parametrize("items, expected", [
    (["masking.ratio=0.95", "masking.hints=top"], "masking.ratio \\+ masking.hint_ratio must be <= 1"),
    # The bad input of issue #13: r <= s, a placement without an SA block, an SA nothing trains, a bad drop unit.
    (["masking.ratio=0.1", "masking.hint_ratio=0.1"], r"masking.ratio must exceed masking.hint_ratio .*r=0.1 <= s=0.1"),
    (["model.sa_stage=null", "masking.strategy=random", "loss.aitd=0", "model.sa_placement=inline"],
     r"'model.sa_placement'='inline' needs an SA block, but model.sa_stage is null"),
    (["model.arch=vit", "model.sa_placement=branch"], r"model.arch=vit has no SA block"),
    (["model.sa_placement=branch", "loss.aitd=0"], r"only loss.aitd train it and all are 0: the masks would come"),
    (["loss.aitd=0", "loss.amip=0", "loss.gitd=0"], r"sa_placement=inline only loss.aitd/amip/gitd train it"),
    (["noisy_teacher.unit=24"], r"'noisy_teacher.unit'=24 does not divide data.crop_size \[128, 128, 128\]"),
    (["loss.koleo=-0.1"], r"'loss.koleo' is a loss weight and must be >= 0, got -0.1"),
    (["loss.koleo=0.1", "data.batch_size=1"], r"'loss.koleo'=0.1 needs data.batch_size >= 2"),
    (["noisy_teacher.unit=3"], r"'noisy_teacher.unit'=3 must be a positive multiple of the swin patch size 2"),
    (["model.arch=vit", "noisy_teacher.unit=8"], r"multiple of the vit patch size 16"),
    (["optim.lr_base_batch=0"], r"'optim.lr_base_batch' must be > 0 or null"),
    (["optim.freeze_last_layer_epochs=-1"], r"'optim.freeze_last_layer_epochs' must be >= 0"),
    (["masking.ratio=1.5"], r"'masking\.ratio' must lie in \[0.0, 1.0\]"),
    (["model.sa_stage=null"], "needs an attention map"),
    (["model.sa_stage=null", "masking.strategy=random"], "loss.aitd > 0 needs a \\[CLS\\]"),
    (["loss.amip=0", "loss.ampd=0", "loss.aitd=0", "loss.gitd=0"], "nothing to train"),
    (["train.steps=0"], r"'train\.steps' must be > 0"),
    (["model.sa_stage=5"], "model.sa_stage must be in 1..4"),
])
def test_cross_key_validation(items, expected):
    with pytest.raises(ValueError, match=expected):
        load_config("smart", None, None, items)


def test_unknown_method_and_preset_list_choices():
    # MONAI look_up_option errors, on one line, naming what was looked up and every registered choice
    with pytest.raises(ValueError, match="^method: .*'dino'") as err:
        load_config("dino")
    assert "\n" not in str(err.value) and all(f"'{name}'" in str(err.value) for name in method_names())
    with pytest.raises(ValueError, match="^preset: .*'huge'.*Available options are") as err:
        load_config("smart", "huge")
    assert all(f"'{name}'" in str(err.value) for name in ("paper", "small", "tiny"))
    with pytest.raises(ValueError, match="^method: By 'smartt', did you mean 'smart'"):
        load_config("smartt")


def test_bad_set_syntax_and_yaml(tmp_path):
    with pytest.raises(ValueError, match="--set expects key=value, got 'train.steps'"):
        load_config("smart", None, None, ["train.steps"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="expected a mapping"):
        load_config("smart", None, bad)
    with pytest.raises(ValueError, match="does not exist"):
        load_config("smart", None, tmp_path / "missing.yaml")


@pytest.mark.parametrize("name", method_names())
def test_every_method_and_ablation_resolves(name):
    for preset in ("tiny", "paper"):
        cfg = load_config(name, preset)
        assert cfg["method"] == name


def test_activation_checkpointing_reaches_the_encoder():
    from smart.config import encoder_config, load_config
    from smart.models.factory import build_encoder

    cfg = load_config("smart", "tiny", None, ["model.use_checkpoint=true"])
    encoder = build_encoder(encoder_config(cfg))
    assert encoder.model_config["use_checkpoint"] is True
    assert all(block.use_checkpoint for block in encoder.layers1[0].blocks)  # MONAI's BasicLayer -> SwinTransformerBlock
    assert load_config("smart", "paper")["model"]["vit_dim"] == 768  # Sec. IV-C ViT: 768 features, 8 heads


def test_small_preset_geometry_for_cpu_studies():
    """Issue #13: >= 64^3 crops so the SA/mask grid is >= 4^3 and stage 4 >= 2^3, with overlapping body views."""
    from smart.config import encoder_config
    from smart.models.factory import build_encoder

    for method in ("smart", "smit", "smart_no_sa", "amip"):
        cfg = load_config(method, "small")
        enc = build_encoder(encoder_config(cfg))
        crop = tuple(cfg["data"]["crop_size"])
        assert min(crop) >= 64 and all(g >= 4 for g in enc.mask_grid(crop))
        assert all(s // (enc.patch_size[0] * 16) >= 2 for s in crop)  # stage-4 map
        assert cfg["data"]["view_offset"] is not None and cfg["noisy_teacher"]["unit"] == 16
    stab = run_stabilisers(pretrain_sections(load_config("smart", "small")), n_samples=8)
    assert stab.steps_per_epoch == 4 and stab.warmup_steps == 40 and stab.freeze_last_layer_steps == 4


def test_data_group_is_free_text_or_null():
    assert load_config("smart", "small", None, ["data.group=lung"])["data"]["group"] == "lung"
    assert load_config("smart", "small")["data"]["group"] is None
    with pytest.raises(ValueError, match="config key 'data.group': expected a non-empty string, got 5"):
        load_config("smart", "small", None, ["data.group=5"])
