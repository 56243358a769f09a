"""smart.downstream.finetune: resumable fine-tuning (issue 11). SIGTERM -> checkpoint + exit 75, `--resume`
continues bit for bit on CPU, a changed config or input starts fresh (saying why), a finished run leaves no
checkpoint."""

from __future__ import annotations

import json
import shutil
import signal

import pytest
import torch

from smart import cli
from smart.downstream import protocol as downstream
from smart.models.encoder_io import load_encoder
from smart.downstream.finetune import CHECKPOINT, finetune

from train_helpers import sigterm_at_first_log

SETTINGS = ["batch_size=4", "crop_size=[32,32,32]", "augment=true", "feature_batch_size=8", "save_encoder=true",
            "checkpoint_every=1"]


def _args(cohort, encoder, out, epochs, *extra):
    sets = [a for s in [*SETTINGS, f"epochs={epochs}", *extra] for a in ("--set", s)]
    return ["finetune", "--encoder", str(encoder), "--cohort", str(cohort / "cohort.csv"), "--splits",
            str(cohort / "splits.json"), "--fold", "1", "--out", str(out), *sets]


def test_sigterm_checkpoints_exits_75_and_resume_is_bit_exact(tiny_cohort, tiny_encoder, tmp_path, capsys, monkeypatch):
    epochs = 8
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert cli.main(_args(tiny_cohort, tiny_encoder, straight, epochs)) == 0
    assert not (straight / CHECKPOINT).exists()  # finished runs keep only their results

    sent = sigterm_at_first_log(monkeypatch)  # a real SIGTERM after epoch 1's record, from inside the run
    code = cli.main(_args(tiny_cohort, tiny_encoder, split, epochs))
    monkeypatch.undo()
    assert sent == [1]
    assert code == 75, capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    state = torch.load(split / CHECKPOINT, weights_only=True)
    stopped = state["epoch"]
    assert 1 <= stopped < epochs and [h["epoch"] for h in state["history"]] == list(range(1, stopped + 1))
    assert not (split / "metrics.json").exists()

    capsys.readouterr()
    assert cli.main([*_args(tiny_cohort, tiny_encoder, split, epochs), "--resume"]) == 0
    assert f"resuming {split / CHECKPOINT} after epoch {stopped}" in capsys.readouterr().err
    a = json.loads((straight / "metrics.json").read_text())
    b = json.loads((split / "metrics.json").read_text())
    assert a["history"] == b["history"] and [h["epoch"] for h in b["history"]] == list(range(1, epochs + 1))
    assert a["predictions"] == b["predictions"] and a["selected_epoch"] == b["selected_epoch"]
    assert a["test"] == b["test"] and a["val"] == b["val"] and a["inner_val"] == b["inner_val"]
    assert a["selected_on"] == b["selected_on"]
    wa, wb = load_encoder(straight / "encoder_finetuned.pt")[0], load_encoder(split / "encoder_finetuned.pt")[0]
    for (name, pa), pb in zip(wa.state_dict().items(), wb.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert not (split / CHECKPOINT).exists()


def _checkpointed_run(cohort, encoder, out, capsys, monkeypatch):
    """A run stopped by SIGTERM after its first epoch (the state a requeued SLURM job finds)."""
    sent = sigterm_at_first_log(monkeypatch)
    assert cli.main(_args(cohort, encoder, out, 8)) == 75
    monkeypatch.undo()
    assert sent == [1]
    capsys.readouterr()


def test_changed_config_starts_fresh_naming_the_key(tiny_cohort, tiny_encoder, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    _checkpointed_run(tiny_cohort, tiny_encoder, out, capsys, monkeypatch)
    assert cli.main([*_args(tiny_cohort, tiny_encoder, out, 2, "lr=0.001"), "--resume"]) == 0
    err = capsys.readouterr().err
    assert "config keys differ: lr" in err and "starting fresh" in err
    assert [h["epoch"] for h in json.loads((out / "metrics.json").read_text())["history"]] == [1, 2]


def test_changed_inputs_start_fresh(tiny_cohort, tiny_encoder, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    _checkpointed_run(tiny_cohort, tiny_encoder, out, capsys, monkeypatch)
    other = tmp_path / "other_encoder.pt"
    shutil.copy(tiny_encoder, other)
    with open(other, "ab") as fh:
        fh.write(b"\0")  # a different file (torch ignores trailing bytes): its digest no longer matches
    cfg = downstream.load_downstream_config(None, [*SETTINGS, "epochs=2"])
    finetune(str(other), tiny_cohort / "cohort.csv", tiny_cohort / "splits.json", 1, out, cfg, resume=True)
    assert "inputs differ: encoder" in capsys.readouterr().err


def test_checkpoint_every_must_be_positive():
    with pytest.raises(ValueError, match="checkpoint_every"):
        downstream.load_downstream_config(None, ["checkpoint_every=0"])


def test_micro_batches_checkpointing_and_workers_train_the_same_model(tiny_cohort, tiny_encoder, tmp_path):
    """batch 4 as micro-batches of 2 with activation checkpointing and 2 loader workers trains what batch 4 in one
    pass in the main process trains: same augmentation draws (per-sample seeds), gradients equal up to float32
    summation order, so the per-epoch losses and inner-validation AUCs agree to float32 rounding."""
    plain, knobs = tmp_path / "plain", tmp_path / "knobs"
    assert cli.main(_args(tiny_cohort, tiny_encoder, plain, 2)) == 0
    assert cli.main(_args(tiny_cohort, tiny_encoder, knobs, 2, "micro_batch_size=2", "activation_checkpointing=true",
                          "num_workers=2")) == 0
    a = json.loads((plain / "metrics.json").read_text())
    b = json.loads((knobs / "metrics.json").read_text())
    assert b["config"]["micro_batch_size"] == 2 and b["config"]["activation_checkpointing"] is True
    for ha, hb in zip(a["history"], b["history"]):
        assert hb["train_loss"] == pytest.approx(ha["train_loss"], rel=1e-5)
        assert hb["inner_val_auc"] == pytest.approx(ha["inner_val_auc"], abs=1e-9)
    for sid, p in a["predictions"]["test"].items():
        assert b["predictions"]["test"][sid] == pytest.approx(p, abs=1e-5)
