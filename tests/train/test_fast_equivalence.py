"""Small default-suite versions of two slow checks (tests/train/test_pretrain.py, -m slow): two gloo processes train
the same weights as one process on the same global batch, and the reconstruction loss falls on a tiny problem."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from smart.config import load_config
from smart.run_logging import read_metrics
from smart.train.checkpoint import load_checkpoint
from smart.train.pretrain import pretrain

from train_helpers import make_manifest, tiny_overrides

REPO = Path(__file__).resolve().parents[2]


def test_two_gloo_processes_train_what_one_process_trains(tmp_path):
    """2 processes x batch 1 vs 1 process x batch 2, 2 steps, no drop path: the same global batch (the step sampler
    deals the same crops), so weights and logged losses agree to float32 reduction-order noise."""
    manifest = make_manifest(tmp_path / "ct")
    sets = tiny_overrides(**{"train.steps": 2, "model.drop_path_rate": 0.0})
    pretrain(load_config("smart", "tiny", None, sets), manifest, tmp_path / "one")
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])))
    args = [a for s in [*sets, "data.batch_size=1"] for a in ("--set", s)]
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "smart", "pretrain", "--method", "smart", "--preset", "tiny", "--manifest", str(manifest),
                          "--out", str(tmp_path / "two"), *args], env=env, capture_output=True, text=True, timeout=600)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    a = load_checkpoint(tmp_path / "one" / "checkpoint_final.pt")
    b = load_checkpoint(tmp_path / "two" / "checkpoint_final.pt")
    assert (a["step"], b["step"], b["world_size"]) == (2, 2, 2)
    moved = [k for k in a["model"] if a["model"][k].is_floating_point()]
    worst = max(float((a["model"][k].float() - b["model"][k].float()).abs().max()) for k in moved)
    assert worst < 1e-4, worst
    la, lb = read_metrics(tmp_path / "one" / "metrics.jsonl"), read_metrics(tmp_path / "two" / "metrics.jsonl")
    assert [r["step"] for r in la] == [r["step"] for r in lb] == [1, 2]
    for ra, rb in zip(la, lb):
        assert abs(rb["loss/total"] - ra["loss/total"]) <= 1e-4 * abs(ra["loss/total"]) + 1e-5


def test_reconstruction_loss_falls_on_one_ct(tmp_path):
    """SMART at the tiny preset on one CT for 40 steps: the masked-image reconstruction (AMIP) of the last 5 steps is
    below half of the first 5 (the model learns the CT's intensities)."""
    manifest = make_manifest(tmp_path / "ct", n=1)
    cfg = load_config("smart", "tiny", None, tiny_overrides(**{"train.steps": 40, "optim.warmup_steps": 2,
                                                               "data.batch_size": 2, "train.checkpoint_every": 40}))
    pretrain(cfg, manifest, tmp_path / "run")
    amip = [r["loss/amip"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl")]
    assert len(amip) == 40
    first, last = sum(amip[:5]) / 5, sum(amip[-5:]) / 5
    assert last < 0.5 * first, (first, last)
