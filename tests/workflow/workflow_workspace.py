"""A throw-away copy of the workflow (Snakefile, rules, configs, profile, glue) for tests to run Snakemake in.

Runs never touch the checkout's results/ or .snakemake/. `smart` is imported from the checkout through PYTHONPATH,
exactly as `python -m smart` finds it from the repository root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOW_FILES = ("Snakefile", "rules", "config", "envs", "report", "workflow_scripts", "slurm")
TARGETS = ("all", "preprocess", "pretrain_all", "finetune_all", "cluster_all", "zeroshot_all", "tables", "study", "segmentation")


def make_workspace(root: Path, config: dict[str, Any] | None = None) -> Path:
    """Copy the workflow into ``root``; when ``config`` is given it replaces config/config.yaml."""
    root.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, root / name, dirs_exist_ok=True)
        else:
            shutil.copy2(src, root / name)
    if config is not None:
        (root / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def load_yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(Path(path).read_text())


def snakemake_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "smart-numba-cache"))
    env.setdefault("MPLBACKEND", "Agg")
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def run_snakemake(workdir: Path, *args: str, timeout: float = 600, env: dict[str, str] | None = None
                  ) -> subprocess.CompletedProcess:
    """`snakemake ARGS` in ``workdir``; a hang is a test failure (TimeoutExpired), never a stuck CI job."""
    cmd = [sys.executable, "-m", "snakemake", *args]
    return subprocess.run(cmd, cwd=workdir, env=env or snakemake_env(), capture_output=True, text=True,
                          timeout=timeout)


def tiny_config(**changes: Any) -> dict[str, Any]:
    """The demo config shrunk to the fewest samples/jobs that still exercise every rule once."""
    cfg = load_yaml(REPO / "config" / "config.yaml")
    cfg["synthetic"]["counts"] = {"ct": 2, "nodules": 40, "response": 16, "organs": 33, "raters": 2}
    cfg["variants"] = {"smart": cfg["variants"]["smart"], "scratch": cfg["variants"]["scratch"]}
    cfg["ablations"] = {"tiny": ["smart"]}
    cfg["data"]["lidc_annotations"] = False
    cfg["pretrain"]["max_steps"] = 2
    cfg["splits"]["folds"] = 2
    cfg["finetune"]["tasks"] = ["lidc"]
    for task in cfg["tasks"].values():
        task["fractions"] = [1.0]
    cfg["finetune"]["folds"] = 1
    cfg["finetune"]["set"] = {"epochs": 1, "batch_size": 4, "augment": False, "probe_max_iter": 200}
    cfg["segmentation"].update({"variants": ["smart", "scratch"], "count": 3,
                                "set": {"steps": 2, "batch_size": 1, "val_every": 2, "checkpoint_every": 2}})
    for key, value in changes.items():
        node = cfg
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return cfg
