"""Unsupervised clustering of OrganMNIST3D features (paper Sec. V-A, Table I, Fig. 3).

Distances are measured in the **2-D UMAP space**: the paper's values (intra ≈ 1.3-2.2, inter ≈ 3-6.6 for features
of 384-768 dimensions) are on the scale of a UMAP layout, not of raw transformer features.

* intra-cluster distance of class c = mean Euclidean distance of its points to the class centroid; reported as
  mean ± std over classes;
* inter-cluster distance = Euclidean distance between the centroids of every pair of classes; mean ± std over pairs.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from smart.data.organmnist import CLASS_NAMES
from smart.downstream.metrics import mean_std


def umap_embed(features: np.ndarray, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1) -> np.ndarray:
    """2-D UMAP of ``features (n, C)`` (Euclidean metric, fixed ``random_state`` so reruns are identical)."""
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2:
        raise ValueError(f"features must be (n, C), got shape {features.shape}")
    if features.shape[0] < 3:
        raise ValueError(f"UMAP needs at least 3 samples, got {features.shape[0]}")
    # numba caches compiled code beside the package by default, which is read-only on clusters.
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(tempfile.gettempdir()) / "smart-numba-cache"))
    import umap  # deferred: importing umap compiles numba code (~30 s on first use)

    reducer = umap.UMAP(n_components=2, n_neighbors=min(n_neighbors, features.shape[0] - 1), min_dist=min_dist,
                        random_state=seed, n_jobs=1)
    return np.asarray(reducer.fit_transform(features), dtype=np.float64)


def cluster_distances(points: np.ndarray, labels: Sequence[int]) -> dict[str, Any]:
    """Intra- and inter-cluster Euclidean distances of ``points (n, d)`` grouped by ``labels``."""
    points = np.asarray(points, dtype=np.float64)
    labels = np.asarray(labels).ravel()
    if points.ndim != 2 or points.shape[0] != labels.shape[0]:
        raise ValueError(f"points {points.shape} and labels ({labels.shape[0]},) do not match")
    classes = np.unique(labels)
    if classes.size < 2:
        raise ValueError(f"need at least 2 classes for inter-cluster distances, got {classes.tolist()}")
    centroids = np.stack([points[labels == c].mean(axis=0) for c in classes])
    intra = {int(c): float(np.linalg.norm(points[labels == c] - centroids[i], axis=1).mean())
             for i, c in enumerate(classes)}
    iu, ju = np.triu_indices(classes.size, k=1)
    inter = np.linalg.norm(centroids[iu] - centroids[ju], axis=1)
    intra_mean, intra_std, _ = mean_std(intra.values())
    inter_mean, inter_std, _ = mean_std(inter.tolist())
    return {
        "intra_mean": intra_mean, "intra_std": intra_std, "inter_mean": inter_mean, "inter_std": inter_std,
        "intra_per_class": {str(k): v for k, v in intra.items()},
        "inter_pairs": [[int(classes[i]), int(classes[j]), float(d)] for i, j, d in zip(iu, ju, inter)],
        "centroids": {str(int(c)): centroids[i].tolist() for i, c in enumerate(classes)},
        "n_per_class": {str(int(c)): int((labels == c).sum()) for c in classes},
    }


def class_name(label: int) -> str:
    return CLASS_NAMES[label] if 0 <= label < len(CLASS_NAMES) else f"class {label}"


def organ_colour(label: int):
    """The RGBA colour of organ class ``label`` in every UMAP figure (so panels side by side agree): the dark tab20
    shades first, because adjacent light/dark pairs of tab20 are hard to tell apart."""
    import matplotlib

    return matplotlib.colormaps["tab20"]((2 * label) % 20 + (label // 10) % 2)


def scatter_organs(ax, points: np.ndarray, labels: Sequence[int], size: float = 6) -> None:
    """Scatter the 2-D layout ``points (n, 2)`` on ``ax``, one :func:`organ_colour` and legend label (the organ's
    name) per class of ``labels (n,)``."""
    labels = np.asarray(labels).ravel()
    for c in np.unique(labels):
        sel = labels == c
        ax.scatter(points[sel, 0], points[sel, 1], s=size, color=organ_colour(int(c)), label=class_name(int(c)))


def cluster_figure(points: np.ndarray, labels: Sequence[int], title: str = ""):
    """Fig. 3 style scatter of the UMAP layout coloured by organ (legend = organ names). Returns the Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5), dpi=120)
    scatter_organs(ax, points, labels)
    ax.set_xlabel("UMAP 1")
    ax.set_ylabel("UMAP 2")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(markerscale=2, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    return fig


def plot_clusters(points: np.ndarray, labels: Sequence[int], path: str | os.PathLike, title: str = "") -> Path:
    """:func:`cluster_figure` written atomically as PNG."""
    from smart.eval.figures import save_png

    return save_png(cluster_figure(points, labels, title), path)


def cluster_features(features_npz: str | os.PathLike, out_dir: str | os.PathLike, seed: int = 0,
                     n_neighbors: int = 15, min_dist: float = 0.1, title: str = "") -> dict[str, Any]:
    """``smart umap``: UMAP of ``features.npz`` (from ``smart embed``) -> ``clusters.json``, ``umap.png`` and the
    2-D layout ``umap.csv`` (x, y, label, split) so the figure can be redrawn. The figure's title is ``title``
    (default: the encoder's folder name = the workflow's variant) with the feature kind and both distances."""
    import pandas as pd

    from smart.atomic import write_csv, write_json
    from smart.provenance import provenance

    path = Path(features_npz)
    if not path.is_file():
        raise ValueError(f"features file {path} does not exist")
    from smart.inputs import InputFileError

    try:
        with np.load(path) as z:
            missing = {"features", "labels"} - set(z.files)
            if missing:
                raise InputFileError(path, f"missing arrays {sorted(missing)} (expected the output of 'smart embed')")
            feats, labels = z["features"], z["labels"].ravel().astype(int)
            split = z["split"] if "split" in z.files else np.full(len(labels), "")
            kind = str(z["kind"]) if "kind" in z.files else "unknown"
            encoder = str(z["encoder"]) if "encoder" in z.files else ""
    except InputFileError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, zlib.error, EOFError, npy header errors of a damaged file
        raise InputFileError(path, f"not a readable features npz ({type(exc).__name__}: {exc})") from None
    if len(feats) != len(labels):
        raise ValueError(f"{path}: {len(feats)} feature rows but {len(labels)} labels")
    points = umap_embed(feats, seed=seed, n_neighbors=n_neighbors, min_dist=min_dist)
    out = Path(out_dir)
    result = {"space": "umap2d", "feature": kind, "n": int(len(labels)), "feature_dim": int(feats.shape[1]),
              **cluster_distances(points, labels),
              "class_names": {str(c): class_name(int(c)) for c in np.unique(labels)},
              "umap": {"seed": seed, "n_neighbors": n_neighbors, "min_dist": min_dist},
              "features": str(path),
              "provenance": provenance({"seed": seed, "n_neighbors": n_neighbors, "min_dist": min_dist}, seed=seed)}
    write_csv(out / "umap.csv", pd.DataFrame({"x": points[:, 0], "y": points[:, 1], "label": labels, "split": split}))
    name = title or (Path(encoder).parent.name if encoder else path.parent.name)
    plot_clusters(points, labels, out / "umap.png",
                  title=f"{name} ({kind} features): intra {result['intra_mean']:.2f} ± {result['intra_std']:.2f}, "
                        f"inter {result['inter_mean']:.2f} ± {result['inter_std']:.2f}")
    write_json(out / "clusters.json", result)
    return result
