"""Helpers for the training tests: tiny random-HU CT NIfTIs written with SimpleITK, their manifest, a tiny config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

# 32^3 crops keep one CPU step at a fraction of a second; volumes are deliberately not crop-sized (padding + cropping).
CROP = 32


def write_ct(path: Path, shape=(28, 40, 36), seed: int = 0, fill: float | None = None) -> Path:
    """A random-HU float32 volume (plus a bright 'organ' box so there is structure to learn) at 2 mm spacing."""
    rng = np.random.default_rng(seed)
    vol = rng.normal(-600.0, 250.0, size=shape).astype(np.float32)
    d, h, w = (s // 3 for s in shape)
    vol[d:2 * d, h:2 * h, w:2 * w] += 700.0
    if fill is not None:
        vol[:] = fill
    img = sitk.GetImageFromArray(vol)
    img.SetSpacing((2.0, 2.0, 2.0))
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path))
    return path


def write_manifest(path: Path, images: list[Path], statuses: list[str] | None = None) -> Path:
    statuses = statuses or ["ok"] * len(images)
    frame = pd.DataFrame({"case_id": [p.name.split(".")[0] for p in images], "source": "synthetic",
                          "path": [str(p) for p in images], "status": statuses})
    frame.to_csv(path, index=False)
    return path


def make_manifest(root: Path, n: int = 3) -> Path:
    images = [write_ct(root / f"case{i}.nii.gz", seed=i) for i in range(n)]
    return write_manifest(root / "manifest.csv", images)


def tiny_overrides(**extra) -> list[str]:
    """``--set`` items for a fast CPU run on the fixture volumes."""
    sets = {"data.crop_size": f"[{CROP},{CROP},{CROP}]", "data.batch_size": 2, "data.num_workers": 0,
            "train.steps": 4, "train.log_every": 1, "train.checkpoint_every": 2, "optim.warmup_steps": 1,
            "loss.warmup_teacher_temp_steps": 2}
    sets.update(extra)
    return [f"{k}={v}" for k, v in sets.items()]


def sigterm_at_first_log(monkeypatch) -> list[int]:
    """Send this process a real SIGTERM right after a run writes its first metrics record (``RunLogger.log``).

    The signal is sent from inside the run, synchronously, so it always arrives mid-run at the same point: no watcher
    thread races the training loop (a watcher that polled for a file could lose to a fast run, or miss its deadline
    on a busy machine). Returns the list that receives the logged step once the signal was sent. Fails instead of
    killing the test process when no stop handler (``smart.preemption.StopFlag``) is installed.
    """
    import os
    import signal

    from smart.run_logging import RunLogger

    real, sent = RunLogger.log, []

    def log(self, record):
        real(self, record)
        if not sent:
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL, "no SIGTERM handler while logging"
            sent.append(int(record["step"]))
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(RunLogger, "log", log)
    return sent
