"""workflow_scripts.study_table: the numbers of the `study` target's table come from the result files, formulas
written out here; missing results read as "—", never as a number."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from workflow_scripts.study_table import collect, main, markdown, mean_std


def _write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _arm(root: Path, arm: str, seed: int, auc: float, entropy: float, k: int = 256, steps=(10, 20)) -> None:
    base = root / arm / f"seed_{seed}"
    _write(base / "probe" / "metrics.json", {"test": {"auc": auc, "auc_ci": [auc - 0.05, auc + 0.05], "n": 300}})
    _write(base / "cluster" / "clusters.json", {"intra_mean": 1.0 + seed, "inter_mean": 4.0 - seed})
    _write(base / "pretrain" / "config.json", {"loss": {"out_dim": k}})
    lines = [{"step": s, "loss/ampd": 5.0 - s / 100, **{f"teacher_entropy/{n}": entropy for n in ("ampd", "aitd", "gitd")},
              "teacher_entropy/ampd_dropped": entropy / 2, "teacher_spread/ampd": 0.01, "effective_rank/cls": 2.0 + seed,
              "effective_rank/pooled": 10.0 * (seed + 1)}
             for s in steps]
    (base / "pretrain" / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    _write(root / arm / f"seed_{seed}" / "zeroshot" / "summary.json", {"dsc_mean": 0.2 + seed / 10})


def test_collect_means_seeds_and_normalises_entropy(tmp_path):
    for seed, auc in ((0, 0.6), (1, 0.7)):
        _arm(tmp_path, "smart", seed, auc, entropy=0.5 * math.log(256))
    _write(tmp_path / "random_init" / "seed_0" / "probe" / "metrics.json", {"test": {"auc": 0.5, "auc_ci": None}})
    _write(tmp_path / "random" / "seed_0" / "zeroshot" / "summary.json", {"dsc_mean": 0.11})
    table = collect(tmp_path, {"smart": "smart", "random_init": "scratch"}, [0, 1])
    smart = table["smart"]
    assert smart["auc"]["mean"] == pytest.approx(0.65) and smart["auc"]["std"] == pytest.approx(0.0707107, rel=1e-5)
    assert smart["entropy_over_lnK"]["aitd"]["mean"] == pytest.approx(0.5)
    assert smart["entropy_over_lnK"]["ampd_dropped"]["mean"] == pytest.approx(0.25)
    assert smart["effective_rank"]["cls"] == {"mean": 2.5, "std": pytest.approx(math.sqrt(0.5)), "n": 2}
    assert smart["seeds"][1]["health"] == {"teacher_entropy/ampd": 0.5 * math.log(256),
                                           "teacher_entropy/aitd": 0.5 * math.log(256),
                                           "teacher_entropy/gitd": 0.5 * math.log(256),
                                           "teacher_entropy/ampd_dropped": 0.25 * math.log(256),
                                           "teacher_spread/ampd": 0.01, "effective_rank/cls": 3.0,
                                           "effective_rank/pooled": 20.0}
    assert smart["intra"]["mean"] == pytest.approx(1.5) and smart["seeds"][1]["step"] == 20
    rnd = table["random_init"]
    assert rnd["auc"] == {"mean": 0.5, "std": 0.0, "n": 1}  # seed 1 missing: n counts what exists
    assert rnd["dsc"]["mean"] == pytest.approx(0.11) and rnd["intra"] is None
    md = markdown(table)
    assert "| smart | smart | 0.650 ± 0.071 (n=2) | [0.55, 0.65]; [0.65, 0.75] |" in md
    assert "| random_init | scratch | 0.500 ± 0.000 (n=1) | —; — | — |" in md
    assert "| 0.50 ± 0.00 (n=2) | 0.25 ± 0.00 (n=2) | 0.50 ± 0.00 (n=2) | 0.50 ± 0.00 (n=2) | 2.5 ± 0.7 (n=2) | " \
           "15.0 ± 7.1 (n=2) |" in md
    assert mean_std([None]) is None


def test_main_writes_table_json_and_fig11(tmp_path):
    for arm in ("smart", "smart_no_nt"):
        _arm(tmp_path, arm, 0, 0.6, entropy=1.0)
    out = tmp_path / "out"
    assert main(["--root", str(tmp_path), "--arms", json.dumps({"smart": "smart", "smart_no_nt": "smart_no_nt"}),
                 "--seeds", "0", "--out-md", str(out / "s.md"), "--out-json", str(out / "s.json"),
                 "--out-fig11", str(out / "fig11.png")]) == 0
    assert json.loads((out / "s.json").read_text())["smart_no_nt"]["auc"]["n"] == 1
    assert (out / "fig11.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lonely = tmp_path / "only_smart"
    _arm(lonely, "smart", 0, 0.6, entropy=1.0)
    with pytest.raises(SystemExit, match="Fig. 11 needs pretraining metrics"):
        main(["--root", str(lonely), "--arms", json.dumps({"smart": "smart"}), "--seeds", "0", "--out-md",
              str(out / "t.md"), "--out-json", str(out / "t.json"), "--out-fig11", str(out / "f.png")])
