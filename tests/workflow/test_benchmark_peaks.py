"""workflow_scripts.benchmark_peaks: per-rule maxima of Snakemake benchmark files (BENCHMARKS.md "Workflow")."""

from __future__ import annotations

import pytest

from workflow_scripts.benchmark_peaks import main, rule_peaks

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def _tsv(path, wall, rss, cpu):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{wall}\t0:00:01\t{rss}\t1\t1\t1\t0\t0\t1\t{cpu}\n")


def test_rule_peaks_take_the_maximum_per_rule(tmp_path, capsys):
    _tsv(tmp_path / "finetune/lidc/smart__cls/1.0/fold_0.tsv", 10.0, 900.0, 5.0)
    _tsv(tmp_path / "finetune/response/smart__cls/1.0/fold_1.tsv", 30.0, 700.0, 9.0)
    _tsv(tmp_path / "resample.tsv", 6.0, 250.0, 1.5)
    table = rule_peaks(tmp_path).set_index("rule")
    assert table.loc["finetune"].tolist() == [2, 900.0, 30.0, 9.0]
    assert table.loc["resample"].tolist() == [1, 250.0, 6.0, 1.5]
    assert main([str(tmp_path)]) == 0
    assert "| finetune | 2 | 900 | 30.0 | 9.0 |" in capsys.readouterr().out


def test_empty_folder_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(ValueError, match="no Snakemake benchmark"):
        rule_peaks(tmp_path)
    assert main([str(tmp_path)]) == 2
    assert "benchmark_peaks:" in capsys.readouterr().err
