"""Issue #10, kind 5: every damaged file a command reads gives one line naming the file and the reason, a non-zero
exit and no output — never a traceback. Each damaged file is written here from a valid one."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from smart.cli import main as smart_main

def _organ_npz(path):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 11), ("val", 11), ("test", 11)):
        arrays[f"{split}_images"] = rng.integers(0, 255, (n, 28, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = np.arange(n).reshape(n, 1) % 11
    np.savez_compressed(path, **arrays)
    return path


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def _flip_middle(path):
    """Damage bytes in the middle (a zip member's deflate stream) and keep the end (the zip directory) intact."""
    data = bytearray(path.read_bytes())
    mid = len(data) // 3
    data[mid:mid + 64] = bytes(64)
    path.write_bytes(bytes(data))
    return path


def _one_line_error(capsys, step, path):
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"smart {step}: error: ") and str(path) in lines[0], lines[0]
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("damage", [_truncate, _flip_middle], ids=["truncated", "member-corrupt"])
def test_embed_damaged_organmnist_npz(tmp_path, capsys, tiny_encoder, damage):
    """The issue's example: a truncated organmnist3d.npz for `smart embed` (and a second kind: a corrupt member)."""
    npz = damage(_organ_npz(tmp_path / "organmnist3d.npz"))
    out = tmp_path / "features.npz"
    assert smart_main(["embed", "--encoder", str(tiny_encoder), "--npz", str(npz), "--out", str(out)]) == 2
    line = _one_line_error(capsys, "embed", npz)
    assert "npz" in line and not out.exists()


def test_embed_truncated_encoder(tmp_path, capsys, tiny_encoder):
    broken = tmp_path / "encoder.pt"
    broken.write_bytes(tiny_encoder.read_bytes()[:5000])
    npz = _organ_npz(tmp_path / "o.npz")
    out = tmp_path / "features.npz"
    assert smart_main(["embed", "--encoder", str(broken), "--npz", str(npz), "--out", str(out)]) == 2
    assert "not a readable encoder file" in _one_line_error(capsys, "embed", broken) and not out.exists()


def test_umap_truncated_features(tmp_path, capsys):
    feats = tmp_path / "features.npz"
    np.savez(feats, features=np.zeros((20, 8)), labels=np.arange(20) % 2)
    _truncate(feats, 0.6)
    assert smart_main(["umap", "--features", str(feats), "--out", str(tmp_path / "u")]) == 2
    _one_line_error(capsys, "umap", feats)
    assert not (tmp_path / "u" / "clusters.json").exists()


def test_export_truncated_checkpoint(tmp_path, capsys):
    ckpt = tmp_path / "checkpoint_last.pt"
    torch.save({"format": "x", "weights": torch.zeros(1000)}, ckpt)
    _truncate(ckpt)
    assert smart_main(["export", "--checkpoint", str(ckpt), "--out", str(tmp_path / "e.pt")]) == 2
    assert str(ckpt) in capsys.readouterr().err and not (tmp_path / "e.pt").exists()


@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe" * 20, b""], ids=["binary", "empty"])
def test_splits_damaged_cohort_csv(tmp_path, capsys, content):
    csv = tmp_path / "cohort.csv"
    csv.write_bytes(content)
    out = tmp_path / "splits.json"
    assert smart_main(["splits", "--cohort", str(csv), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(csv) in err and "unreadable cohort CSV" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def _ct(path):
    hu = np.full((12, 12, 12), -1000, np.int16)
    hu[3:9, 3:9, 3:9] = 40
    sitk.WriteImage(sitk.GetImageFromArray(hu), str(path))
    return path


@pytest.mark.parametrize("which", ["consensus", "image", "raters"])
def test_zeroshot_damaged_inputs(tmp_path, capsys, which):
    _ct(tmp_path / "ct.nii.gz")
    cons = sitk.GetImageFromArray((sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "ct.nii.gz"))) > 0)
                                  .astype(np.uint8))
    sitk.WriteImage(cons, str(tmp_path / "cons.nii.gz"))
    (tmp_path / "raters.csv").write_text("case_id,image,consensus\nc1,ct.nii.gz,cons.nii.gz\n")
    damaged = {"consensus": tmp_path / "cons.nii.gz", "image": tmp_path / "ct.nii.gz",
               "raters": tmp_path / "raters.csv"}[which]
    if which == "raters":
        damaged.write_bytes(b"case_id,image\n\"unterminated,quote\n" + bytes(range(256)))
    else:
        _truncate(damaged, 0.7)
    out = tmp_path / "out"
    assert smart_main(["zeroshot", "--encoder", "random", "--raters", str(tmp_path / "raters.csv"), "--out", str(out),
                       "--crop", "16", "16", "16", "--spacing", "0"]) == 2
    _one_line_error(capsys, "zeroshot", damaged)
    assert not out.exists()


