"""Generators of clinical inputs that real scanners, converters and annotation tools produce (issue #10).

Everything is written here with pydicom / nibabel / SimpleITK from explicit numbers, so each test knows the right
answer independently of the reader under test. Imported by the tests of tests/data (pytest puts this folder on
``sys.path``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

UID_ROOT = "1.2.826.0.1.3680043.8.498."  # pydicom's registered root, for test UIDs


def ct_hu_volume(shape_zyx=(8, 10, 12), seed: int = 0) -> np.ndarray:
    """int16 HU: air (-1000), a soft-tissue block (40) with a lung (-800) and a bone voxel block (700)."""
    d, h, w = shape_zyx
    vol = np.full(shape_zyx, -1000, dtype=np.int16)
    vol[:, 2:h - 2, 2:w - 2] = 40
    vol[:, 3:h // 2 + 1, 3:w // 2] = -800
    vol[:, h - 4:h - 2, w - 4:w - 2] = 700
    noise = np.random.default_rng(seed).integers(-7, 8, size=shape_zyx)
    return (vol + noise).astype(np.int16)


def write_ct_series(folder: str | os.PathLike, hu_zyx: np.ndarray, *, spacing=(1.0, 1.0, 2.0),
                    origin=(-5.0, -6.0, 10.0), row=(1.0, 0.0, 0.0), col=(0.0, 1.0, 0.0),
                    slopes: Sequence[float] | None = None, intercepts: Sequence[float] | None = None,
                    bits_stored: int = 16, signed: bool | Sequence[bool] | None = None,
                    series_uid: str | None = None, frame_uid: str | None = None, study_uid: str | None = None,
                    patient_id: str = "P001", modality: str = "CT", image_type=("ORIGINAL", "PRIMARY", "AXIAL"),
                    series_description: str = "CT", prefix: str = "ct", sop_class_uid: str = CTImageStorage,
                    photometric: str = "MONOCHROME2") -> list[Dataset]:
    """Write ``hu_zyx`` (z, y, x) as one CT series, slice k at ``origin + k * spacing_z * (row x col)``.

    ``slopes``/``intercepts`` (one per slice) set RescaleSlope/RescaleIntercept; the stored value of each slice is
    ``round((HU - intercept) / slope)``. ``signed`` chooses PixelRepresentation per slice (default: signed when a
    stored value of that slice is negative). ``spacing`` is (x = column step, y = row step, z) in mm.
    ``sop_class_uid`` (e.g. secondary capture) and ``photometric`` (PhotometricInterpretation) change every slice.
    Returns the written datasets (pixel data included) in slice order.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    depth, rows, cols = hu_zyx.shape
    slopes = list(slopes) if slopes is not None else [1.0] * depth
    intercepts = list(intercepts) if intercepts is not None else [-1024.0] * depth
    series_uid = series_uid or generate_uid(UID_ROOT)
    frame_uid = frame_uid or generate_uid(UID_ROOT)
    study_uid = study_uid or generate_uid(UID_ROOT)
    normal = np.cross(row, col)
    written = []
    for k in range(depth):
        stored = np.rint((hu_zyx[k].astype(np.float64) - intercepts[k]) / slopes[k]).astype(np.int64)
        is_signed = (stored.min() < 0) if signed is None else (signed if isinstance(signed, bool) else signed[k])
        dtype = np.int16 if is_signed else np.uint16
        info = np.iinfo(dtype)
        limit_lo = -(1 << (bits_stored - 1)) if is_signed else 0
        limit_hi = (1 << (bits_stored - 1)) - 1 if is_signed else (1 << bits_stored) - 1
        if stored.min() < max(limit_lo, info.min) or stored.max() > min(limit_hi, info.max):
            raise ValueError(f"slice {k}: stored values [{stored.min()}, {stored.max()}] do not fit "
                             f"{bits_stored} bits {'signed' if is_signed else 'unsigned'}")
        position = np.asarray(origin, dtype=float) + k * spacing[2] * normal
        ds = _ct_slice(stored.astype(dtype), is_signed, bits_stored, position, row, col, spacing, sop_class_uid)
        ds.PhotometricInterpretation = photometric
        ds.RescaleSlope, ds.RescaleIntercept = f"{slopes[k]:g}", f"{intercepts[k]:g}"
        ds.SeriesInstanceUID, ds.FrameOfReferenceUID, ds.StudyInstanceUID = series_uid, frame_uid, study_uid
        ds.PatientID, ds.PatientName, ds.Modality = patient_id, f"{patient_id}^Test", modality
        ds.ImageType = list(image_type)
        ds.SeriesDescription = series_description
        ds.InstanceNumber = k + 1
        ds.save_as(folder / f"{prefix}{k:03d}.dcm", enforce_file_format=True)
        written.append(ds)
    return written


