"""Segmentation fine-tune (smart.downstream.segmentation): crops, Dice against its formula, SwinUNETR initialised
through MONAI's load_from, and a run + bit-exact resume on CPU with real files (plus the table smart.eval.segmentation_table
renders from it)."""

from __future__ import annotations

import dataclasses
import json
import signal

import numpy as np
import pandas as pd
import pytest
import torch

from labelled_helpers import write_labelled_csv
from smart.cli import main
from smart.data.labelled_volumes import LabelledVolume
from smart.downstream.sections import segmentation_section
from smart.downstream.segmentation import (build_model, dice_per_structure, load_segmentation_config, model_config,
                                           sample_crops)
from smart.models.encoder_io import export_encoder
from smart.models.factory import build_encoder
from smart.run_logging import read_metrics
from tables_fixtures import write_plan
from train_helpers import sigterm_at_first_log


@pytest.fixture(scope="module")
def labelled_csv(tmp_path_factory):
    return write_labelled_csv(tmp_path_factory.mktemp("seg"))


TINY = ["model_preset=tiny", "structures=[lung, tumour]", "batch_size=1", "val_every=2", "checkpoint_every=2",
        "log_every=1", "sw_batch_size=1"]


# ---------------------------------------------------------------------------------------------- crops and Dice
def test_crops_are_a_function_of_seed_and_step():
    rng = np.random.default_rng(0)
    label = np.zeros((40, 80, 70), np.int64)
    label[30:34, 60:64, 50:54] = 1                                       # small, off-centre foreground
    vols = [LabelledVolume("a", rng.random(label.shape, dtype=np.float32), label)]
    fg = [np.flatnonzero(label)]
    cfg = segmentation_section(load_segmentation_config(None, ["batch_size=3", "pos_fraction=1.0"]))
    x, y = sample_crops(vols, fg, 5, cfg)
    assert x.shape == (3, 1, 64, 64, 64) and y.shape == (3, 1, 64, 64, 64) and y.dtype == torch.int64
    assert all(int(y[b].sum()) > 0 for b in range(3))                   # pos_fraction 1: foreground in every crop
    assert (x[:, :, 40:] == 0).all() and (y[:, :, 40:] == 0).all()        # depth 40 < 64: zero padding
    x2, y2 = sample_crops(vols, fg, 5, cfg)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    anywhere = dataclasses.replace(cfg, pos_fraction=0.0)
    assert not torch.equal(sample_crops(vols, fg, 6, anywhere)[0], sample_crops(vols, fg, 7, anywhere)[0])
    # each crop is a window of the volume (where it is not padding)
    xs = x[0, 0, :40].numpy()
    hits = [(i, j) for i in range(0, 80 - 63) for j in range(0, 70 - 63)
            if np.array_equal(vols[0].image[:, i:i + 64, j:j + 64], xs)]
    assert len(hits) == 1


def test_dice_matches_formula():
    truth = torch.zeros(8, 8, 8, dtype=torch.long)
    pred = torch.zeros_like(truth)
    truth[:4] = 1
    pred[:2] = 1
    pred[2:6] = 2                                                        # structure 2 predicted, absent in truth
    truth[7, 7, 7] = 3
    pred[7, 7, 7] = 3
    scores = dice_per_structure(pred, truth, 4)
    inter, a, b = 2 * 64, 4 * 64, 2 * 64                                # |P ∩ T|, |T|, |P| of structure 1
    assert scores[0] == pytest.approx(2 * inter / (a + b))
    assert scores[1] is None and scores[2] == pytest.approx(1.0) and scores[3] is None


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="unknown segmentation config key 'stepz'"):
        load_segmentation_config(None, ["stepz=3"])
    with pytest.raises(ValueError, match="crop_size"):
        load_segmentation_config(None, ["crop_size=[32, 32, 32]"])
    with pytest.raises(ValueError, match=r"^segmentation config key 'steps': expected an integer >= 1, got 0$"):
        load_segmentation_config(None, ["steps=0"])
    assert load_segmentation_config(None, ["model.embed_dim=24"])["model"] == {"embed_dim": 24}