def test_zeroshot_damaged_dicom_slice(tmp_path, capsys):
    """A truncated slice in a DICOM CT series."""
    from clinical_generators import ct_hu_volume, write_ct_series

    write_ct_series(tmp_path / "ct", ct_hu_volume((6, 8, 8)))
    _truncate(sorted((tmp_path / "ct").iterdir())[2], 0.6)
    cons = sitk.GetImageFromArray(np.ones((6, 8, 8), np.uint8))
    sitk.WriteImage(cons, str(tmp_path / "cons.nii.gz"))
    (tmp_path / "raters.csv").write_text("case_id,image,consensus\nc1,ct,cons.nii.gz\n")
    assert smart_main(["zeroshot", "--encoder", "random", "--raters", str(tmp_path / "raters.csv"), "--out",
                       str(tmp_path / "out"), "--crop", "8", "8", "8", "--spacing", "0"]) == 2
    _one_line_error(capsys, "zeroshot", tmp_path / "ct")


def test_truncated_crop_is_rejected_not_zero_filled(tmp_path):
    """Cohort crops are read through the same checked reader: ITK alone would zero-fill a truncated .nii.gz."""
    from smart.data.cohort import load_crop
    from smart.data.io import read_array_zyx

    path = _ct(tmp_path / "crop.nii.gz")
    assert read_array_zyx(path).shape == (12, 12, 12)
    _truncate(path, 0.7)
    with pytest.raises(ValueError, match=r"crop\.nii\.gz: truncated gzip stream"):
        load_crop(path, (12, 12, 12))


def test_linear_probe_damaged_splits_json(tmp_path, capsys, tiny_encoder):
    """A truncated splits.json for a downstream step (the cohort is never reached)."""
    splits = tmp_path / "splits.json"
    splits.write_text('{"seed": 0, "n_folds": 3, "test": ["a", "b"], "fol')
    (tmp_path / "cohort.csv").write_text("sample_id,patient_id,image,label\na,P1,x.nii.gz,0\n")
    _ct(tmp_path / "x.nii.gz")
    out = tmp_path / "probe"
    rc = smart_main(["linear-probe", "--encoder", str(tiny_encoder), "--cohort", str(tmp_path / "cohort.csv"),
                     "--splits", str(splits), "--fold", "0", "--out", str(out)])
    assert rc == 2 and "not a readable splits JSON" in _one_line_error(capsys, "linear-probe", splits)
    assert not (out / "metrics.json").exists()


def test_read_csv_and_input_file_error(tmp_path):
    import pickle

    from smart.inputs import InputFileError, read_csv

    good = tmp_path / "t.csv"
    good.write_text("a,b\n1,2\n")
    assert read_csv(good).to_dict("list") == {"a": [1], "b": [2]}
    with pytest.raises(InputFileError, match=r"nope\.csv: cohort CSV not found"):
        read_csv(tmp_path / "nope.csv", "cohort CSV")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputFileError, match=r"empty\.csv: unreadable CSV \(No columns to parse"):
        read_csv(tmp_path / "empty.csv")
    err = InputFileError(good, "why")
    assert isinstance(err, ValueError) and (err.path, err.reason) == (str(good), "why")
    assert pickle.loads(pickle.dumps(err)).reason == "why"
