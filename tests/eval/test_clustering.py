"""Cluster distances against hand-computed values; UMAP layout determinism on a tiny set."""

import math

import numpy as np
import pytest

from smart.eval.clustering import cluster_distances, cluster_features, plot_clusters


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


def test_umap_figure_title_names_the_variant(tmp_path, monkeypatch):
    """The encoder folder (= the workflow's variant) heads umap.png; the legend names the organs."""
    rng = np.random.default_rng(0)
    feats = np.concatenate([rng.normal(c * 5.0, 1.0, size=(10, 4)) for c in range(3)]).astype(np.float32)
    npz = tmp_path / "features.npz"
    np.savez(npz, features=feats, labels=np.repeat([0, 1, 2], 10), kind=np.asarray("cls"),
             encoder=np.asarray("results/pretrain/smart_no_nt/encoder.pt"))
    from smart.eval import clustering

    seen = {}
    real = clustering.cluster_figure

    def keep(points, labels, title=""):  # the real figure, kept to look at
        seen["fig"] = real(points, labels, title)
        return seen["fig"]

    monkeypatch.setattr(clustering, "cluster_figure", keep)
    cluster_features(npz, tmp_path / "out", n_neighbors=5)
    ax = seen["fig"].axes[0]
    assert ax.get_title().startswith("smart_no_nt (cls features): intra ")
    assert [t.get_text() for t in ax.get_legend().get_texts()][:2] == [clustering.class_name(0), clustering.class_name(1)]
    assert (tmp_path / "out" / "umap.png").is_file()