# ---------------------------------------------------------------------------------------------- model init
def test_load_from_puts_our_encoder_into_swinvit(tmp_path):
    cfg = load_segmentation_config(None, TINY)
    encoder = build_encoder({**model_config(cfg), "img_size": 64})
    with torch.no_grad():
        for p in encoder.parameters():
            p.add_(0.1)
    enc_file = export_encoder(encoder, tmp_path / "encoder.pt", model_config=encoder.model_config, method="smart",
                              step=1)
    assert main(["export", "--encoder", str(enc_file), "--format", "monai-ssl", "--out", str(tmp_path / "m.pt")]) == 0
    model, init = build_model(cfg, tmp_path / "m.pt")
    ours = encoder.backbone_state_dict()
    assert all(torch.equal(v, ours[k]) for k, v in model.swinViT.state_dict().items())
    assert init["loaded"] == len(ours) and init["left_at_init"] == []
    scratch, _ = build_model(cfg, "none")
    again, _ = build_model(cfg, "none")
    assert all(torch.equal(a, b) for a, b in zip(scratch.state_dict().values(), again.state_dict().values()))  # seeded
    wider = load_segmentation_config(None, [*TINY, "model.embed_dim=24"])
    with pytest.raises(ValueError, match=r"m.pt: does not fit SwinUNETR"):
        build_model(wider, tmp_path / "m.pt")
    torch.save({"model": {}}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="foreign.pt: not MONAI self-supervised Swin weights"):
        build_model(cfg, tmp_path / "foreign.pt")


# ---------------------------------------------------------------------------------------------- run + resume
def test_run_resume_is_bit_exact_and_table(tmp_path, labelled_csv):
    args = ["segmentation", "--weights", "none", "--csv", str(labelled_csv)]
    sets = [s for kv in [*TINY, "steps=4"] for s in ("--set", kv)]
    assert main([*args, "--out", str(tmp_path / "straight"), *sets]) == 0
    assert main([*args, "--out", str(tmp_path / "split"), *sets, "--max-steps", "2"]) == 0
    assert not (tmp_path / "split" / "metrics.json").exists()
    assert main([*args, "--out", str(tmp_path / "split"), *sets, "--resume"]) == 0
    a = torch.load(tmp_path / "straight" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "model.pt", weights_only=True)
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    ma = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    mb = json.loads((tmp_path / "split" / "metrics.json").read_text())
    assert ma["test"] == mb["test"] and ma["history"] == mb["history"]
    la, lb = read_metrics(tmp_path / "straight" / "metrics.jsonl"), read_metrics(tmp_path / "split" / "metrics.jsonl")
    assert [r.get("loss") for r in la] == [r.get("loss") for r in lb] and [r["step"] for r in lb] == [1, 2, 2, 3, 4, 4]
    # record content: validation at steps 2 and 4, the best one selected, test Dice per structure in [0, 1]
    assert [h["step"] for h in ma["history"]] == [2, 4]
    best = max(ma["history"], key=lambda h: h["val_dice_mean"])
    assert ma["val"] == {"dice_mean": best["val_dice_mean"], "selected_step": best["step"]}
    assert set(ma["test"]["dice"]) == {"lung", "tumour"} and ma["test"]["n"] == 1
    assert all(0.0 <= v <= 1.0 for v in ma["test"]["dice"].values())
    assert ma["test"]["per_case"]["c3"] == ma["test"]["dice"]          # one test case: its Dice is the mean
    assert a["swin_unetr"]["feature_size"] == 12 and a["out_channels"] == 3
    # the table renders exactly these numbers
    out_csv, out_md = tmp_path / "t.csv", tmp_path / "t.md"
    plan = write_plan(tmp_path / "plan.json", {"straight": {"label": "S"}})   # the Variant column: the plan's label
    assert main(["segmentation-table", str(tmp_path / "straight" / "metrics.json"), "--plan", str(plan),
                 "--out-csv", str(out_csv), "--out-md", str(out_md)]) == 0
    row = pd.read_csv(out_csv, dtype=str).iloc[0]
    assert row["Variant"] == "S" and row["Init"] == "scratch"
    assert row["lung"] == f"{ma['test']['dice']['lung']:.3f}" and row["Mean"] == f"{ma['test']['dice_mean']:.3f}"
    assert "| S | scratch |" in out_md.read_text()
    # a resumed run refuses a different config
    assert main([*args, "--out", str(tmp_path / "split"), *sets, "--set", "lr=0.01", "--resume"]) == 2


def test_sigterm_checkpoints_exits_75_and_resume_is_bit_exact(tmp_path, labelled_csv, capsys, monkeypatch):
    """A real SIGTERM after the first checkpoint (SLURM's walltime warning): the step finishes, checkpoint_last.pt is
    written, exit 75; `--resume` then ends with the weights of an uninterrupted run."""
    args = ["segmentation", "--weights", "none", "--csv", str(labelled_csv)]
    sets = [s for kv in [*TINY, "steps=6", "checkpoint_every=1", "val_every=3"] for s in ("--set", kv)]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main([*args, "--out", str(straight), *sets]) == 0

    sent = sigterm_at_first_log(monkeypatch)
    code = main([*args, "--out", str(split), *sets])
    assert len(sent) == 1
    assert code == 75, capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    stopped = torch.load(split / "checkpoint_last.pt", weights_only=True)["step"]
    assert 1 <= stopped < 6 and not (split / "metrics.json").exists()
    assert main([*args, "--out", str(split), *sets, "--resume"]) == 0
    a = torch.load(straight / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(split / "model.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
