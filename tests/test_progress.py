"""smart.progress: the log-mode line (step/total, values, samples/s, ETA) against hand-computed numbers, the
time-based throttle, resume offsets, the environment knob and the silent mode."""

from __future__ import annotations

import io
import re

import pytest
import torch

from smart.progress import ENV_EVERY, Progress, default_every, format_duration, track


class Clock:
    """A clock the test advances by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _log_progress(total, every=10.0, **kw):
    stream, clock = io.StringIO(), Clock()
    return Progress(total, "pretrain", every=every, stream=stream, tty=False, clock=clock, **kw), stream, clock


def test_line_has_step_total_rate_and_eta():
    bar, stream, clock = _log_progress(100)
    clock.t += 4.0
    bar.update(1, samples=8, loss=torch.tensor(0.53211))
    # 1 step in 4 s: 2 samples/s, 4 s/step, 99 steps left -> 396 s = 0:06:36
    assert stream.getvalue() == ("pretrain: step 1/100 (1.0%) | loss 0.5321 | 2.00 samples/s | 4 s/step | "
                                 "elapsed 0:00:04 | ETA 0:06:36\n")


def test_lines_are_throttled_by_time_and_close_prints_the_last():
    bar, stream, clock = _log_progress(10, every=10.0)
    for _ in range(10):
        clock.t += 3.0
        bar.update(1)
    # printed at t=3 (first update), 15 (>= 10 s later), 27; then close prints step 10 at t=30
    bar.close()
    lines = stream.getvalue().splitlines()
    assert [re.match(r"pretrain: step (\d+)/10", ln).group(1) for ln in lines] == ["1", "5", "9", "10"]
    assert lines[-1].endswith("ETA 0:00:00 | done")
    bar.close()
    assert len(stream.getvalue().splitlines()) == 4


def test_every_zero_prints_each_update():
    bar, stream, clock = _log_progress(5, every=0.0)
    for _ in range(5):
        clock.t += 1.0
        bar.update(1)
    bar.close()  # nothing new since the last line: no duplicate
    assert len(stream.getvalue().splitlines()) == 5


def test_resumed_run_counts_only_its_own_steps_for_the_rate():
    bar, stream, clock = _log_progress(100, initial=50)
    clock.t += 10.0
    bar.update(2)
    # 2 steps in 10 s -> 5 s/step; 48 left -> 240 s
    assert "step 52/100 (52.0%)" in stream.getvalue()
    assert "5 s/step" in stream.getvalue() and "ETA 0:04:00" in stream.getvalue()


def test_unknown_total_has_no_eta():
    bar, stream, clock = _log_progress(None, unit="batch")
    clock.t += 2.0
    bar.update(1)
    assert stream.getvalue().startswith("pretrain: batch 1 | 2 s/batch | elapsed 0:00:02\n")


def test_disabled_is_silent():
    bar, stream, clock = _log_progress(3, enabled=False)
    bar.update(3)
    bar.close()
    assert stream.getvalue() == ""


def test_format_duration():
    assert format_duration(0) == "0:00:00"
    assert format_duration(3725.4) == "1:02:05"
    assert format_duration(2 * 86400 + 61) == "2d 0:01:01"
    assert format_duration(float("inf")) == "?"


def test_environment_interval(monkeypatch):
    monkeypatch.delenv(ENV_EVERY, raising=False)
    assert default_every() == 60.0
    monkeypatch.setenv(ENV_EVERY, "2.5")
    assert default_every() == 2.5
    monkeypatch.setenv(ENV_EVERY, "soon")
    with pytest.raises(ValueError, match=ENV_EVERY):
        default_every()
    monkeypatch.setenv(ENV_EVERY, "-1")
    with pytest.raises(ValueError, match=">= 0"):
        default_every()


def test_track_yields_every_item_and_counts_them(monkeypatch, capsys):
    monkeypatch.setenv(ENV_EVERY, "0")
    assert list(track(range(3), "resample", unit="case")) == [0, 1, 2]
    err = capsys.readouterr().err.splitlines()  # pytest's captured stderr is not a terminal: log mode
    assert [ln.split(" | ")[0] for ln in err] == ["resample: case 1/3 (33.3%)", "resample: case 2/3 (66.7%)",
                                                 "resample: case 3/3 (100.0%)"]
