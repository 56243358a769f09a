"""``python -m smart.bench.resample_memory`` (BENCHMARKS.md "Resample peak memory"): the documented command, run on
tiny series; the line fit on known points."""

import json
import subprocess
import sys

import pytest

from smart.bench.resample_memory import fit_line


def test_fit_line_recovers_a_known_line():
    voxels = [78_643_200, 262_144_000, 393_216_000]
    base, per_voxel = fit_line(voxels, [400.0 + 12.0 * v / 2**20 for v in voxels])
    assert base == pytest.approx(400.0, abs=1e-9) and per_voxel == pytest.approx(12.0, abs=1e-12)


def test_documented_command_runs_and_deletes_its_series(tmp_path):
    work = tmp_path / "work"
    # one series (each point is a fresh `python -m smart resample` subprocess: seconds of imports)
    done = subprocess.run([sys.executable, "-m", "smart.bench.resample_memory", "--slices", "3", "--size", "16",
                           "--work-dir", str(work)], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert [(p["slices"], p["voxels"]) for p in result["points"]] == [(3, 3 * 16 * 16)]
    assert result["points"][0]["peak_mb"] > 0 and "bytes_per_voxel" not in result  # a line needs two points
    assert list(work.iterdir()) == []  # the series and outputs are deleted after their run
