import numpy as np
import pytest
import SimpleITK as sitk
import torch

from smart.data.cohort import read_cohort
from smart.data.cohort_dataset import CohortDataset


def test_dataset_items_follow_intensity_contract(cohort_dir):
    frame = read_cohort(cohort_dir / "cohort.csv")
    ds = CohortDataset(frame, crop_size=(8, 8, 8))
    assert len(ds) == 3
    for i in range(3):
        x, y = ds[i]
        assert x.shape == (1, 8, 8, 8) and x.dtype == torch.float32 and isinstance(y, int)
        assert y == frame.label[i]
    raw = sitk.GetArrayFromImage(sitk.ReadImage(frame.image[0])).astype(np.float32)  # 6^3 -> padded by 1
    expected = (np.clip(raw, -1000, 1000) + 1000) / 2000
    x0, _ = ds[0]
    assert torch.allclose(x0[0, 1:7, 1:7, 1:7], torch.from_numpy(expected))
    assert (x0[0, 0] == 0).all()  # padding is air (0 after hu_to_unit)
    x1, _ = ds[1]
    raw1 = sitk.GetArrayFromImage(sitk.ReadImage(frame.image[1])).astype(np.float32)[1:9, 1:9, 1:9]
    assert torch.allclose(x1[0], torch.from_numpy((np.clip(raw1, -1000, 1000) + 1000) / 2000))


def test_dataset_caches_volumes(cohort_dir):
    frame = read_cohort(cohort_dir / "cohort.csv")
    ds = CohortDataset(frame, crop_size=(8, 8, 8))
    first, _ = ds[0]
    first.zero_()  # modifying an item must not corrupt the cache
    (cohort_dir / "crops" / "s0.nii.gz").unlink()
    again, _ = ds[0]  # served from memory
    assert again.abs().sum() > 0


def test_augmentation_is_seeded_and_preserves_content(cohort_dir):
    frame = read_cohort(cohort_dir / "cohort.csv")
    plain = CohortDataset(frame, crop_size=(8, 8, 8))
    a = CohortDataset(frame, crop_size=(8, 8, 8), augment=True, seed=1, max_shift=2)
    b = CohortDataset(frame, crop_size=(8, 8, 8), augment=True, seed=1, max_shift=2)
    xa = [a[1][0] for _ in range(6)]
    xb = [b[1][0] for _ in range(6)]
    assert all(torch.equal(p, q) for p, q in zip(xa, xb))
    assert any(not torch.equal(p, plain[1][0]) for p in xa)
    assert all(type(p) is torch.Tensor and p.shape == (1, 8, 8, 8) for p in xa)
    # flips and integer shifts only move voxels: every value comes from the original crop or the air padding
    allowed = set(plain[1][0].flatten().tolist()) | {0.0}
    assert set(xa[0].flatten().tolist()) <= allowed


def test_dataset_argument_errors(cohort_dir):
    frame = read_cohort(cohort_dir / "cohort.csv")
    with pytest.raises(ValueError, match="crop_size"):
        CohortDataset(frame, crop_size=(8, 8))
    with pytest.raises(ValueError, match="max_shift"):
        CohortDataset(frame, max_shift=-1)
    with pytest.raises(ValueError, match="label"):
        CohortDataset(frame.drop(columns=["label"]))


def test_seeded_epochs_give_the_same_batches_whatever_the_worker_count(cohort_dir):
    """After set_augmentation_seed each item draws from (seed, index): 2 loader workers (each with its own copy of the
    dataset) give exactly the batches of loading in the main process; another seed gives other draws."""
    frame = read_cohort(cohort_dir / "cohort.csv")

    def epoch(workers, seed):
        ds = CohortDataset(frame, crop_size=(8, 8, 8), augment=True, seed=0, max_shift=2)
        ds.set_augmentation_seed(seed)
        loader = torch.utils.data.DataLoader(ds, batch_size=2, shuffle=False, num_workers=workers)
        return torch.cat([x for x, _ in loader])

    main = epoch(0, 5)
    assert torch.equal(epoch(2, 5), main)
    assert not torch.equal(epoch(0, 6), main)
