"""The evaluation CLI steps end to end on tiny generated inputs (real encoder, real files)."""

import json

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from smart.cli import main


def _nifti(array, path, spacing=2.0):
    img = sitk.GetImageFromArray(array)
    img.SetSpacing((spacing,) * 3)
    sitk.WriteImage(img, str(path))


@pytest.fixture
def raters(tmp_path):
    rng = np.random.default_rng(1)
    rows = []
    for c in range(2):
        hu = np.full((36, 40, 40), -1000, np.float32)
        hu[:, 6:34, 6:34] = 20.0                                      # chest wall ...
        hu[:, 10:30, 10:30] = rng.normal(-850, 40, (36, 20, 20))     # ... around lung; air outside
        cons = np.zeros(hu.shape, np.uint8)
        cons[14 + c:22 + c, 16:24, 16:24] = 1
        hu[cons > 0] = 30.0
        _nifti(hu, tmp_path / f"ct{c}.nii.gz")
        _nifti(cons, tmp_path / f"cons{c}.nii.gz")
        rows.append({"case_id": f"case{c}", "image": f"ct{c}.nii.gz", **{f"rater{r}": f"cons{c}.nii.gz" for r in range(1, 6)},
                     "consensus": f"cons{c}.nii.gz"})
    pd.DataFrame(rows).to_csv(tmp_path / "raters.csv", index=False)
    return tmp_path / "raters.csv"


def test_zeroshot_encoder_and_random(raters, tiny_encoder, tmp_path):
    common = ["--raters", str(raters), "--crop", "32", "32", "32", "--spacing", "0", "--device", "cpu"]
    assert main(["zeroshot", "--encoder", str(tiny_encoder), "--out", str(tmp_path / "enc"), *common]) == 0
    assert main(["zeroshot", "--encoder", "random", "--out", str(tmp_path / "rnd"), "--random-grid", "2", "2", "2",
                 *common]) == 0
    for name in ("enc", "rnd"):
        dsc = pd.read_csv(tmp_path / name / "dsc.csv")
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        assert dsc.case_id.tolist() == ["case0", "case1"]
        assert ((dsc.dsc >= 0) & (dsc.dsc <= 1)).all() and (dsc.coverage == 1.0).all()
        # body = 32 x 28 x 28 voxels inside the 32^3 crop -> the top 10 % by attention
        assert (dsc.n_body == 32 * 28 * 28).all() and (dsc.n_pred <= int(np.ceil(0.1 * 32 * 28 * 28))).all()
        assert summary["dsc_mean"] == pytest.approx(dsc.dsc.mean()) and summary["n_cases"] == 2
        assert (tmp_path / name / "overlays.png").is_file()
    assert json.loads((tmp_path / "rnd" / "summary.json").read_text())["method"] == "random"
    assert json.loads((tmp_path / "enc" / "summary.json").read_text())["method"] == "smart"


def test_zeroshot_missing_column(tmp_path):
    (tmp_path / "r.csv").write_text("case_id,image\nc,x.nii.gz\n")
    with pytest.raises(ValueError, match="missing columns"):
        main(["zeroshot", "--encoder", "random", "--raters", str(tmp_path / "r.csv"), "--out", str(tmp_path / "o")])


