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


def test_embedded_values_are_the_encoders_own_features(tiny_encoder, tmp_path):
    """Each row of features.npz is the encoder's [CLS] (and, with --kind pooled, its pooled stage-4 vector) of that
    image scaled to [0, 1], computed here one image at a time straight from the encoder file."""
    import torch

    from smart.models.encoder_io import load_encoder

    rng = np.random.default_rng(1)
    npz = tmp_path / "organmnist3d.npz"
    arrays = {}
    for split, n in (("train", 3), ("val", 1), ("test", 2)):  # 32^3: the Swin size already, so no resampling
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, 32, 32, 32), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 11, (n, 1))
    np.savez(npz, **arrays)
    images = np.concatenate([arrays[f"{s}_images"] for s in ("train", "val", "test")]).astype(np.float32) / 255.0
    encoder, _ = load_encoder(tiny_encoder)
    encoder.eval()
    for kind in ("cls", "pooled"):
        out = tmp_path / f"{kind}.npz"
        assert main(["embed", "--encoder", str(tiny_encoder), "--npz", str(npz), "--out", str(out), "--device", "cpu",
                     "--kind", kind]) == 0
        with torch.no_grad():
            expected = [getattr(encoder(torch.from_numpy(img)[None, None], need_attention=False), kind)[0].numpy()
                        for img in images]
        with np.load(out) as z:
            assert str(z["kind"]) == kind and z["features"].shape == (6, len(expected[0]))
            np.testing.assert_allclose(z["features"], np.stack(expected), rtol=0, atol=1e-5)
