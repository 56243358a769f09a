"""Progress a person can watch on a terminal and read in a batch log (DESIGN "Examples to follow" 7).

One facility for every long loop (pretraining steps, fine-tuning epochs, resampled CTs, embedded batches, LIDC crops):

* **stderr is a terminal** -> a tqdm bar (values such as the loss as its postfix).
* **stderr is not a terminal** (a SLURM / Snakemake log file) -> one plain line on the first update, then at most one
  every ``every`` seconds, and a last line on :meth:`Progress.close`::

      pretrain: step 120/1000 (12.0%) | loss 0.5321 | 3.40 samples/s | 0.94 s/step | elapsed 0:01:53 | ETA 0:13:47

  Rates and the ETA are averages since this process started counting (a resumed run does not count the steps it
  inherited). ``every`` defaults to the ``SMART_PROGRESS_SECONDS`` environment variable, else 60 s; 0 prints every
  update.
* ``enabled=False`` (DDP ranks > 0) -> silent.

Values passed to :meth:`Progress.update` may be 0-d torch tensors: they are converted with ``float()`` only when a line
is printed, so a training loop does not pay a device sync per step for its progress display.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any, Callable, Iterable, Iterator, TextIO

ENV_EVERY = "SMART_PROGRESS_SECONDS"
DEFAULT_EVERY_S = 60.0


def default_every() -> float:
    """Seconds between log lines: ``$SMART_PROGRESS_SECONDS`` (a number >= 0) or 60. A bad value is an error."""
    raw = os.environ.get(ENV_EVERY)
    if raw is None or raw.strip() == "":
        return DEFAULT_EVERY_S
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"environment variable {ENV_EVERY}={raw!r} is not a number of seconds") from None
    if not value >= 0 or math.isinf(value):
        raise ValueError(f"environment variable {ENV_EVERY}={raw!r} must be a finite number of seconds >= 0")
    return value


def format_duration(seconds: float) -> str:
    """``H:MM:SS`` (days add ``Nd ``); ``?`` for an unknown (non-finite) duration."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    total = int(round(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{days}d " if days else "") + f"{hours}:{minutes:02d}:{secs:02d}"


def _format_value(value: Any) -> str:
    if hasattr(value, "item") and callable(value.item):  # torch / numpy scalar: convert only now
        value = value.item()
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class Progress:
    """Progress of ``total`` units of work (see the module docstring for the two display modes).

    Args:
        total: units in the whole job (e.g. ``train.steps``); ``None`` when unknown (no percentage, no ETA).
        desc: what is running (``"pretrain"``, ``"finetune fold 0"``); the prefix of every line.
        initial: units already done before this process (a resumed run).
        unit: the unit's name (``"step"``, ``"epoch"``, ``"case"``, ``"batch"``).
        enabled: ``False`` makes every method a no-op (DDP ranks > 0).
        every: seconds between log lines off a terminal (default :func:`default_every`).
        stream: where lines go (default ``sys.stderr``).
        tty: force terminal (``True``) or log (``False``) mode; default ``stream.isatty()``.
        clock: monotonic seconds (tests pass a deterministic clock).
    """

    def __init__(self, total: int | None, desc: str, *, initial: int = 0, unit: str = "step", enabled: bool = True,
                 every: float | None = None, stream: TextIO | None = None, tty: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if total is not None and total < 0:
            raise ValueError(f"progress total must be >= 0 or None, got {total}")
        self.total, self.desc, self.unit, self.enabled = total, desc, unit, enabled
        self.every = default_every() if every is None else float(every)
        if self.every < 0:
            raise ValueError(f"progress interval must be >= 0 s, got {self.every}")
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.n = self.initial = int(initial)
        self.samples = 0
        self.values: dict[str, Any] = {}
        self.lines = 0
        self._start = clock()
        self._last_line: float | None = None
        self._bar = None
        self._closed = not enabled
        if enabled and (self.stream.isatty() if tty is None else tty):
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=self.stream, dynamic_ncols=True)
            self._last_postfix = -math.inf

    # ---- counting ----------------------------------------------------------------------------------------------
    def update(self, n: int = 1, samples: int | None = None, **values: Any) -> None:
        """``n`` more units done (``samples`` of data in them, for samples/s); ``values`` (e.g. ``loss=...``) are
        shown with the next line and kept until replaced."""
        if self._closed:
            return
        self.n += n
        if samples is not None:
            self.samples += int(samples)
        self.values.update(values)
        now = self.clock()
        if self._bar is not None:
            self._bar.update(n)
            if self.values and now - self._last_postfix >= 0.5:  # tqdm's own refresh rate: no per-step sync
                self._bar.set_postfix({k: _format_value(v) for k, v in self.values.items()}, refresh=False)
                self._last_postfix = now
        elif self._last_line is None or now - self._last_line >= self.every:
            self._emit(now)

    def close(self) -> None:
        """Print the last line (log mode) or close the bar. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self._last_line is None or self.n != self._printed_n:
            self._emit(self.clock(), final=True)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- the log line ------------------------------------------------------------------------------------------
    def line(self, now: float | None = None) -> str:
        """The log line for the current state (what log mode prints)."""
        now = self.clock() if now is None else now
        elapsed = max(now - self._start, 0.0)
        done = self.n - self.initial
        parts = [f"{self.desc}: {self.unit} {self.n}" + (f"/{self.total}" if self.total is not None else "")
                 + (f" ({100.0 * self.n / self.total:.1f}%)" if self.total else "")]
        parts += [f"{k} {_format_value(v)}" for k, v in self.values.items()]
        if elapsed > 0 and self.samples:
            parts.append(f"{self.samples / elapsed:.2f} samples/s")
        if done > 0:
            parts.append(f"{elapsed / done:.3g} s/{self.unit}")
        parts.append(f"elapsed {format_duration(elapsed)}")
        if self.total is not None:
            remaining = max(self.total - self.n, 0)
            eta = 0.0 if remaining == 0 else (elapsed / done * remaining if done > 0 else math.inf)
            parts.append(f"ETA {format_duration(eta)}")
        return " | ".join(parts)

    def _emit(self, now: float, final: bool = False) -> None:
        self.stream.write(self.line(now) + (" | done" if final and self.total is not None
                                            and self.n >= self.total else "") + "\n")
        self.stream.flush()
        self._last_line = now
        self._printed_n = self.n
        self.lines += 1


def track(items: Iterable, desc: str, *, total: int | None = None, unit: str = "item", enabled: bool = True,
          every: float | None = None, samples_of: Callable[[Any], int] | None = None) -> Iterator:
    """Iterate ``items`` with a :class:`Progress` (``total`` defaults to ``len(items)`` when it has one);
    ``samples_of(item)`` counts the samples in each item (e.g. a batch's length) for samples/s."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(total, desc, unit=unit, enabled=enabled, every=every) as bar:
        for item in items:
            yield item
            bar.update(1, samples=None if samples_of is None else samples_of(item))


__all__ = ["DEFAULT_EVERY_S", "ENV_EVERY", "Progress", "default_every", "format_duration", "track"]
