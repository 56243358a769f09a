"""Segmentation fine-tune (smart.downstream.segmentation): labelled-volume input checks, crops, Dice against its
formula, SwinUNETR initialised through MONAI's load_from, and a run + bit-exact resume on CPU with real files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import torch

from smart.cli import main
from smart.data.labelled_volumes import LabelledVolume, load_pair, read_labelled_csv
from smart.data.synthetic.segmentation import STRUCTURES, generate_case, split_of
from smart.downstream.segmentation import (build_model, dice_per_structure, load_segmentation_config, model_config,
                                           sample_crops)
from smart.models import build_encoder, export_encoder
from smart.train.run_logging import read_metrics


def _nifti(array, path, spacing=(2.0, 2.0, 2.0)):
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(spacing)
    sitk.WriteImage(img, str(path))
    return path


def _case(rng, shape=(64, 64, 64)):
    """A soft-tissue body with a 'lung' (1) box of air and a 'tumour' (2) sphere: learnable in a few steps."""
    hu = np.full(shape, -1000.0, np.float32)
    hu[8:56, 8:56, 8:56] = 40.0
    label = np.zeros(shape, np.uint8)
    z0 = int(rng.integers(12, 20))
    label[z0:z0 + 24, 14:40, 14:40] = 1
    hu[label == 1] = -850.0
    zz, yy, xx = np.ogrid[:64, :64, :64]
    label[(zz - 40) ** 2 + (yy - 44) ** 2 + (xx - 30) ** 2 <= int(rng.integers(25, 50))] = 2
    hu[label == 2] = 60.0
    return hu + rng.normal(0, 10, shape).astype(np.float32), label


@pytest.fixture(scope="module")
def labelled_csv(tmp_path_factory):
    root = tmp_path_factory.mktemp("seg")
    rng = np.random.default_rng(0)
    rows = []
    for i, split in enumerate(["train", "train", "val", "test"]):
        hu, label = _case(rng)
        _nifti(hu, root / f"ct{i}.nii.gz")
        _nifti(label, root / f"lab{i}.nii.gz")
        rows.append({"case_id": f"c{i}", "image": f"ct{i}.nii.gz", "label": f"lab{i}.nii.gz", "split": split})
    pd.DataFrame(rows).to_csv(root / "seg.csv", index=False)
    return root / "seg.csv"


TINY = ["model_preset=tiny", "structures=[lung, tumour]", "batch_size=1", "val_every=2", "checkpoint_every=2",
        "log_every=1", "sw_batch_size=1"]


# ---------------------------------------------------------------------------------------------- data
def test_synthetic_cases_and_splits():
    assert [split_of(i, 8) for i in range(8)] == ["train"] * 5 + ["val"] + ["test"] * 2
    assert [split_of(i, 3) for i in range(3)] == ["train", "val", "test"]
    with pytest.raises(ValueError, match=">= 3"):
        split_of(0, 2)
    hu, label = generate_case(0, 1)
    assert hu.dtype == np.int16 and label.shape == hu.shape == (64, 96, 96)
    present = set(np.unique(label).tolist())
    assert present == set(range(len(STRUCTURES) + 1))          # every structure is in the case
    assert hu[label == STRUCTURES.index("lung") + 1].mean() < -500 < hu[label == 3].mean()  # lung air, liver tissue
    again_hu, again_label = generate_case(0, 1)
    assert np.array_equal(hu, again_hu) and np.array_equal(label, again_label)


def test_csv_errors_name_the_file(tmp_path, labelled_csv):
    frame = pd.read_csv(labelled_csv)
    bad = tmp_path / "bad.csv"
    frame.drop(columns=["split"]).to_csv(bad, index=False)
    with pytest.raises(ValueError, match=r"bad.csv: missing column\(s\) \['split'\]"):
        read_labelled_csv(bad)
    frame.assign(split=["train", "train", "train", "test"]).to_csv(bad, index=False)
    with pytest.raises(ValueError, match=r"bad.csv: no case in split\(s\) \['val'\]"):
        read_labelled_csv(bad)
    frame.assign(split=["train", "training", "val", "test"]).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="unknown split value"):
        read_labelled_csv(bad)
    frame.assign(label=["nope.nii.gz"] * 4, image=[str(labelled_csv.parent / p) for p in frame.image]).to_csv(
        bad, index=False)
    with pytest.raises(ValueError, match=r"bad.csv: 4 label path\(s\) do not exist, e.g. .*nope.nii.gz"):
        read_labelled_csv(bad)


def test_pair_checks_and_resampling(tmp_path):
    hu = np.zeros((20, 24, 28), np.float32)
    label = np.zeros_like(hu, dtype=np.uint8)
    label[5:15, 6:18, 8:20] = 2
    image = _nifti(hu, tmp_path / "ct.nii.gz", (1.0, 1.0, 1.0))
    lab = _nifti(label, tmp_path / "lab.nii.gz", (1.0, 1.0, 1.0))
    vol = load_pair("c", str(image), str(lab), n_structures=2, spacing=2.0)
    assert vol.image.shape == vol.label.shape == (10, 12, 14)          # 1 mm -> 2 mm, (z, y, x)
    assert set(np.unique(vol.label)) == {0, 2} and vol.label.dtype == np.int64
    assert np.allclose(vol.image, 0.5)                                   # 0 HU -> (0 + 1000) / 2000
    with pytest.raises(ValueError, match=r"lab.nii.gz: label values must be integers 0..1"):
        load_pair("c", str(image), str(lab), n_structures=1, spacing=None)
    other = _nifti(label, tmp_path / "shifted.nii.gz", (1.0, 1.0, 1.5))
    with pytest.raises(ValueError, match="shifted.nii.gz: label grid .* differs from its image"):
        load_pair("c", str(image), str(other), n_structures=2)


def test_crops_are_a_function_of_seed_and_step():
    rng = np.random.default_rng(0)
    label = np.zeros((40, 80, 70), np.int64)
    label[30:34, 60:64, 50:54] = 1                                       # small, off-centre foreground
    vols = [LabelledVolume("a", rng.random(label.shape, dtype=np.float32), label)]
    fg = [np.flatnonzero(label)]
    cfg = load_segmentation_config(None, ["batch_size=3", "pos_fraction=1.0"])
    x, y = sample_crops(vols, fg, 5, cfg)
    assert x.shape == (3, 1, 64, 64, 64) and y.shape == (3, 1, 64, 64, 64) and y.dtype == torch.int64
    assert all(int(y[b].sum()) > 0 for b in range(3))                   # pos_fraction 1: foreground in every crop
    assert (x[:, :, 40:] == 0).all() and (y[:, :, 40:] == 0).all()        # depth 40 < 64: zero padding
    x2, y2 = sample_crops(vols, fg, 5, cfg)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    anywhere = {**cfg, "pos_fraction": 0.0}
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
    with pytest.raises(ValueError, match="'steps' must be an integer"):
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
    assert main(["segmentation-table", str(tmp_path / "straight" / "metrics.json"), "--labels", '{"straight": "S"}',
                 "--out-csv", str(out_csv), "--out-md", str(out_md)]) == 0
    row = pd.read_csv(out_csv, dtype=str).iloc[0]
    assert row["Variant"] == "S" and row["Init"] == "scratch"
    assert row["lung"] == f"{ma['test']['dice']['lung']:.3f}" and row["Mean"] == f"{ma['test']['dice_mean']:.3f}"
    assert "| S | scratch |" in out_md.read_text()
    # a resumed run refuses a different config
    assert main([*args, "--out", str(tmp_path / "split"), *sets, "--set", "lr=0.01", "--resume"]) == 2
