import numpy as np
import pytest

from smart.data.organmnist import load_organmnist3d


def write_npz(path, sizes=(5, 2, 3), size=28, **override):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in zip(("train", "val", "test"), sizes):
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, size, size, size), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 11, (n, 1), dtype=np.uint8)
    arrays.update(override)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return arrays


@pytest.mark.parametrize("size", [28, 64])
def test_reads_medmnist_layout(tmp_path, size):
    arrays = write_npz(tmp_path / "o.npz", size=size)
    images, labels = load_organmnist3d(tmp_path / "o.npz")
    assert images.shape == (10, 1, size, size, size) and images.dtype == np.float32
    expected = np.concatenate([arrays[f"{s}_images"] for s in ("train", "val", "test")]).astype(np.float32) / 255
    assert np.array_equal(images[:, 0], expected)
    assert labels.dtype == np.int64
    assert labels.tolist() == np.concatenate([arrays[f"{s}_labels"][:, 0] for s in ("train", "val", "test")]).tolist()


def test_split_selection_and_order(tmp_path):
    arrays = write_npz(tmp_path / "o.npz")
    images, labels = load_organmnist3d(tmp_path / "o.npz", splits=("test", "train"))
    assert len(images) == 8
    assert labels[:3].tolist() == arrays["test_labels"][:, 0].tolist()
    with pytest.raises(ValueError, match="splits"):
        load_organmnist3d(tmp_path / "o.npz", splits=("training",))


def test_missing_file_says_where_and_no_download(tmp_path):
    path = tmp_path / "nowhere" / "organmnist3d.npz"
    with pytest.raises(FileNotFoundError) as err:
        load_organmnist3d(path)
    assert str(path) in str(err.value) and "downloaded" in str(err.value)


def test_missing_key_names_file(tmp_path):
    write_npz(tmp_path / "o.npz", val_labels=None)
    with pytest.raises(ValueError, match=r"o\.npz.*val_labels"):
        load_organmnist3d(tmp_path / "o.npz")


@pytest.mark.parametrize("override,match", [
    ({"train_images": np.zeros((5, 28, 28), np.uint8)}, "train_images has shape"),
    ({"train_images": np.zeros((5, 28, 28, 20), np.uint8)}, "train_images has shape"),
    ({"train_labels": np.zeros((4, 1), np.uint8)}, "train_labels has shape"),
    ({"train_labels": np.full((5, 1), 11, np.uint8)}, "outside 0-10"),
    ({"val_images": np.zeros((2, 64, 64, 64), np.uint8)}, "earlier splits"),
    ({"train_images": np.full((5, 28, 28, 28), 3.0)}, "dtype"),
])
def test_bad_content_names_file(tmp_path, override, match):
    write_npz(tmp_path / "o.npz", **override)
    with pytest.raises(ValueError, match=match) as err:
        load_organmnist3d(tmp_path / "o.npz")
    assert "o.npz" in str(err.value)


def test_not_an_npz(tmp_path):
    (tmp_path / "o.npz").write_text("hello")
    with pytest.raises(ValueError, match="npz"):
        load_organmnist3d(tmp_path / "o.npz")
