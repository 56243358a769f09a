"""Cluster distances against hand-computed values; UMAP layout determinism on a tiny set."""

import math

import numpy as np
import pytest

from smart.eval.clustering import cluster_distances, plot_clusters


def test_cluster_distances_hand_computed():
    pts = np.array([[0, 0], [2, 0],            # class 0: centroid (1,0), distances 1,1 -> 1
                    [0, 4], [0, 6], [0, 8],    # class 1: centroid (0,6), distances 2,0,2 -> 4/3
                    [10, 0]], float)           # class 2: single point -> 0
    labels = [0, 0, 1, 1, 1, 2]
    out = cluster_distances(pts, labels)
    intra = [1.0, 4 / 3, 0.0]
    assert out["intra_per_class"] == pytest.approx({"0": 1.0, "1": 4 / 3, "2": 0.0})
    assert out["intra_mean"] == pytest.approx(sum(intra) / 3)
    assert out["intra_std"] == pytest.approx(np.std(intra, ddof=1))
    inter = [math.sqrt(37), 9.0, math.sqrt(136)]   # |(1,0)-(0,6)|, |(1,0)-(10,0)|, |(0,6)-(10,0)|
    assert [p[2] for p in out["inter_pairs"]] == pytest.approx(inter)
    assert out["inter_mean"] == pytest.approx(sum(inter) / 3)
    assert out["inter_std"] == pytest.approx(np.std(inter, ddof=1))
    assert out["n_per_class"] == {"0": 2, "1": 3, "2": 1}


def test_cluster_distances_rejects_one_class():
    with pytest.raises(ValueError, match="at least 2 classes"):
        cluster_distances(np.zeros((3, 2)), [1, 1, 1])


def test_plot_clusters_writes_png(tmp_path):
    pts = np.random.default_rng(0).random((12, 2))
    out = plot_clusters(pts, [0, 1, 2] * 4, tmp_path / "u.png", title="t")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
