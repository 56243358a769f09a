"""``smart bench``: argument checks."""

from __future__ import annotations

from smart import cli


def test_bench_rejects_bad_thread_count(capsys):
    assert cli.main(["bench", "attention", "--smoke", "--threads", "0"]) == 2
    assert "--threads" in capsys.readouterr().err
