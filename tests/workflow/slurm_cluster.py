"""A real single-node SLURM for the `slurm` tests: scripts/slurm/setup.sh starts munged/slurmctld/slurmd on
loopback (installing slurm-wlm + munge with apt when missing), scripts/slurm/stop.sh stops them by PID file."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from workflow_workspace import REPO

SETUP = REPO / "scripts/slurm/setup.sh"
STOP = REPO / "scripts/slurm/stop.sh"
CANNOT = 3  # setup.sh's exit code for "SLURM cannot be provided here" (not root, no apt, a foreign slurm.conf)


@dataclass
class SlurmCluster:
    state_dir: Path
    conf: Path
    partition: str
    setup_seconds: float
    setup_log: str

    def stop(self) -> None:
        subprocess.run(["bash", str(STOP), str(self.state_dir)], capture_output=True, text=True, timeout=60)


class SlurmUnavailable(RuntimeError):
    pass


def start_cluster(state_dir: Path, partition: str = "smarttest", timeout: float = 900) -> SlurmCluster:
    t0 = time.perf_counter()
    proc = subprocess.run(["bash", str(SETUP), str(state_dir)], capture_output=True, text=True, timeout=timeout,
                          env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SMART_SLURM_PARTITION": partition})
    elapsed = time.perf_counter() - t0
    if proc.returncode == CANNOT:
        raise SlurmUnavailable(proc.stderr.strip())
    if proc.returncode != 0:
        subprocess.run(["bash", str(STOP), str(state_dir)], capture_output=True, timeout=60)
        raise RuntimeError(f"scripts/slurm/setup.sh failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return SlurmCluster(state_dir, state_dir / "slurm.conf", partition, elapsed, proc.stderr.strip())
