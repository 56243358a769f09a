import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from smart.data.rater_consensus import consensus_mask
from smart.data.synthetic.raters import N_RATERS, generate_case, rater_masks, write_rater_set


def dice(a, b):
    return 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


@pytest.fixture(scope="module")
def case():
    return generate_case(seed=0, index=0)


def test_case_has_tumour_in_lung_and_five_disagreeing_raters(case):
    truth, raters = case["truth"], case["raters"]
    assert truth.any() and len(raters) == N_RATERS
    assert np.median(case["hu"][truth]) > -100  # solid tumour, not air
    scores = [dice(m, truth) for m in raters]
    assert all(0.5 < s < 1.0 for s in scores) and 0.7 < np.mean(scores) < 0.97, scores  # clinical inter-rater range
    assert len({m.sum() for m in raters}) == N_RATERS  # raters disagree
    assert np.array_equal(case["consensus"], consensus_mask(raters))
    assert dice(case["consensus"], truth) > np.mean(scores) - 0.02  # consensus is at least as good as a typical rater


def test_case_is_deterministic(case):
    again = generate_case(seed=0, index=0)
    assert np.array_equal(again["hu"], case["hu"])
    assert all(np.array_equal(a, b) for a, b in zip(again["raters"], case["raters"]))


def test_rater_margin_model_on_a_ball():
    """With a zero-amplitude field the mask would be a ball grown by the rater margin: check the bias is mm-sized."""
    zz, yy, xx = np.meshgrid(*[np.arange(40) - 20.0] * 3, indexing="ij")
    truth = zz**2 + yy**2 + xx**2 <= 8.0**2
    masks = rater_masks(np.random.default_rng(0), truth, spacing=1.0)
    radii = [(3 * m.sum() / (4 * np.pi)) ** (1 / 3) for m in masks]
    assert all(4.0 < r < 12.0 for r in radii), radii


def test_write_layout(tmp_path):
    frame = write_rater_set(tmp_path, seed=1, count=1)
    csv = pd.read_csv(tmp_path / "raters.csv")
    assert list(csv.columns[:8]) == ["case_id", "image"] + [f"rater{i}" for i in range(1, 6)] + ["consensus"]
    row = csv.iloc[0]
    image = sitk.ReadImage(str(tmp_path / row.image))
    assert image.GetPixelID() == sitk.sitkInt16 and np.allclose(image.GetSpacing(), 2.0)
    masks = [sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / row[f"rater{i}"]))) for i in range(1, 6)]
    consensus = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / row.consensus)))
    assert all(m.shape == consensus.shape == sitk.GetArrayFromImage(image).shape for m in masks)
    assert np.array_equal(consensus.astype(bool), consensus_mask(masks))
    assert list(frame.case_id) == ["rater000"]
