"""smart.data.synthetic.segmentation: labelled phantoms (lung, heart, liver, tumour) and their train/val/test split."""

from __future__ import annotations

import numpy as np
import pytest

from smart.data.synthetic.segmentation import STRUCTURES, generate_case, split_of


def test_synthetic_cases_and_splits():
    assert [split_of(i, 8) for i in range(8)] == ["train"] * 5 + ["val"] + ["test"] * 2
    assert [split_of(i, 3) for i in range(3)] == ["train", "val", "test"]
    with pytest.raises(ValueError, match=">= 3"):
        split_of(0, 2)
    hu, label = generate_case(0, 1)
    assert hu.dtype == np.int16 and label.shape == hu.shape == (64, 96, 96)
    present = set(np.unique(label).tolist())
    assert present == set(range(len(STRUCTURES) + 1))          # every structure is in the case
    assert hu[label == STRUCTURES.index("lung") + 1].mean() < -500 < hu[label == 3].mean()  # lung air, liver tissue
    again_hu, again_label = generate_case(0, 1)
    assert np.array_equal(hu, again_hu) and np.array_equal(label, again_label)
