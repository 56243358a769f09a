"""smart.train.checkpoint: weights_only round trip, RNG capture/restore, clear errors."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from smart.train.checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint


def _draws():
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_rng_round_trip_through_weights_only_file(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    random.gauss(0, 1)  # leaves a cached gaussian in Python's state
    save_checkpoint(tmp_path / "c.pt", {"rng": [capture_rng_state()], "step": 5, "config": {"a": [1, None]}})
    expected = _draws()
    _draws()  # advance every generator
    state = torch.load(tmp_path / "c.pt", weights_only=True)  # must not need pickled numpy/python objects
    assert state["step"] == 5 and state["config"] == {"a": [1, None]}
    restore_rng_state(state["rng"][0])
    assert _draws() == expected


def test_load_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")
    torch.save({"x": torch.ones(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a SMART training checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")


def test_atomic_write_leaves_no_temp_files(tmp_path):
    save_checkpoint(tmp_path / "c.pt", {"w": torch.arange(3)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]
    assert torch.equal(load_checkpoint(tmp_path / "c.pt")["w"], torch.arange(3))
