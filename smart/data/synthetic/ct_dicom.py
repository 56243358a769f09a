"""Writing a generated CT volume as a real DICOM series (pydicom): one CT Image Storage file per axial slice.

Pixels are stored the way scanners store them: signed 16-bit values with ``RescaleIntercept`` -1024 and
``RescaleSlope`` 1 (stored = HU + 1024), so a reader that ignores the rescale gets wrong HU. Each slice carries its own
``ImagePositionPatient`` (LPS mm), the axial ``ImageOrientationPatient``, ``PixelSpacing`` (row, column spacing),
``SliceThickness`` and ``InstanceNumber``; the UIDs are derived from a root and the series' name, so the same inputs
give byte-identical files. Every file is written atomically.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from smart import atomic

__all__ = ["RESCALE_INTERCEPT", "derived_uid", "write_ct_series"]

RESCALE_INTERCEPT = -1024.0
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
_UID_ROOT = "1.2.826.0.1.3680043.10.1234."  # a fixed root under which the derived UIDs are unique per name


def derived_uid(*parts: object) -> str:
    """A deterministic DICOM UID (digits and dots, <= 64 characters) from ``parts``."""
    digest = int(hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:24], 16)
    return (_UID_ROOT + str(digest))[:64]


def write_ct_series(folder: str | os.PathLike, hu_zyx: np.ndarray, spacing_xyz: tuple[float, float, float],
                    origin_xyz: tuple[float, float, float], patient_id: str, series_name: str) -> list[Path]:
    """Write ``hu_zyx`` (D, H, W) HU as ``folder/NNNN.dcm``; slice k lies at ``origin_z + k * spacing_z`` mm.

    ``spacing_xyz`` is (column, row, slice) mm. Raises ``ValueError`` for a non-3-D array or HU outside what int16
    with intercept -1024 can hold ([-1024, 31743]).
    """
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    if hu_zyx.ndim != 3:
        raise ValueError(f"{folder}: expected a 3-D (D, H, W) HU array, got shape {hu_zyx.shape}")
    stored = np.asarray(hu_zyx, dtype=np.int32) - int(RESCALE_INTERCEPT)
    if stored.min() < np.iinfo(np.int16).min or stored.max() > np.iinfo(np.int16).max:
        raise ValueError(f"{folder}: HU range [{hu_zyx.min()}, {hu_zyx.max()}] does not fit int16 with intercept "
                         f"{RESCALE_INTERCEPT:g}")
    stored = stored.astype(np.int16)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    study_uid = derived_uid("study", patient_id)
    series_uid = derived_uid("series", patient_id, series_name)
    frame_uid = derived_uid("frame", patient_id, series_name)
    sx, sy, sz = (float(s) for s in spacing_xyz)
    paths = []
    for k in range(stored.shape[0]):
        sop_uid = derived_uid("sop", patient_id, series_name, k)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CT_IMAGE_STORAGE, sop_uid
        ds.Modality, ds.PatientID, ds.PatientName = "CT", patient_id, patient_id
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient = [float(origin_xyz[0]), float(origin_xyz[1]), float(origin_xyz[2]) + k * sz]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [sy, sx]  # (row spacing, column spacing)
        ds.SliceThickness = sz
        ds.Rows, ds.Columns = stored.shape[1], stored.shape[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = RESCALE_INTERCEPT, 1.0, "HU"
        ds.PixelData = stored[k].tobytes()
        path = folder / f"{k:04d}.dcm"
        with atomic.atomic_path(path) as tmp:
            pydicom.dcmwrite(tmp, ds, enforce_file_format=True)
        paths.append(path)
    return paths
