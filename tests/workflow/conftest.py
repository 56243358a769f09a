"""Fixtures for the workflow tests: a fresh workflow copy per test (tests/workflow/workflow_workspace.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from workflow_workspace import make_workspace, tiny_config  # noqa: E402


@pytest.fixture
def demo_workspace(tmp_path: Path) -> Path:
    """The workflow with the shipped demo config."""
    return make_workspace(tmp_path / "wf")


@pytest.fixture
def tiny_workspace(tmp_path: Path) -> Path:
    """The workflow with the smallest config that runs every rule once."""
    return make_workspace(tmp_path / "wf", tiny_config())
