"""A real single-node SLURM for the `slurm` tests: scripts/slurm/setup.sh starts munged/slurmctld/slurmd on
loopback (installing slurm-wlm + munge with apt when missing), scripts/slurm/stop.sh stops them by PID file; plus
`snakemake --profile slurm` against it (slurm_run) and the job ids Snakemake reports (submitted_jobs). The session
fixture `slurm_cluster` is in conftest.py."""

from __future__ import annotations

import re
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from workflow_workspace import REPO, load_yaml, run_snakemake, snakemake_env

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


def slurm_run(wf: Path, cluster: SlurmCluster, *targets: str, timeout: float = 900, extra_resources=(),
              configfiles=(), jobs: int = 4) -> subprocess.CompletedProcess:
    """`snakemake --profile slurm` with only the site settings overridden for the test cluster (partition, no
    account, fast status checks, no retries); ``configfiles`` become `--configfile` (config layering)."""
    env = snakemake_env()
    env["SLURM_CONF"] = str(cluster.conf)
    p = cluster.partition
    gpu_rules = load_yaml(wf / "slurm/config.yaml")["set-resources"]  # the profile's GPU-partition rules
    args = ["--profile", "slurm", "--default-resources", f"slurm_partition={p}",
            "--set-resources", *[f"{rule}:slurm_partition={p}" for rule in gpu_rules], *extra_resources,
            "--slurm-no-account", "--slurm-init-seconds-before-status-checks", "1", "--retries", "0",
            "--jobs", str(jobs), *(["--configfile", *configfiles] if configfiles else []), "--", *targets]
    return run_snakemake(wf, *args, timeout=timeout, env=env)


_SUBMITTED = re.compile(r"submitted with SLURM jobid (\d+) \(log: \S*/rule_(\w+)/(?:\S+/)?\d+\.log\)")


def submitted_jobs(output: str) -> dict[str, int]:
    """rule -> SLURM job id from Snakemake's "submitted with SLURM jobid N (log: .../rule_R/N.log)" lines (the last
    job of each rule)."""
    return {rule: int(job) for job, rule in _SUBMITTED.findall(output)}


def submitted_job_counts(output: str) -> Counter:
    """rule -> number of distinct SLURM jobs submitted for it."""
    return Counter(rule for _job, rule in set(_SUBMITTED.findall(output)))