def test_embed_features(tiny_encoder, tmp_path):
    rng = np.random.default_rng(0)
    npz = tmp_path / "organmnist3d.npz"
    arrays = {}
    for split, n in (("train", 4), ("val", 2), ("test", 3)):
        arrays[f"{split}_images"] = rng.integers(0, 255, (n, 28, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 11, (n, 1))
    np.savez(npz, **arrays)
    out = tmp_path / "features.npz"
    assert main(["embed", "--encoder", str(tiny_encoder), "--npz", str(npz), "--out", str(out), "--device", "cpu"]) == 0
    with np.load(out) as z:
        assert z["features"].shape == (9, 96) and str(z["kind"]) == "cls"    # SA [CLS] of a 96-d stage-3 token
        assert z["split"].tolist() == ["train"] * 4 + ["val"] * 2 + ["test"] * 3
        np.testing.assert_array_equal(z["labels"], np.concatenate([arrays[f"{s}_labels"].ravel() for s in ("train", "val", "test")]))
        assert z["input_size"].tolist() == [32, 32, 32]


@pytest.mark.slow
def test_umap_clusters(tmp_path):
    rng = np.random.default_rng(0)
    centres = np.array([[0.0] * 8, [6.0] * 8, [-6.0] * 8])
    labels = np.repeat([0, 1, 2], 20)
    feats = centres[labels] + rng.normal(0, 0.3, (60, 8))
    np.savez(tmp_path / "f.npz", features=feats, labels=labels, kind=np.asarray("cls"))
    assert main(["umap", "--features", str(tmp_path / "f.npz"), "--out", str(tmp_path / "u"), "--n-neighbors", "10"]) == 0
    res = json.loads((tmp_path / "u" / "clusters.json").read_text())
    layout = pd.read_csv(tmp_path / "u" / "umap.csv")
    from smart.eval.clustering import cluster_distances
    again = cluster_distances(layout[["x", "y"]].to_numpy(), layout.label.to_numpy())
    assert res["intra_mean"] == pytest.approx(again["intra_mean"]) and res["space"] == "umap2d"
    assert res["inter_mean"] > 3 * res["intra_mean"]                      # well separated blobs stay separated
    assert (tmp_path / "u" / "umap.png").is_file()


def test_attention_maps_figure(tiny_cohort, tiny_encoder, tmp_path):
    out = tmp_path / "att.png"
    assert main(["attention-maps", "--encoder", str(tiny_encoder), "--cohort", str(tiny_cohort / "cohort.csv"),
                 "--out", str(out), "--n", "2", "--crop", "32", "32", "32"]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="unknown sample_id"):
        main(["attention-maps", "--encoder", str(tiny_encoder), "--cohort", str(tiny_cohort / "cohort.csv"),
              "--out", str(out), "--samples", "nope", "--crop", "32", "32", "32"])


def test_attention_volumes_sum_like_the_map(tiny_encoder):
    import torch

    from smart.eval.attention_maps import attention_volumes
    from smart.models.encoder_io import load_encoder

    enc, _ = load_encoder(tiny_encoder)
    maps = attention_volumes(enc, torch.rand(2, 1, 32, 32, 32))
    # a 2^3 map upsampled x16 trilinearly keeps its mean: each SA map sums to 1 over 8 tokens -> mean 1/8
    assert maps.shape == (2, 32, 32, 32) and np.allclose(maps.mean(axis=(1, 2, 3)), 1 / 8, atol=1e-6)


def test_downstream_cli_arguments():
    from smart.cli import build_parser

    args = build_parser("finetune").parse_args(["finetune", "--encoder", "none", "--cohort", "c.csv", "--splits", "s.json",
                                                "--fold", "1", "--out", "o", "--head", "pooled", "--fraction", "0.25",
                                                "--set", "epochs=3"])
    assert (args.head, args.fraction, args.fold, args.set) == ("pooled", 0.25, 1, ["epochs=3"])
    with pytest.raises(SystemExit):
        build_parser("finetune").parse_args(["finetune", "--encoder", "none", "--cohort", "c", "--splits", "s",
                                             "--fold", "0", "--out", "o", "--head", "mean"])


def test_tables_cli_on_empty_results(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "v.json").write_text(json.dumps({"smart": {"method": "smart", "label": "SMART", "tables": ["II"]}}))
    assert main(["tables", "--results", str(tmp_path / "results"), "--variants", str(tmp_path / "v.json"),
                 "--out", str(tmp_path / "t")]) == 0
    t2 = pd.read_csv(tmp_path / "t" / "table2.csv")
    assert t2.loc[0, "FT AUC"] == "—" and not (tmp_path / "t" / "limited_data.csv").exists()
