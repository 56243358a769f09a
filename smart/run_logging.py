"""Run-folder logging (as DINO does it): resolved ``config.json`` with provenance at start,
``metrics.jsonl`` (one JSON object per log step), TensorBoard event files in ``tb/``, and progress
(:mod:`smart.progress`: a tqdm bar on a terminal, one plain line every N seconds in a SLURM log). Only rank 0 writes.

Any training loop uses it the same way (pretraining per step, fine-tuning per epoch)::

    logger = RunLogger(out_dir)                    # tb/ + metrics.jsonl in out_dir
    with logger.progress(total, desc="finetune fold 0", unit="epoch") as bar:
        for epoch in ...:
            logger.log({"step": epoch, "train_loss": loss, "val_auc": auc})   # JSON line + TensorBoard scalars
            bar.update(1, samples=n_train, loss=loss)
    logger.close()
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from smart import atomic
from smart.progress import Progress
from smart.provenance import provenance


class RunLogger:
    """Writes the run folder's logs. With ``enabled=False`` (ranks > 0) every method is a no-op."""

    def __init__(self, out_dir: str | Path, enabled: bool = True, tensorboard: bool = True) -> None:
        self.out_dir = Path(out_dir)
        self.enabled = enabled
        self.metrics_path = self.out_dir / "metrics.jsonl"
        self._tb = None
        if enabled:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            if tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(log_dir=str(self.out_dir / "tb"))

    def write_config(self, cfg: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> None:
        """``config.json`` = the resolved config plus a ``provenance`` block (git SHA, versions, config hash)."""
        if not self.enabled:
            return
        record = {**cfg, "provenance": {**provenance(cfg, seed=cfg.get("train", {}).get("seed")), **(extra or {})}}
        atomic.write_json(self.out_dir / "config.json", record)

    def truncate_after(self, step: int) -> None:
        """On resume, drop metric lines logged after the checkpoint's step, so the file never has duplicate steps."""
        if not self.enabled or not self.metrics_path.exists():
            return
        kept = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    kept.append(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill mid-write
        atomic.write_text(self.metrics_path, "".join(k + "\n" for k in kept))

    def log(self, record: Mapping[str, Any]) -> None:
        """Append one JSON line and mirror every numeric value to TensorBoard at ``record["step"]``."""
        if not self.enabled:
            return
        with open(self.metrics_path, "a") as fh:
            fh.write(json.dumps(dict(record), default=float) + "\n")
            fh.flush()
        if self._tb is not None:
            step = int(record["step"])
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)):
                    self._tb.add_scalar(key, value, step)
            self._tb.flush()

    def progress(self, total: int | None, initial: int = 0, desc: str = "pretrain", unit: str = "step",
                 show: bool = True) -> Progress:
        """A :class:`smart.progress.Progress` (silent on ranks > 0 and with ``show=False``)."""
        return Progress(total, desc, initial=initial, unit=unit, enabled=self.enabled and show)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Parse ``metrics.jsonl`` into a list of dicts (used by tests, benches and plots)."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
