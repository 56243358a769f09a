"""Fig. 10 (the PDR sweep) from real `smart umap` outputs and real resolved pretraining configs of three variants:
panels ordered and titled by the configs' drop ratios, not by the variants' names or the order they are given in."""

import json

import numpy as np
import pandas as pd
import pytest

from smart.cli import main
from smart.config import load_config
from smart.eval import pdr_sweep as fig10
from smart.eval.clustering import CLASS_NAMES, cluster_features, organ_colour
from smart.eval.tables import Results, load_plan
from smart.run_logging import RunLogger
from tables_fixtures import write_plan

# variant -> the drop ratio it is pretrained with; names and labels deliberately disagree with the ratios
SWEEP = {"pdr_high": 0.9, "smart_no_nt": 0.0, "pdr_01": 0.3}
ORDER = ["smart_no_nt", "pdr_01", "pdr_high"]            # by drop ratio


@pytest.fixture(scope="module")
def sweep_results(tmp_path_factory):
    """results/{pretrain,cluster}/<variant>/ as the workflow leaves them, for the variants of SWEEP."""
    tmp = tmp_path_factory.mktemp("pdr")
    root = tmp / "results"
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 3, 6, 9], 12)                  # four organs, 48 samples
    centres = rng.normal(0, 4.0, (10, 6))
    for k, (variant, drop) in enumerate(SWEEP.items()):
        cfg = load_config("smart", "tiny", overrides={"noisy_teacher.drop_ratio": drop})
        RunLogger(root / "pretrain" / variant, tensorboard=False).write_config(cfg)
        feats = centres[labels] + rng.normal(0, 0.5 + k, (labels.size, 6))
        np.savez(tmp / f"{variant}.npz", features=feats, labels=labels, kind=np.asarray("cls"))
        cluster_features(tmp / f"{variant}.npz", root / "cluster" / variant, n_neighbors=8)
    variants = {v: {"method": "smart", "label": f"label of {v}", "tables": []} for v in SWEEP}
    variants["smart"] = {"method": "smart", "label": "SMART", "tables": []}       # not in the sweep
    return root, write_plan(tmp / "plan.json", variants)


def test_rows_follow_the_resolved_drop_ratio(sweep_results):
    root, vpath = sweep_results
    frame = fig10.pdr_sweep(Results(root), load_plan(vpath)[0], list(SWEEP))
    assert frame["variant"].tolist() == ORDER and frame["pdr"].tolist() == [0.0, 0.3, 0.9]
    for _, row in frame.iterrows():
        clusters = json.loads((root / "cluster" / row["variant"] / "clusters.json").read_text())
        assert row["intra_mean"] == clusters["intra_mean"] and row["inter_std"] == clusters["inter_std"]
        assert row["n"] == 48 and row["label"] == f"label of {row['variant']}"
        assert row["sources"].split(";") == [f"pretrain/{row['variant']}/config.json",
                                             f"cluster/{row['variant']}/clusters.json",
                                             f"cluster/{row['variant']}/umap.csv"]


def test_figure_panels_count_order_titles_and_colours(sweep_results):
    root, vpath = sweep_results
    frame = fig10.pdr_sweep(Results(root), load_plan(vpath)[0], list(SWEEP))
    fig = fig10.pdr_sweep_figure(frame, root, columns=2)          # 2 x 2 grid, the fourth axes removed
    assert len(fig.axes) == 3
    for ax, variant, drop in zip(fig.axes, ORDER, ["0.0", "0.3", "0.9"]):
        c = json.loads((root / "cluster" / variant / "clusters.json").read_text())
        assert ax.get_title() == (f"PDR {drop} ({variant})\nintra {c['intra_mean']:.2f} ± {c['intra_std']:.2f} · "
                                  f"inter {c['inter_mean']:.2f} ± {c['inter_std']:.2f}")
        layout = pd.read_csv(root / "cluster" / variant / "umap.csv")
        points = np.concatenate([col.get_offsets() for col in ax.collections])
        assert sorted(map(tuple, points)) == sorted(map(tuple, layout[["x", "y"]].to_numpy()))
        # each organ keeps one colour in every panel
        assert [tuple(col.get_facecolor()[0]) for col in ax.collections] == [organ_colour(k) for k in (0, 3, 6, 9)]
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == [CLASS_NAMES[k] for k in (0, 3, 6, 9)]


def test_smart_tables_writes_fig10_beside_the_tables(sweep_results, tmp_path):
    root, vpath = sweep_results
    out = tmp_path / "tables"
    assert main(["tables", "--results", str(root), "--plan", str(vpath), "--out", str(out),
                 "--pdr-sweep", *SWEEP]) == 0
    assert (out / "pdr_umaps.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pd.read_csv(out / "pdr_umaps.csv")["variant"].tolist() == ORDER
    assert list(json.loads((out / "sources.json").read_text())["pdr_umaps"]) == ORDER
    # without --pdr-sweep no figure is drawn
    assert main(["tables", "--results", str(root), "--plan", str(vpath), "--out", str(tmp_path / "t2")]) == 0
    assert not (tmp_path / "t2" / "pdr_umaps.png").exists()


@pytest.mark.parametrize("breakage, message", [
    ("config", "pretrain/pdr_01/config.json: not found"),
    ("drop", "pretrain/pdr_01/config.json: noisy_teacher.drop_ratio is None, not a number"),
    ("layout", "cluster/pdr_01/umap.csv: not found"),
    ("unknown", r"variant\(s\) \['nope'\] are not in the variants file"),
])
def test_a_hole_in_the_sweep_is_an_error_naming_the_file(sweep_results, tmp_path, breakage, message):
    import shutil

    src, vpath = sweep_results
    root = tmp_path / "results"
    shutil.copytree(src, root)
    sweep = list(SWEEP)
    if breakage == "config":
        (root / "pretrain/pdr_01/config.json").unlink()
    elif breakage == "drop":
        cfg = json.loads((root / "pretrain/pdr_01/config.json").read_text())
        del cfg["noisy_teacher"]["drop_ratio"]
        (root / "pretrain/pdr_01/config.json").write_text(json.dumps(cfg))
    elif breakage == "layout":
        (root / "cluster/pdr_01/umap.csv").unlink()
    else:
        sweep.append("nope")
    with pytest.raises(ValueError, match=message):
        fig10.pdr_sweep(Results(root), load_plan(vpath)[0], sweep)


@pytest.mark.parametrize("pdr, text", [(0.0, "0.0"), (0.7, "0.7"), (1.0, "1.0"), (0.25, "0.25"), (0.125, "0.125")])
def test_ratio_text_writes_the_paper_s_one_decimal(pdr, text):
    assert fig10.ratio_text(pdr) == text
