"""Reruns retrain (issue 11): a changed variant override or `snakemake -f` on a pretraining trains again instead of
"finishing" the old checkpoint, and the new encoder differs from the old one when the override changed."""

from __future__ import annotations

import shutil

import pytest
import torch

from smart.models.encoder_io import load_encoder
from workflow_workspace import make_workspace, run_snakemake, tiny_config

ENCODER = "results/pretrain/smart/encoder.pt"


def _weights(path):
    return load_encoder(path)[0].state_dict()


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _run(wf, *args):
    proc = run_snakemake(wf, "--cores", "2", *args, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.mark.slow  # three real Snakemake runs with pretraining: ~2 min idle, 10 min on the shared 2-core VM
def test_changed_override_and_forced_rerun_retrain(tmp_path):
    cfg = tiny_config(**{"pretrain.max_steps": 2})
    wf = make_workspace(tmp_path / "wf", cfg)
    run_dir, log = wf / "results/pretrain/smart", wf / "results/logs/pretrain/smart.log"
    _run(wf, "ablation_tiny", "--until", "pretrain")
    first = _weights(wf / ENCODER)
    assert not (run_dir / "checkpoint_last.pt").exists()

    # A killed earlier attempt left a checkpoint of the OLD config behind (what Snakemake keeps: not an output).
    shutil.copy(run_dir / "checkpoint_final.pt", run_dir / "checkpoint_last.pt")
    cfg["variants"]["smart"]["set"] = {"noisy_teacher.drop_ratio": 0.3}
    make_workspace(wf, cfg)
    out = _run(wf, "ablation_tiny", "--until", "pretrain")
    assert "rule pretrain:" in out
    text = log.read_text()
    assert "not resuming" in text and "config keys differ: noisy_teacher.drop_ratio" in text, text[-2000:]
    changed = _weights(wf / ENCODER)
    assert not _same(changed, first)
    assert (wf / "results/pretrain/smart/config.json").read_text().count('"drop_ratio": 0.3') == 1

    out = _run(wf, "-f", ENCODER)
    assert "rule pretrain:" in out
    text = log.read_text()
    assert "resuming" not in text.replace("not resuming", "")  # trained from step 0, not "finished" the old run
    assert '"step": 2' in (run_dir / "metrics.jsonl").read_text()
    assert _same(_weights(wf / ENCODER), changed)  # same config and seed: retrained to the same weights
