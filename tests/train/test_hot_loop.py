"""The pretraining hot loop (issue 18): a step that does not log reads no device value on the host (the calls are
counted on a real step), a logging step still logs the window's right values, non-finite steps are skipped on the
device, DDP's find_unused_parameters follows the method (checked against a real step of every registered method)."""

from __future__ import annotations

import pytest
import torch

from smart.config import load_config
from smart.data.views import TwoViewDataset, read_manifest
from smart.run_logging import read_metrics
from smart.ssl.methods import method_names
from smart.train.checkpoint import load_checkpoint
from smart.train.pretrain import _Trainer, _Window, build_self_distillation, compile_student, pretrain

from train_helpers import make_manifest, tiny_overrides, write_ct, write_manifest

# Every Tensor method that hands a device value to the host (a GPU sync): explicit reads, Python conversions, printing.
HOST_READS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__", "__repr__",
              "__str__", "__format__")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return make_manifest(tmp_path_factory.mktemp("ct"))


def _count_host_reads(monkeypatch, calls, host_resident=()):
    """Count HOST_READS calls, except on the tensors in ``host_resident``: the CPU path's AdamW step counters, which
    PyTorch keeps on the host by design (``state["step"]`` is a CPU tensor unless the optimiser is fused or
    capturable, as it is on CUDA here) and reads with ``.item()`` — no device is waited for."""
    skip = {id(t) for t in host_resident}
    for name in HOST_READS:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            if id(self) not in skip:
                calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)


# One method per masking path that draws on the device or from seeded host ints: attention-high (SMART), random
# (SMIT), attention-low (MST), ViT + attention (AttMask). Blockwise masking (iBOT) draws its blocks in a host loop from
# a seeded CPU generator (``.item()`` on CPU tensors, no device involved; the mask is then copied non-blocking), which
# this on-CPU count cannot tell from a device read, so it is not among them.
@pytest.mark.parametrize("method", ["smart", "smit", "mst", "attmask"])
def test_a_step_that_does_not_log_reads_no_device_value(manifest, tmp_path, monkeypatch, method):
    """Two real steps of the trainer (optimiser state created in the first); the second runs with every host-read
    method of torch.Tensor counted. The batch is loaded before counting (the loader is the data pipeline's work)."""
    cfg = load_config(method, "tiny", None, tiny_overrides(**{"train.log_every": 1000}))
    trainer = _Trainer(cfg, manifest, tmp_path / "run", max_steps=None, resume=False)
    trainer.window = _Window(trainer.device)
    batches = iter(trainer._loader())
    trainer.train_step(next(batches), trainer.window)
    batch = next(batches)
    calls: list[str] = []
    step_counters = [state["step"] for state in trainer.optimizer.state.values()]
    assert step_counters and all(t.device.type == "cpu" for t in step_counters)
    with monkeypatch.context() as patch:
        _count_host_reads(patch, calls, step_counters)
        trainer.train_step(batch, trainer.window)
    assert calls == []
    assert trainer.step == 2
    # the counter does count: one read of the window is one call
    with monkeypatch.context() as patch:
        _count_host_reads(patch, calls)
        trainer.window.applied.item()
    assert calls == ["item"]


def test_a_logging_step_logs_the_window_means(manifest, tmp_path):
    """Logging every 2 steps gives, at steps 2 and 4, the means of what logging every step gives at steps 1-2 and
    3-4 (the same run: the loop does not change with the logging interval)."""
    every = read_metrics(pretrain(load_config("smart", "tiny", None, tiny_overrides(**{"train.log_every": 1})),
                                  manifest, tmp_path / "a")["out_dir"] + "/metrics.jsonl")
    pairs = read_metrics(pretrain(load_config("smart", "tiny", None, tiny_overrides(**{"train.log_every": 2})),
                                  manifest, tmp_path / "b")["out_dir"] + "/metrics.jsonl")
    assert [r["step"] for r in every] == [1, 2, 3, 4] and [r["step"] for r in pairs] == [2, 4]
    for record, (first, second) in zip(pairs, [every[0:2], every[2:4]]):
        assert record["applied_steps"] == 2 and record["nonfinite"] == 0
        assert record["lr"] == second["lr"] and record["momentum"] == second["momentum"]
        assert record["teacher_temp/ampd"] == second["teacher_temp/ampd"]
        for key in ("loss/total", "loss/amip", "loss/ampd", "loss/aitd", "loss/gitd", "mask_ratio"):
            assert record[key] == pytest.approx((first[key] + second[key]) / 2, rel=1e-6), key
        # the health figures are the logging step's own (smart.ssl.health), not window means
        for key in ("teacher_entropy/aitd", "teacher_spread/ampd", "agreement/gitd", "mask_body_share"):
            assert record[key] == pytest.approx(second[key], rel=1e-6), key


def test_non_finite_steps_are_skipped_on_the_device_between_logging_steps(tmp_path):
    good = [write_ct(tmp_path / f"g{i}.nii.gz", seed=i) for i in range(2)]
    manifest = write_manifest(tmp_path / "m.csv", good + [write_ct(tmp_path / "nan.nii.gz", fill=float("nan"))])
    cfg = load_config("smart", "tiny", None, tiny_overrides(**{"data.batch_size": 1, "train.steps": 6,
                                                               "train.log_every": 3, "train.max_nonfinite": 3}))
    summary = pretrain(cfg, manifest, tmp_path / "run")
    ds = TwoViewDataset(read_manifest(manifest), (32, 32, 32), seed=0, cache=False)
    bad = [ds.case_at(p) == 2 for p in range(6)]
    assert 0 < sum(bad) < 6  # the fixture exercises both kinds of step
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in records] == [3, 6] and summary["nonfinite"] == sum(bad)
    assert [r["applied_steps"] for r in records] == [3 - sum(bad[:3]), 3 - sum(bad[3:])]
    assert all(r["loss/total"] == r["loss/total"] for r in records if r["applied_steps"])  # not NaN
    state = load_checkpoint(tmp_path / "run" / "checkpoint_final.pt")
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


@pytest.mark.parametrize("method", method_names())
def test_find_unused_parameters_follows_the_method(method):
    """One real CPU step of every registered method at the tiny preset: the trainable student parameters without a
    gradient are non-empty exactly when the method says DDP must look for unused parameters."""
    cfg = load_config(method, "tiny", None, tiny_overrides())
    torch.manual_seed(0)
    model = build_self_distillation(cfg)
    gen = torch.Generator().manual_seed(1)
    u, v = (torch.rand(2, 1, 32, 32, 32, generator=gen) for _ in range(2))
    loss, _ = model(u, v, (0, 1), 0)
    loss.backward()
    unused = [name for name, p in model.student_parameters() if p.requires_grad and p.grad is None]
    assert bool(unused) == model.leaves_parameters_unused(), unused


def test_compile_is_opt_in_and_validated():
    assert load_config("smart", "tiny")["train"]["compile"] is False
    with pytest.raises(ValueError, match="train.compile"):
        load_config("smart", "tiny", None, ["train.compile=sometimes"])
    model = build_self_distillation(load_config("smart", "tiny", None, tiny_overrides()))
    encoder = model.student["encoder"]
    assert encoder._compiled_call_impl is None
    compile_student(model)
    assert encoder._compiled_call_impl is not None and model.teacher["encoder"]._compiled_call_impl is None
    # names are unchanged, so checkpoints and the EMA pairing are too
    assert all(not name.startswith("_orig_mod") for name, _ in model.named_parameters())
