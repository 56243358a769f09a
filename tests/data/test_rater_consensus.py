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
