"""``smart embed`` end to end: OrganMNIST3D-layout npz -> features."""


import numpy as np

from smart.cli import main


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
