"""smart.train.pretrain / smart pretrain / smart export on tiny synthetic CTs: outputs, exact resume, non-finite
handling, input errors before training, SIGTERM checkpointing and 2-process gloo DDP; safe resume (a checkpoint is
continued only when its config but the step budget and its CT list match) and schedules in epochs (issue 11)."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from smart import cli
from smart.config import load_config
from smart.data.views import TwoViewDataset, read_manifest
from smart.models.encoder_io import load_encoder
from smart.train.checkpoint import load_checkpoint
from smart.run_logging import read_metrics
from smart.train.pretrain import NonFiniteLossError, config_differences, pretrain, resolve_epochs

from train_helpers import make_manifest, sigterm_at_first_log, tiny_overrides, write_ct, write_manifest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    return make_manifest(tmp_path_factory.mktemp("ct"))


def _cfg(method="smart", **extra):
    return load_config(method, "tiny", None, tiny_overrides(**extra))


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def _smart(*args, **kw):
    return subprocess.run([sys.executable, "-m", "smart", *args], env=_env(), capture_output=True, text=True, **kw)


def test_run_writes_every_output(manifest, tmp_path):
    out = tmp_path / "run"
    summary = pretrain(_cfg(), manifest, out)
    assert summary["step"] == 4 and summary["nonfinite"] == 0
    assert {"checkpoint_final.pt", "encoder.pt", "metrics.jsonl", "config.json", "tb"} <= {
        p.name for p in out.iterdir()}
    records = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    for key in ("lr", "momentum", "loss/amip", "loss/ampd", "loss/aitd", "loss/gitd", "loss/total", "time_per_step",
                "nonfinite"):
        assert key in records[-1]
    assert records[0]["lr"] == 0.0 and records[1]["lr"] == pytest.approx(5e-4)  # warm-up of 1 step, then cosine
    conf = json.loads((out / "config.json").read_text())
    assert conf["method"] == "smart" and conf["train"]["steps"] == 4 and "git_sha" in conf["provenance"]
    ckpt = torch.load(out / "checkpoint_final.pt", weights_only=True)
    assert ckpt["step"] == 4 and ckpt["config"]["method"] == "smart"
    assert any(k.startswith("teacher.") for k in ckpt["model"]) and any(k.startswith("centers.") for k in ckpt["model"])
    encoder, meta = load_encoder(out / "encoder.pt")
    assert meta["step"] == 4 and meta["method"] == "smart"
    student = {k[len("student.encoder."):]: v for k, v in ckpt["model"].items() if k.startswith("student.encoder.")}
    for key, value in encoder.state_dict().items():
        assert torch.equal(value, student[key]), key
    # smart export rebuilds the same encoder file from the checkpoint
    assert cli.main(["export", "--checkpoint", str(out / "checkpoint_final.pt"), "--out", str(tmp_path / "e.pt")]) == 0
    again, _ = load_encoder(tmp_path / "e.pt")
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), encoder.state_dict().values()))


@pytest.mark.parametrize("view_offset", [None, 4])  # 4: overlapping views drawn through the stored body index
def test_resume_is_bit_identical(manifest, tmp_path, view_offset):
    views = {} if view_offset is None else {"data.view_offset": view_offset}
    cfg = _cfg(**{"train.checkpoint_every": 100}, **views)  # drop path stays on: RNG state must be restored too
    pretrain(cfg, manifest, tmp_path / "straight")
    pretrain(cfg, manifest, tmp_path / "split", max_steps=2)
    # a run that reached its budget keeps only checkpoint_final.pt; --resume extends it from there
    assert load_checkpoint(tmp_path / "split" / "checkpoint_final.pt")["step"] == 2
    assert not (tmp_path / "split" / "checkpoint_last.pt").exists()
    pretrain(cfg, manifest, tmp_path / "split", resume=True)
    a = load_checkpoint(tmp_path / "straight" / "checkpoint_final.pt")
    b = load_checkpoint(tmp_path / "split" / "checkpoint_final.pt")
    assert a["step"] == b["step"] == 4
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    la, lb = read_metrics(tmp_path / "straight" / "metrics.jsonl"), read_metrics(tmp_path / "split" / "metrics.jsonl")
    assert [r["step"] for r in lb] == [1, 2, 3, 4]
    assert [r["loss/total"] for r in la] == [r["loss/total"] for r in lb]
    # a finished run resumed again trains nothing more but restores missing final outputs
    (tmp_path / "split" / "encoder.pt").unlink()
    assert pretrain(cfg, manifest, tmp_path / "split", resume=True)["step"] == 4
    assert load_encoder(tmp_path / "split" / "encoder.pt")[1]["step"] == 4
    assert len(read_metrics(tmp_path / "split" / "metrics.jsonl")) == 4


def test_nan_volume_steps_are_skipped(tmp_path):
    good = [write_ct(tmp_path / f"g{i}.nii.gz", seed=i) for i in range(2)]
    bad = write_ct(tmp_path / "nan.nii.gz", fill=float("nan"))
    manifest = write_manifest(tmp_path / "m.csv", good + [bad])
    cfg = _cfg(**{"data.batch_size": 1, "train.steps": 6, "train.max_nonfinite": 3})
    summary = pretrain(cfg, manifest, tmp_path / "run")
    ds = TwoViewDataset(read_manifest(manifest), (32, 32, 32), seed=0, cache=False)
    expected = sum(ds.case_at(p) == 2 for p in range(6))
    assert expected > 0  # the fixture must actually exercise the skip
    assert summary["nonfinite"] == expected
    assert read_metrics(tmp_path / "run" / "metrics.jsonl")[-1]["nonfinite"] == expected
    state = load_checkpoint(tmp_path / "run" / "checkpoint_final.pt")
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_consecutive_nonfinite_aborts_with_checkpoint(tmp_path):
    manifest = write_manifest(tmp_path / "m.csv", [write_ct(tmp_path / "nan.nii.gz", fill=float("nan"))])
    with pytest.raises(NonFiniteLossError, match="2 consecutive non-finite steps"):
        pretrain(_cfg(**{"train.max_nonfinite": 2}), manifest, tmp_path / "run")
    state = load_checkpoint(tmp_path / "run" / "checkpoint_last.pt")
    assert state["step"] == 2 and state["nonfinite"] == 2
    assert not (tmp_path / "run" / "encoder.pt").exists()


def test_missing_image_fails_before_training(tmp_path):
    manifest = write_manifest(tmp_path / "m.csv", [write_ct(tmp_path / "a.nii.gz"), tmp_path / "lost.nii.gz"])
    with pytest.raises(ValueError, match=r"lost\.nii\.gz"):
        pretrain(_cfg(), manifest, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def _sets(**extra):
    return sum((["--set", s] for s in tiny_overrides(**extra)), [])


def test_cli_exit_codes(manifest, tmp_path, capsys):
    assert cli.main(["pretrain", "--method", "smartt", "--manifest", str(manifest), "--out", str(tmp_path / "x")]) == 2
    assert "method: By 'smartt', did you mean 'smart'?" in capsys.readouterr().err
    assert cli.main(["pretrain", "--method", "smart", "--manifest", str(manifest), "--out", str(tmp_path / "x"),
                     "--set", "loss.aitdd=0"]) == 2
    assert "did you mean 'loss.aitd'" in capsys.readouterr().err
    assert cli.main(["export", "--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path / "e.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    nan_manifest = write_manifest(tmp_path / "m.csv", [write_ct(tmp_path / "nan.nii.gz", fill=float("nan"))])
    code = cli.main(["pretrain", "--method", "smit", "--preset", "tiny", "--manifest", str(nan_manifest), "--out",
                     str(tmp_path / "nan"), *_sets(**{"train.max_nonfinite": 1})])
    assert code == 3 and "non-finite" in capsys.readouterr().err


def test_batch_log_shows_progress_lines_with_eta(manifest, tmp_path):
    """stderr redirected to a file (a SLURM log): a header naming the preset, then one progress line per step at
    SMART_PROGRESS_SECONDS=0 with step/total, loss, samples/s and an ETA."""
    out, log = tmp_path / "run", tmp_path / "slurm-123.out"
    with open(log, "w") as err:
        proc = subprocess.run([sys.executable, "-m", "smart", "pretrain", "--method", "smit", "--preset", "tiny",
                               "--manifest", str(manifest), "--out", str(out), *_sets()],
                              env={**_env(), "SMART_PROGRESS_SECONDS": "0"}, stdout=subprocess.PIPE, stderr=err,
                              text=True, timeout=600)
    text = log.read_text()
    assert proc.returncode == 0, text
    assert text.splitlines()[0].startswith("smart pretrain: method smit, preset tiny: crop 32x32x32 voxels, 4 steps")
    steps = [int(m.group(1)) for m in re.finditer(r"^pretrain: step (\d+)/4 .*loss [-\d.e]+ \| [\d.]+ samples/s "
                                                  r".*\| ETA \d+:\d\d:\d\d", text, flags=re.M)]
    assert steps == [1, 2, 3, 4], text


def test_no_preset_log_says_paper_scale(manifest, tmp_path, capsys):
    # --max-steps 1 at 32^3 keeps it cheap; the header is printed before any model is built
    code = cli.main(["pretrain", "--method", "smit", "--manifest", str(manifest), "--out", str(tmp_path / "x"),
                     "--set", "data.crop_size=[32,32,32]", "--set", "data.num_workers=0", "--set", "model.embed_dim=12",
                     "--set", "loss.out_dim=64", "--set", "loss.head_hidden_dim=32", "--set", "loss.head_bottleneck_dim=16",
                     "--max-steps", "1"])
    err = capsys.readouterr().err.splitlines()
    assert code == 0
    assert err[0].startswith("smart pretrain: method smit, preset none (paper scale): crop 32x32x32 voxels, 10000 steps")
    assert err[1].startswith("smart pretrain: warning: Without --preset the run is at PAPER SCALE")
    assert not err[2].startswith("smart pretrain: warning")


def test_header_warns_when_data_workers_exceed_cores():
    from smart.commands.pretrain import run_header

    lines = run_header(load_config("smart"), "smart", None, cores=2)  # the defaults: 4 workers
    assert lines[0].endswith("4 data workers on 2 CPU cores")
    assert "data.num_workers=4 leaves no core for the training process" in lines[2]
    assert len(run_header(load_config("smart", "tiny"), "smart", "tiny", cores=2)) == 1  # tiny: 0 workers, no warning


def test_sigterm_in_process_checkpoints_and_exits_75(manifest, tmp_path, capsys, monkeypatch):
    """The handler path: a real SIGTERM arrives mid-run, right after training logged its first step."""
    out = tmp_path / "run"
    sent = sigterm_at_first_log(monkeypatch)
    code = cli.main(["pretrain", "--method", "smit", "--preset", "tiny", "--manifest", str(manifest), "--out", str(out),
                     *_sets(**{"train.steps": 1000, "train.checkpoint_every": 1000})])
    assert sent == [1]  # the first record (step 1) triggered it
    assert code == 75, capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored
    state = torch.load(out / "checkpoint_last.pt", weights_only=True)
    assert 1 <= state["step"] < 1000 and read_metrics(out / "metrics.jsonl")[-1]["step"] == state["step"]
    assert not (out / "checkpoint_final.pt").exists()


@pytest.mark.slow
def test_sigterm_subprocess_checkpoints_and_exits_75(manifest, tmp_path):
    out = tmp_path / "run"
    sets = _sets(**{"train.steps": 100000, "train.checkpoint_every": 100000})
    proc = subprocess.Popen([sys.executable, "-m", "smart", "pretrain", "--method", "smit", "--preset", "tiny",
                             "--manifest", str(manifest), "--out", str(out), *sets], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not (out / "metrics.jsonl").exists() or not (out / "metrics.jsonl").read_text().strip():
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "training did not start"
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 75, err
    state = torch.load(out / "checkpoint_last.pt", weights_only=True)
    step = state["step"]
    assert step >= 1 and [r["step"] for r in read_metrics(out / "metrics.jsonl")][-1] == step
    res = _smart("pretrain", "--method", "smit", "--preset", "tiny", "--manifest", str(manifest), "--out", str(out),
                 "--resume", "--max-steps", str(step + 1), *sets)
    assert res.returncode == 0, res.stderr
    assert load_checkpoint(out / "checkpoint_final.pt")["step"] == step + 1


@pytest.mark.slow
def test_two_process_gloo_ddp_matches_single_process(manifest, tmp_path):
    """Same global batch (2 x 1 vs 1 x 2), no drop path: weights agree to float32 reduction-order noise."""
    common = ["--method", "smart", "--preset", "tiny", "--manifest", str(manifest),
              *_sets(**{"train.steps": 3, "model.drop_path_rate": 0.0})]
    single = _smart("pretrain", *common, "--out", str(tmp_path / "one"))
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "smart", "pretrain", *common, "--set", "data.batch_size=1", "--out", str(tmp_path / "two")],
                         env=_env(), capture_output=True, text=True, timeout=600)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    a = load_checkpoint(tmp_path / "one" / "checkpoint_final.pt")
    b = load_checkpoint(tmp_path / "two" / "checkpoint_final.pt")
    assert b["world_size"] == 2 and len(b["rng"]) == 2
    worst = max(float((a["model"][k].float() - b["model"][k].float()).abs().max()) for k in a["model"]
                if a["model"][k].is_floating_point())
    print(f"DDP 2x1 vs 1x2 after 3 steps: max |weight difference| = {worst:.3g}")
    assert worst < 1e-4, worst
    la, lb = read_metrics(tmp_path / "one" / "metrics.jsonl"), read_metrics(tmp_path / "two" / "metrics.jsonl")
    for ra, rb in zip(la, lb):
        assert rb["loss/total"] == pytest.approx(ra["loss/total"], rel=1e-4, abs=1e-5)


def test_prototype_layers_stay_frozen_for_the_first_epoch_and_weight_decay_is_scheduled(manifest, tmp_path):
    """DINO's freeze_last_layer: 3 CTs at batch 2 make an epoch of 2 steps, so the DINO heads' last layers equal their
    initial values after 2 steps while the rest of the student has moved, and differ after step 3."""
    from smart.seeding import seed_everything
    from smart.train.pretrain import build_self_distillation

    cfg = _cfg(**{"optim.freeze_last_layer_epochs": 1.0})
    seed_everything(int(cfg["train"]["seed"]))
    initial = build_self_distillation(cfg).state_dict()
    pretrain(cfg, manifest, tmp_path / "two", max_steps=2)
    pretrain(cfg, manifest, tmp_path / "three", max_steps=3)
    two = torch.load(tmp_path / "two" / "checkpoint_final.pt", weights_only=True)["model"]
    three = torch.load(tmp_path / "three" / "checkpoint_final.pt", weights_only=True)["model"]
    protos = [k for k in initial if k.startswith("student.") and ".last_layer." in k and k.endswith("original1")]
    assert len(protos) == 3  # ampd, aitd, gitd heads
    assert all(torch.equal(two[k], initial[k]) for k in protos)
    assert all(not torch.equal(three[k], initial[k]) for k in protos)
    assert not torch.equal(two["student.encoder.mask_token"], initial["student.encoder.mask_token"])
    records = read_metrics(tmp_path / "three" / "metrics.jsonl")
    total = cfg["train"]["steps"]
    for rec in records:  # logged at the step it applied to: cosine 0.04 -> 0.4 over train.steps
        step = rec["step"] - 1
        assert rec["weight_decay"] == pytest.approx(0.4 - 0.36 * 0.5 * (1 + math.cos(math.pi * step / total)))


# ---- slow: the total loss falls over a few hundred tiny steps

STEPS = 300
WINDOW = 30


@pytest.mark.slow
@pytest.mark.parametrize("method", ["smart", "smit"])
def test_total_loss_falls(method, tmp_path):
    manifest = make_manifest(tmp_path / "ct", n=4)
    cfg = load_config(method, "tiny", None, [f"train.steps={STEPS}", "train.log_every=1", "train.checkpoint_every=1000"])
    pretrain(cfg, manifest, tmp_path / "run")
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert len(records) == STEPS and records[-1]["nonfinite"] == 0

    def mean(key, part):
        return sum(r[key] for r in part) / len(part)

    first, last = records[:WINDOW], records[-WINDOW:]
    for key in [k for k in records[0] if k.startswith("loss/")]:
        print(f"{method} {key}: mean of steps 1-{WINDOW} = {mean(key, first):.4f}, "
              f"steps {STEPS - WINDOW + 1}-{STEPS} = {mean(key, last):.4f}")
    assert mean("loss/total", last) < mean("loss/total", first)
    # AMIP (weight 1) carries the total; the masked voxels must be predicted much better than at the start.
    assert mean("loss/amip", last) < 0.5 * mean("loss/amip", first)


# ---- safe resume and epoch schedules (issue 11) ----------------------------------------------------------------
def _weights(path):
    return load_checkpoint(path)["model"]


def test_changed_override_starts_fresh_and_names_the_key(manifest, tmp_path, capsys):
    out = tmp_path / "run"
    pretrain(_cfg(), manifest, out, max_steps=2)  # interrupted-like: stopped at step 2 of 4
    changed = _cfg(**{"noisy_teacher.drop_ratio": 0.3})
    summary = pretrain(changed, manifest, out, resume=True)
    err = capsys.readouterr().err
    assert "config keys differ: noisy_teacher.drop_ratio" in err and "starting fresh" in err
    assert summary["step"] == 4
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl")] == [1, 2, 3, 4]  # no line of the old run
    straight = tmp_path / "straight"
    pretrain(changed, manifest, straight)
    a, b = _weights(out / "checkpoint_final.pt"), _weights(straight / "checkpoint_final.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)  # the same as training the new config from scratch


def test_changed_ct_list_starts_fresh(tmp_path, capsys):
    root = tmp_path / "ct"
    images = [write_ct(root / f"case{i}.nii.gz", seed=i) for i in range(3)]
    first = write_manifest(root / "a.csv", images)
    second = write_manifest(root / "b.csv", images[:2] + [write_ct(root / "case9.nii.gz", seed=9)])
    pretrain(_cfg(), first, tmp_path / "run", max_steps=2)
    pretrain(_cfg(), second, tmp_path / "run", resume=True)
    assert "the input manifest's CT list differs" in capsys.readouterr().err


def test_matching_checkpoint_resumes_and_step_budget_may_grow(manifest, tmp_path, capsys):
    out = tmp_path / "run"
    pretrain(_cfg(), manifest, out, max_steps=2)
    capsys.readouterr()
    pretrain(_cfg(**{"train.steps": 4, "train.log_every": 2}), manifest, out, resume=True, max_steps=3)
    assert "resuming" in capsys.readouterr().err
    assert load_checkpoint(out / "checkpoint_final.pt")["step"] == 3


def test_finished_run_keeps_no_last_checkpoint_so_a_rerun_without_outputs_retrains(manifest, tmp_path, capsys):
    """What `snakemake -f` leaves: the declared outputs are deleted before the job, then `--resume` finds nothing."""
    out = tmp_path / "run"
    pretrain(_cfg(), manifest, out)
    assert not (out / "checkpoint_last.pt").exists()
    for name in ("checkpoint_final.pt", "encoder.pt", "metrics.jsonl", "config.json"):
        (out / name).unlink()
    capsys.readouterr()
    summary = pretrain(_cfg(), manifest, out, resume=True)
    assert "resuming" not in capsys.readouterr().err
    assert summary["step"] == 4 and len(read_metrics(out / "metrics.jsonl")) == 4


def test_config_differences_ignores_only_the_step_budget_and_bookkeeping():
    a = _cfg()
    b = _cfg(**{"train.steps": 99, "train.log_every": 5, "train.checkpoint_every": 7, "data.num_workers": 2,
                "train.stop_on_collapse": "true"})
    assert config_differences(a, b) == []
    c = _cfg(**{"optim.lr": 1e-3, "loss.aitd": 0.0})
    assert config_differences(a, c) == ["loss.aitd", "optim.lr"]
    # AMPD on other tokens trains another head (another width): a checkpoint of the other reading is not resumed
    assert config_differences(a, _cfg(**{"loss.ampd_tokens": "post_merge"})) == ["loss.ampd_tokens"]


@pytest.mark.parametrize("n, batch, expected", [(10412, 16, 651), (10412, 32, 326), (3, 2, 2), (16, 16, 1)])
def test_resolve_epochs_uses_the_actual_data_and_global_batch(n, batch, expected):
    cfg = load_config("smart", "paper")
    resolved, per_epoch = resolve_epochs(cfg, n, batch)
    assert per_epoch == expected == math.ceil(n / batch)
    assert resolved["train"]["steps"] == 800 * expected
    assert resolved["optim"]["warmup_steps"] == 80 * expected
    assert resolved["loss"]["warmup_teacher_temp_steps"] == 30 * expected
    assert cfg["train"]["steps"] == 800 * 651  # the input config is not modified


def test_resolve_epochs_leaves_step_configs_alone():
    cfg = _cfg()
    resolved, per_epoch = resolve_epochs(cfg, 3, 2)
    assert per_epoch is None and resolved == cfg


def test_epoch_schedule_in_a_run(manifest, tmp_path):
    """3 CTs, batch 2: 2 steps per epoch; 2 epochs = 4 steps, warm-up 1 epoch = 2 steps (config.json records it)."""
    cfg = _cfg(**{"train.epochs": 2, "optim.warmup_epochs": 1})
    summary = pretrain(cfg, manifest, tmp_path / "run")
    assert summary["step"] == 4
    written = json.loads((tmp_path / "run" / "config.json").read_text())
    assert written["train"]["steps"] == 4 and written["optim"]["warmup_steps"] == 2
    assert written["provenance"]["steps_per_epoch"] == 2 and written["provenance"]["n_cts"] == 3
    lrs = [r["lr"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl")]
    assert lrs[0] < lrs[1]  # still warming up over the first epoch (2 steps)


def test_two_step_run_records_pre_merge_ampd_and_the_health_monitor(manifest, tmp_path):
    """Issue 19 "done when": config.json has loss.ampd_tokens=pre_merge and metrics.jsonl the monitor's figures on
    the logging steps (log_every=2: step 1 is not logged and carries no figure, step 2 is)."""
    out = tmp_path / "run"
    pretrain(_cfg(**{"train.steps": 2, "train.log_every": 2}), manifest, out)
    conf = json.loads((out / "config.json").read_text())
    assert conf["loss"]["ampd_tokens"] == "pre_merge" and conf["train"]["stop_on_collapse"] is False
    records = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in records] == [2]
    last = records[0]
    health = {f"{kind}/{name}" for kind in ("teacher_entropy", "teacher_spread", "agreement")
              for name in ("ampd", "ampd_dropped", "aitd", "gitd")}
    health |= {"effective_rank/cls", "effective_rank/pooled", "mask_body_share"}
    assert health <= set(last)
    # RankMe of the window's 2 steps x 2 views x batch 2 = 8 student embeddings: between 1 and 8
    assert 1.0 <= last["effective_rank/cls"] <= 8.0 and 1.0 <= last["effective_rank/pooled"] <= 8.0
    k = conf["loss"]["out_dim"]
    assert all(0.0 <= last[f"teacher_entropy/{n}"] <= math.log(k) + 1e-5 for n in ("ampd", "aitd", "gitd"))


def test_window_ranks_stack_every_step_of_the_window():
    from smart.ssl.health import effective_rank
    from smart.train.pretrain import window_ranks

    eye = torch.eye(4)
    window = [{"cls": eye[:2], "pooled": eye[:2]}, {"cls": eye[2:], "pooled": eye[:2]}]
    ranks = window_ranks(window)
    assert float(ranks["effective_rank/cls"]) == pytest.approx(4.0, rel=1e-4)  # 4 orthonormal rows over 2 steps
    assert float(ranks["effective_rank/pooled"]) == pytest.approx(float(effective_rank(torch.cat([eye[:2]] * 2))))
    assert window_ranks([]) == {}


def test_collapsed_teacher_warns_and_stop_on_collapse_exits_4_naming_the_head(manifest, tmp_path, capsys):
    """A teacher temperature of 100 makes every distillation target uniform (entropy ~ ln K): after the LR warm-up
    (1 step) the rule needs COLLAPSE_LOGS logs in a row (log_every = 1). Without stop_on_collapse: one warning line
    per head and the run finishes; with it: exit 4, checkpoint_last.pt written, the message names the head and its figures."""
    from smart.ssl.health import COLLAPSE_LOGS

    uniform = {"loss.teacher_temp": 100.0, "loss.warmup_teacher_temp": 100.0, "train.steps": COLLAPSE_LOGS + 2,
               "train.checkpoint_every": 100}
    code = cli.main(["pretrain", "--method", "smart", "--preset", "tiny", "--manifest", str(manifest), "--out",
                     str(tmp_path / "warn"), *_sets(**uniform)])
    err = capsys.readouterr().err
    assert code == 0
    warnings = [line for line in err.splitlines() if "WARNING collapse" in line]
    assert sorted(line.split("collapse: ")[1].split(":")[0] for line in warnings) == ["aitd", "ampd", "gitd"]
    # logs at steps 1, 2, ... all count (warm-up: 1 step), so the rule fires at the COLLAPSE_LOGS-th
    assert all(line.endswith(f"for {COLLAPSE_LOGS} logs in a row (step {COLLAPSE_LOGS})") for line in warnings)
    code = cli.main(["pretrain", "--method", "smart", "--preset", "tiny", "--manifest", str(manifest), "--out",
                     str(tmp_path / "stop"), *_sets(**uniform, **{"train.stop_on_collapse": "true"})])
    err = capsys.readouterr().err
    assert code == 4
    assert "train.stop_on_collapse: " in err and "aitd: teacher_entropy/aitd=" in err and " ln K" in err
    assert (tmp_path / "stop" / "checkpoint_last.pt").is_file()
    assert load_checkpoint(tmp_path / "stop" / "checkpoint_last.pt")["step"] == COLLAPSE_LOGS
    assert not (tmp_path / "stop" / "encoder.pt").exists()


@pytest.mark.parametrize("method, sets, expected", [
    ("smart", ["loss.ampd_tokens=merged"],
     "config key 'loss.ampd_tokens': expected one of pre_merge, post_merge, got 'merged' (from --set)"),
    ("attmask", ["loss.ampd_tokens=pre_merge"],
     "config key 'loss.ampd_tokens'='pre_merge' needs a backbone with patch merging, but model.arch=vit has none "
     "(AMPD reads its patch tokens); leave loss.ampd_tokens null"),
])
def test_bad_ampd_tokens_is_one_line_before_any_work(manifest, tmp_path, capsys, method, sets, expected):
    out = tmp_path / "run"
    code = cli.main(["pretrain", "--method", method, "--preset", "tiny", "--manifest", str(manifest), "--out", str(out),
                     *[a for s in sets for a in ("--set", s)]])
    assert code == 2
    assert capsys.readouterr().err.splitlines() == [f"smart pretrain: error: {expected}"]
    assert not out.exists()
