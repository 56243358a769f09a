import numpy as np
import pytest

from smart.data.rater_consensus import DEFAULT_METHOD, consensus_mask, majority_vote, staple_probability


def cube(lo, hi, shape=(12, 12, 12)):
    m = np.zeros(shape, dtype=bool)
    m[lo:hi, lo:hi, lo:hi] = True
    return m


def test_default_is_staple():
    assert DEFAULT_METHOD == "staple"


@pytest.mark.parametrize("method", ["staple", "majority"])
def test_three_agree_two_overcontour(method):
    """Three raters draw A, two draw A plus a slab: the slab has 2/5 votes, so the consensus is A."""
    a = cube(3, 9)
    big = a.copy()
    big[3:9, 3:9, 9:11] = True
    result = consensus_mask([a, a, big, a, big], method=method)
    assert result.dtype == bool and np.array_equal(result, a)


def test_majority_known_counts_and_tie():
    masks = [np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0]), np.array([1, 1, 0, 0]), np.array([0, 1, 1, 0])]
    # votes per voxel: 3, 3, 2, 0 -> with 4 raters a 2-2 tie is background
    assert majority_vote(masks).tolist() == [True, True, False, False]
    assert majority_vote(masks[:3]).tolist() == [True, True, False, False]


def test_staple_probability_is_high_inside_low_outside():
    a = cube(3, 9)
    shrunk, grown = cube(4, 8), cube(2, 10)
    p = staple_probability([a, shrunk, grown, a, a])
    assert p.shape == a.shape
    assert p[cube(4, 8)].min() > 0.9 and p[~cube(2, 10)].max() < 0.1


def test_degenerate_inputs():
    empty = np.zeros((5, 5, 5), dtype=np.uint8)
    full = np.ones((5, 5, 5), dtype=np.uint8)
    assert not consensus_mask([empty] * 5).any()
    assert consensus_mask([full] * 5).all()


def test_errors():
    a = cube(2, 5)
    with pytest.raises(ValueError, match="at least 2"):
        consensus_mask([a])
    with pytest.raises(ValueError, match="differ in shape"):
        consensus_mask([a, a[:-1]])
    with pytest.raises(ValueError, match="binary"):
        consensus_mask([a.astype(int) * 2, a])
    with pytest.raises(ValueError, match="method"):
        consensus_mask([a, a], method="mean")


# ------------------------------------------------------------------ issue #10, kind 6: ties and background


def test_two_raters_one_empty_is_a_tie_and_background():
    """The issue's example: STAPLE gives 0.5 + rounding noise where one of two raters marks a voxel; a tie is
    background, as in majority voting."""
    a = cube(3, 9, shape=(16, 16, 16))
    empty = np.zeros_like(a)
    p = staple_probability([a, empty])
    assert np.abs(p[a] - 0.5).max() < 1e-9  # the tie, seen through rounding
    assert not consensus_mask([a, empty]).any()
    assert np.array_equal(consensus_mask([a, empty]), majority_vote([a, empty]))


def test_two_partly_overlapping_raters_give_their_intersection():
    """Second example: two raters who disagree on part of the lesion. Each private voxel is a 1-1 tie; STAPLE's
    numbers there are arbitrary (0.503 on one side, 0.003 on the other), so the consensus is the intersection."""
    a = np.zeros((14, 14, 14), bool)
    b = np.zeros_like(a)
    a[2:6, 2:6, 2:6] = True
    b[4:12, 4:12, 4:12] = True
    assert np.array_equal(consensus_mask([a, b]), a & b) and (a & b).sum() == 8


@pytest.mark.parametrize("pad", [(0, 0, 0), (3, 0, 7), (20, 25, 30)])
def test_staple_consensus_does_not_change_with_padding(pad):
    """STAPLE runs on the raters' union box + margin, so surrounding background (padding) cannot change it."""
    rng = np.random.default_rng(0)
    base = cube(4, 12, shape=(16, 16, 16))
    raters = []
    for k in range(5):  # five different over/under-contourings of the same lesion
        m = base.copy()
        m[rng.random(m.shape) < 0.25] ^= True
        m[:2] = m[-2:] = False
        raters.append(m)
    reference = consensus_mask(raters)
    padded = [np.pad(m, [(p, p + 1) for p in pad]) for m in raters]
    result = consensus_mask(padded)
    crop = tuple(slice(p, p + n) for p, n in zip(pad, base.shape))
    assert np.array_equal(result[crop], reference) and result.sum() == reference.sum()
    assert 0 < reference.sum() < base.size


def test_margin_validated():
    with pytest.raises(ValueError, match="margin"):
        staple_probability([cube(2, 5), cube(2, 5)], margin=0)