def _new_dataset(sop_class_uid: str) -> Dataset:
    """An empty dataset of ``sop_class_uid`` with its file meta (explicit VR little endian) and a fresh SOP UID."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = generate_uid(UID_ROOT)
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def _ct_slice(stored: np.ndarray, signed: bool, bits_stored: int, position, row, col, spacing,
              sop_class_uid: str = CTImageStorage) -> Dataset:
    ds = _new_dataset(sop_class_uid)
    ds.SeriesNumber, ds.StudyID = 1, "1"
    # patient/study module attributes that SEG writers (highdicom) copy from the source images
    ds.PatientBirthDate, ds.PatientSex, ds.StudyDate, ds.StudyTime = "", "O", "20260101", "120000"
    ds.ReferringPhysicianName, ds.AccessionNumber = "", ""
    ds.Rows, ds.Columns = stored.shape
    # PixelSpacing = (row spacing = distance between rows = y step, column spacing = x step)
    ds.PixelSpacing = [f"{spacing[1]:g}", f"{spacing[0]:g}"]
    ds.SliceThickness = f"{spacing[2]:g}"
    ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
    ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*row, *col)]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, bits_stored, bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.PixelData = np.ascontiguousarray(stored).tobytes()
    return ds


def damage_file(path: str | os.PathLike, how: str) -> Path:
    """Damage a file the ways partial downloads and exports do: ``"empty"`` (0 bytes), ``"cut:N"`` (the last N
    bytes lost), ``"text"`` (a text file under the same name)."""
    path = Path(path)
    data = path.read_bytes()
    if how == "empty":
        path.write_bytes(b"")
    elif how.startswith("cut:"):
        path.write_bytes(data[: len(data) - int(how[4:])])
    elif how == "text":
        path.write_text("exported by a viewer: see the report\n")
    else:
        raise ValueError(f"unknown damage {how!r}")
    return path


def edit_slices(folder: str | os.PathLike, edit, names: Sequence[str] | None = None) -> None:
    """Apply ``edit(dataset)`` to the DICOM files ``names`` of ``folder`` (default: all, sorted) and save them."""
    import pydicom

    folder = Path(folder)
    for name in names if names is not None else sorted(p.name for p in folder.iterdir()):
        ds = pydicom.dcmread(folder / name)
        edit(ds)
        ds.save_as(folder / name, enforce_file_format=True)


def write_dose_report(path: str | os.PathLike, ref: Dataset) -> Path:
    """A CT radiation dose report (SR, no pixel data) of the study of ``ref``: what scanners add to CT exports."""
    ds = _new_dataset("1.2.840.10008.5.1.4.1.1.88.67")  # X-Ray Radiation Dose SR
    ds.Modality, ds.SeriesInstanceUID = "SR", generate_uid(UID_ROOT)
    ds.StudyInstanceUID, ds.PatientID = ref.StudyInstanceUID, ref.PatientID
    ds.save_as(path, enforce_file_format=True)
    return Path(path)


def edit_header(path: str | os.PathLike, drop: Sequence[str] = (), add: Sequence[str] = ()) -> Path:
    """Remove the NRRD/MetaImage header lines starting with any of ``drop`` and insert ``add`` after the first line
    (NRRD's magic; a MetaImage's ObjectType). The data bytes are kept."""
    path = Path(path)
    data = path.read_bytes()
    sep = b"\n\n" if path.suffix.lower() in (".nrrd", ".nhdr") else b"ElementDataFile"
    head, rest = data.split(sep, 1)
    lines = [ln for ln in head.split(b"\n") if not any(ln.startswith(d.encode()) for d in drop)]
    lines[1:1] = [a.encode() for a in add]
    path.write_bytes(b"\n".join(lines) + sep + rest)
    return path


def write_nifti(path: str | os.PathLike, data_xyz: np.ndarray, *, qform: np.ndarray | None,
                sform: np.ndarray | None, qform_code: int = 1, sform_code: int = 1) -> Path:
    """A NIfTI-1 with the given RAS affines (``None`` leaves that transform unset, code 0); data in (i, j, k)."""
    import nibabel as nib

    img = nib.Nifti1Image(np.asarray(data_xyz), affine=None)
    if qform is not None:
        img.set_qform(np.asarray(qform, dtype=float), code=qform_code)
    else:
        img.set_qform(None, code=0)
    if sform is not None:
        img.set_sform(np.asarray(sform, dtype=float), code=sform_code)
    else:
        img.set_sform(None, code=0)
    nib.save(img, os.fspath(path))
    return Path(path)


# ---------------------------------------------------------------------------------------------- RTSTRUCT / SEG


def sphere_contours(center_lps, radius_mm: float, slice_positions_z, n_points: int = 72,
                    stretch=(1.0, 1.0)) -> list[np.ndarray]:
    """Closed planar contours (N, 3) of an ellipsoid cut by the planes z = each slice position (axial slices)."""
    contours = []
    cx, cy, cz = center_lps
    t = np.linspace(0.0, 2 * np.pi, n_points, endpoint=False)
    for z in slice_positions_z:
        r2 = radius_mm ** 2 - (z - cz) ** 2
        if r2 <= 1.0:
            continue
        r = np.sqrt(r2)
        contours.append(np.stack([cx + stretch[0] * r * np.cos(t), cy + stretch[1] * r * np.sin(t),
                                  np.full_like(t, z)], axis=1))
    return contours


def contour_stats(contours, slice_thickness: float) -> tuple[float, np.ndarray]:
    """Volume (mm^3) and centroid (LPS mm) that planar contours enclose, as prisms of ``slice_thickness``: the
    shoelace area and polygon centroid of every contour in its own plane (hole-free ROIs)."""
    total, moment = 0.0, np.zeros(3)
    for points in contours:
        p = np.asarray(points, dtype=float)
        u = (p[1] - p[0]) / np.linalg.norm(p[1] - p[0])
        normal = np.cross(p[1] - p[0], p[2] - p[0])
        v = np.cross(normal / np.linalg.norm(normal), u)
        x, y = (p - p[0]) @ u, (p - p[0]) @ v
        cross = x * np.roll(y, -1) - np.roll(x, -1) * y
        area = 0.5 * cross.sum()
        cx = ((x + np.roll(x, -1)) * cross).sum() / (6 * area)
        cy = ((y + np.roll(y, -1)) * cross).sum() / (6 * area)
        total += abs(area) * slice_thickness
        moment += abs(area) * slice_thickness * (p[0] + cx * u + cy * v)
    return total, moment / total


def write_rtstruct(path, ct_slices: Sequence[Dataset], rois: dict[str, list[np.ndarray]], *,
                   series_description: str = "rater", contour_image_refs: bool = False) -> Path:
    """An RT Structure Set referencing the CT series of ``ct_slices`` with one CLOSED_PLANAR ROI per entry of
    ``rois`` ({name: [contour (N, 3) LPS mm, ...]}). ``contour_image_refs`` adds the optional per-contour
    ContourImageSequence (many exporters omit it)."""
    from pydicom.sequence import Sequence as DicomSequence
    from pydicom.uid import RTStructureSetStorage

    ref = ct_slices[0]
    ds = _new_dataset(RTStructureSetStorage)
    ds.Modality = "RTSTRUCT"
    ds.PatientID, ds.PatientName, ds.StudyInstanceUID = ref.PatientID, ref.PatientName, ref.StudyInstanceUID
    ds.SeriesInstanceUID = generate_uid(UID_ROOT)
    ds.SeriesDescription = series_description
    ds.StructureSetLabel = series_description
    ds.FrameOfReferenceUID = ref.FrameOfReferenceUID

    def item(**kw):
        d = Dataset()
        for k, v in kw.items():
            setattr(d, k, v)
        return d

    images = DicomSequence([item(ReferencedSOPClassUID=s.SOPClassUID, ReferencedSOPInstanceUID=s.SOPInstanceUID)
                            for s in ct_slices])
    series = item(SeriesInstanceUID=ref.SeriesInstanceUID, ContourImageSequence=images)
    study = item(ReferencedSOPClassUID="1.2.840.10008.3.1.2.3.1", ReferencedSOPInstanceUID=ref.StudyInstanceUID,
                 RTReferencedSeriesSequence=DicomSequence([series]))
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([
        item(FrameOfReferenceUID=ref.FrameOfReferenceUID, RTReferencedStudySequence=DicomSequence([study]))])
    z_of = {round(float(s.ImagePositionPatient[2]), 3): s for s in ct_slices}
    ds.StructureSetROISequence = DicomSequence(
        [item(ROINumber=i + 1, ROIName=name, ReferencedFrameOfReferenceUID=ref.FrameOfReferenceUID,
              ROIGenerationAlgorithm="MANUAL") for i, name in enumerate(rois)])
    roi_contours = []
    for i, contours in enumerate(rois.values()):
        seq = []
        for c in contours:
            entry = item(ContourGeometricType="CLOSED_PLANAR", NumberOfContourPoints=len(c),
                         ContourData=[f"{v:.4f}" for v in np.asarray(c).ravel()])
            if contour_image_refs:
                s = z_of[round(float(c[0, 2]), 3)]
                entry.ContourImageSequence = DicomSequence([item(ReferencedSOPClassUID=s.SOPClassUID,
                                                                 ReferencedSOPInstanceUID=s.SOPInstanceUID)])
            seq.append(entry)
        roi_contours.append(item(ReferencedROINumber=i + 1, ROIDisplayColor=[255, 0, 0],
                                 ContourSequence=DicomSequence(seq)))
    ds.ROIContourSequence = DicomSequence(roi_contours)
    ds.RTROIObservationsSequence = DicomSequence(
        [item(ObservationNumber=i + 1, ReferencedROINumber=i + 1, RTROIInterpretedType="GTV", ROIInterpreter="")
         for i in range(len(rois))])
    ds.save_as(path, enforce_file_format=True)
    return Path(path)


def write_seg(path, ct_slices: Sequence[Dataset], segments: dict[str, np.ndarray] | Sequence[tuple[str, np.ndarray]],
              *, series_description: str = "rater", fractional: str | None = None,
              max_fractional_value: int = 255) -> Path:
    """A DICOM SEG (highdicom) on the CT slices ``ct_slices`` with one segment per entry of ``segments``
    ({label: array (z, y, x) on the CT grid, z in ``ct_slices`` order}, or (label, array) pairs, so that a label may
    repeat). BINARY by default (arrays of 0/1); ``fractional`` = "PROBABILITY" or "OCCUPANCY" writes a FRACTIONAL SEG
    whose arrays are fractions in [0, 1], stored as ``round(fraction * max_fractional_value)``."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    pairs = list(segments.items()) if isinstance(segments, dict) else list(segments)
    descriptions = [hd.seg.SegmentDescription(
        segment_number=i + 1, segment_label=label,
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Neoplasm, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
        for i, (label, _) in enumerate(pairs)]
    dtype = np.float32 if fractional else np.uint8
    pixels = np.stack([np.asarray(m, dtype=dtype) for _, m in pairs], axis=-1)  # (z, y, x, segments)
    kind = {"segmentation_type": hd.seg.SegmentationTypeValues.BINARY} if not fractional else {
        "segmentation_type": hd.seg.SegmentationTypeValues.FRACTIONAL, "fractional_type": fractional,
        "max_fractional_value": max_fractional_value}
    seg = hd.seg.Segmentation(
        source_images=list(ct_slices), pixel_array=pixels, **kind,
        segment_descriptions=descriptions, series_instance_uid=generate_uid(UID_ROOT), series_number=100,
        sop_instance_uid=generate_uid(UID_ROOT), instance_number=1, manufacturer="smart-tests",
        manufacturer_model_name="generator", software_versions="1", device_serial_number="0")
    seg.SeriesDescription = series_description
    seg.save_as(path)
    return Path(path)
