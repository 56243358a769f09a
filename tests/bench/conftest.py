"""Benchmark smoke tests run on one intra-op thread."""

import pytest
import torch


@pytest.fixture
def one_thread():
    # On an oversubscribed 2-core box two OpenMP threads spin-wait each other (10x slower): keep the smoke fast.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
