"""``smart umap`` end to end: features -> clusters.json + umap.png."""

import json

import numpy as np
import pandas as pd
import pytest

from smart.cli import main


@pytest.mark.slow
def test_umap_clusters(tmp_path):
    rng = np.random.default_rng(0)
    centres = np.array([[0.0] * 8, [6.0] * 8, [-6.0] * 8])
    labels = np.repeat([0, 1, 2], 20)
    feats = centres[labels] + rng.normal(0, 0.3, (60, 8))
    np.savez(tmp_path / "f.npz", features=feats, labels=labels, kind=np.asarray("cls"))
    assert main(["umap", "--features", str(tmp_path / "f.npz"), "--out", str(tmp_path / "u"), "--n-neighbors", "10"]) == 0
    res = json.loads((tmp_path / "u" / "clusters.json").read_text())
    layout = pd.read_csv(tmp_path / "u" / "umap.csv")
    from smart.eval.clustering import cluster_distances
    again = cluster_distances(layout[["x", "y"]].to_numpy(), layout.label.to_numpy())
    assert res["intra_mean"] == pytest.approx(again["intra_mean"]) and res["space"] == "umap2d"
    assert res["inter_mean"] > 3 * res["intra_mean"]                      # well separated blobs stay separated
    assert (tmp_path / "u" / "umap.png").is_file()
