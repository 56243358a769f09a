"""Fixtures for the workflow tests: a fresh workflow copy per test (tests/workflow/workflow_workspace.py) and the
session's loopback SLURM cluster (tests/workflow/slurm_cluster.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from slurm_cluster import SlurmUnavailable, start_cluster  # noqa: E402
from workflow_workspace import make_workspace, tiny_config  # noqa: E402


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A real single-node SLURM on loopback for the session (skips the test where it cannot be provided)."""
    try:
        cluster = start_cluster(tmp_path_factory.mktemp("slurm"))
    except SlurmUnavailable as err:
        pytest.skip(f"no SLURM test cluster: {err}")
    print(f"\nSLURM test cluster up in {cluster.setup_seconds:.1f} s: {cluster.setup_log}", file=sys.stderr)
    yield cluster
    cluster.stop()


@pytest.fixture
def demo_workspace(tmp_path: Path) -> Path:
    """The workflow with the shipped demo config."""
    return make_workspace(tmp_path / "wf")


@pytest.fixture
def tiny_workspace(tmp_path: Path) -> Path:
    """The workflow with the smallest config that runs every rule once."""
    return make_workspace(tmp_path / "wf", tiny_config())
