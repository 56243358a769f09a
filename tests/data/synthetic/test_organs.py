import numpy as np
import pytest

from smart.data.organmnist import CLASS_NAMES, load_organmnist3d
from smart.data.synthetic.fields import item_rng
from smart.data.synthetic.organs import generate_organs, render_organ, split_counts, write_organs


def test_class_names_are_organmnist3d():
    assert CLASS_NAMES == ("liver", "kidney-right", "kidney-left", "femur-right", "femur-left", "bladder", "heart",
                           "lung-right", "lung-left", "spleen", "pancreas")


def test_64_cubes():
    cube = render_organ(6, np.random.default_rng(0), size=64)
    assert cube.shape == (64, 64, 64) and cube.dtype == np.uint8


def test_layout_matches_medmnist(size=28):
    arrays = generate_organs(seed=0, count=33, size=size)
    assert set(arrays) == {f"{s}_{k}" for s in ("train", "val", "test") for k in ("images", "labels")}
    for split in ("train", "val", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        assert images.dtype == np.uint8 and images.shape[1:] == (size, size, size)
        assert labels.dtype == np.uint8 and labels.shape == (len(images), 1)
        assert set(labels[:, 0].tolist()) == set(range(11))  # every class in every split


def test_split_counts_follow_real_proportions():
    counts = split_counts(11 * 100)
    assert sum(counts.values()) == 100
    assert counts == {"train": 56, "val": 9, "test": 35}  # 971:161:610 of 1,742
    with pytest.raises(ValueError, match="count"):
        split_counts(20)


def test_deterministic_by_seed():
    a, b, c = generate_organs(1, 33), generate_organs(1, 33), generate_organs(2, 33)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["train_images"], c["train_images"])


def test_classes_are_distinct_families_with_variation():
    """Nearest class-centroid on raw voxels separates the classes well, yet samples within a class differ."""
    rng = lambda i: item_rng(0, "organ-test", i)  # noqa: E731
    train = {c: np.stack([render_organ(c, rng(100 * c + j)).astype(float).ravel() for j in range(6)]) for c in range(11)}
    centroids = np.stack([train[c].mean(0) for c in range(11)])
    correct = 0
    for c in range(11):
        for j in range(6, 10):
            x = render_organ(c, rng(100 * c + j)).astype(float).ravel()
            correct += int(np.argmin(((centroids - x) ** 2).sum(1)) == c)
    assert correct / 44 > 0.8
    assert np.abs(train[0][0] - train[0][1]).mean() > 5  # intra-class variation (uint8 units)


@pytest.mark.parametrize("right,left", [(1, 2), (3, 4)])
def test_left_right_pairs_are_mirror_images(right, left):
    """On an unperturbed symmetric grid the left organ is exactly the right one flipped along x."""
    from smart.data.synthetic.organs import _RENDER

    c = np.linspace(-1.0, 1.0, 28)
    grid = np.meshgrid(c, c, c, indexing="ij")
    img_r, _ = _RENDER[right](grid, np.random.default_rng(0))
    img_l, _ = _RENDER[left](grid, np.random.default_rng(0))
    assert not np.allclose(img_r, img_l)
    assert np.allclose(img_r, img_l[..., ::-1])


def test_written_npz_loads_with_reader(tmp_path):
    path = write_organs(tmp_path / "organmnist3d.npz", seed=0, count=33)
    images, labels = load_organmnist3d(path)
    assert images.shape == (33, 1, 28, 28, 28) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert labels.dtype == np.int64 and sorted(set(labels.tolist())) == list(range(11))


def test_render_rejects_bad_arguments():
    with pytest.raises(ValueError, match="label"):
        render_organ(11, np.random.default_rng(0))
    with pytest.raises(ValueError, match="size"):
        render_organ(0, np.random.default_rng(0), size=32)


def test_exact_split_sizes_give_the_real_medmnist_plus_lengths(tmp_path):
    # medmnist 3.0.2 INFO["organmnist3d"]["n_samples"]: train 971, val 161, test 610 (the _64 file of MedMNIST+)
    from smart.data.synthetic.organs import REAL_SPLIT_SIZES

    assert REAL_SPLIT_SIZES == {"train": 971, "val": 161, "test": 610}
    sizes = {"train": 25, "val": 12, "test": 3}
    arrays = generate_organs(seed=1, size=28, split_sizes=sizes)
    for split, n in sizes.items():
        labels = arrays[f"{split}_labels"][:, 0]
        assert arrays[f"{split}_images"].shape == (n, 28, 28, 28) and labels.shape == (n,)
        counts = np.bincount(labels, minlength=11)
        assert counts.max() - counts.min() <= 1 or n < 11  # classes take turns
    assert sorted(np.unique(arrays["train_labels"])) == list(range(11))
