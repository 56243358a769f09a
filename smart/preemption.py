"""Preemption of long training jobs: SIGTERM / SIGUSR1 (SLURM's walltime warning or ``--signal``) finish the current
unit of work (a pretraining step, a fine-tuning epoch, a segmentation step), write the checkpoint, and exit with code
75 (``EX_TEMPFAIL``) so Snakemake's ``retries`` / a requeued SLURM job rerun the step with ``--resume``. Shared by
``smart.train.pretrain``, ``smart.downstream.finetune`` and ``smart.downstream.segmentation``.
"""

from __future__ import annotations

import signal
from typing import Any

EXIT_INTERRUPTED = 75
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class TrainingInterrupted(RuntimeError):
    """SIGTERM/SIGUSR1 received; the run's ``checkpoint_last.pt`` was written. Resume with ``--resume``."""

    exit_code = EXIT_INTERRUPTED


class StopFlag:
    """Context manager: while active, SIGTERM/SIGUSR1 only set :attr:`signum`, so the loop can finish its unit of work
    and checkpoint; the previous handlers come back on exit. Outside the main thread (signals cannot be caught there)
    it installs nothing and the caller keeps the default behaviour."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopFlag":
        for sig in STOP_SIGNALS:
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. a notebook worker): signals stay with the caller
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.signum = signum

    @property
    def stopping(self) -> bool:
        return self.signum is not None

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
