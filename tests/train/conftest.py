"""Training tests run tiny networks: one intra-op thread is faster than two (thread hand-off dominates tensors this
small, and on a shared 2-core CI box two spinning OpenMP threads per process slow every step ~10x)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
