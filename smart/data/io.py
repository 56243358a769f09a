"""Read a CT volume from NIfTI, NRRD, MetaImage, a single DICOM file or a DICOM series folder (SimpleITK).

Everything that can be decided from the header — dimensionality, spacing, the memory guard, the modality, the
slice stacking of a DICOM series — is checked before or while the pixels are read, so a bad file costs little and
never reaches the resampler. ``.gz`` files are decompressed once (ISA-L), verifying the gzip CRC and length, into a
temporary uncompressed copy that ITK reads: ITK's NIfTI reader silently zero-fills a truncated ``.nii.gz`` (measured
with SimpleITK 2.5.7), and one checked decompression costs less than ITK's plus a separate check.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import stat
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import SimpleITK as sitk

from smart.data.geometry import GeometryError, nifti_geometry, orientation_label
from smart.data.validation import (ImageReadError, ValidationRules, check_finite_voxels, check_geometry,
                                   check_modality, check_slice_geometry, check_slice_positions)

__all__ = ["ImageReadError", "IMAGE_SUFFIXES", "NOT_SLICE_NAMES", "NOT_SLICE_SUFFIXES", "read_image", "read_array_zyx",
           "case_id_from_path", "display_path", "is_image_file", "is_not_slice",
           "is_dicom_folder", "scan_dicom_folder", "check_no_special_entries", "DicomFolderScan", "itk_warnings_off",
           "image_provenance", "table_path"]

# Longest first so ".nii.gz" wins over ".gz".
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm")

_MODALITY_TAG = "0008|0060"
_SERIES_UID_TAG = "0020|000e"
# What read_image records about its choices, in the returned image's metadata dictionary (image_provenance reads it).
_SERIES_KEY, _GEOMETRY_KEY, _CHOICE_KEY = "smart_series_uid", "smart_geometry", "smart_series_choice"
_GZIP_CHUNK = 1 << 22


def table_path(value: str | os.PathLike, base: str | os.PathLike) -> Path:
    """A path written in a table (a cohort, lesion, raters or file-list CSV cell): absolute as written, or relative to
    ``base`` (the table's folder); surrounding whitespace is not part of it. The file is not checked here."""
    path = Path(str(value).strip())
    return path if path.is_absolute() else Path(base) / path


def is_image_file(path: str | os.PathLike) -> bool:
    """True when the file name carries one of :data:`IMAGE_SUFFIXES` (case-insensitive)."""
    name = Path(path).name.lower()
    return any(name.endswith(s) for s in IMAGE_SUFFIXES)


def is_dicom_file(path: str | os.PathLike) -> bool:
    """True when the file carries DICOM Part 10's ``DICM`` marker after its 128-byte preamble (any file name: scanner
    exports often have no suffix); False for an unreadable or shorter file."""
    try:
        with open(path, "rb") as fh:
            return fh.read(132)[128:] == b"DICM"
    except OSError:
        return False


# A case id is these characters only: safe as a file name, a Snakemake wildcard and a CSV cell.
_SAFE_PART = re.compile(r"[A-Za-z0-9.-]+(?:_[A-Za-z0-9.-]+)*")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]")
# Joins the parts of a relative path; a faithful part never holds "__" nor starts or ends with "_", so the id splits
# back into its parts and two faithful paths never meet.
_PART_SEPARATOR = "__"
# Marks an id whose readable part lost information; "___" never occurs in a faithful id.
_HASH_MARK = "___h"
_MAX_CASE_ID = 120


# Files found in DICOM export folders that are never slices of an image (docs/data_preparation.md "Every file of a
# series"): the media directory, operating-system metadata (macOS AppleDouble ``._*`` and ``.DS_Store``, Windows
# Thumbs.db / desktop.ini, any hidden file), and documents or images of other formats that exports put beside the
# slices. Every other file in a series folder must be a slice of a series (scan_dicom_folder), or the series is
# rejected naming it.
NOT_SLICE_NAMES = frozenset({"dicomdir", "thumbs.db", "desktop.ini", "lockfile", "version"})
NOT_SLICE_SUFFIXES = (".txt", ".csv", ".tsv", ".json", ".xml", ".md", ".pdf", ".htm", ".html", ".log", ".ini",
                      ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".zip", ".raw", ".exe", ".inf") \
    + tuple(s for s in IMAGE_SUFFIXES if s != ".dcm")


def is_not_slice(name: str) -> bool:
    """True for a file name of :data:`NOT_SLICE_NAMES` (case-insensitive), a hidden file (``._*`` AppleDouble,
    ``.DS_Store``) or one ending in :data:`NOT_SLICE_SUFFIXES`: never part of a DICOM series."""
    lower = name.lower()
    return name.startswith(".") or lower in NOT_SLICE_NAMES or lower.endswith(NOT_SLICE_SUFFIXES)


def case_id_from_path(path: str | os.PathLike, root: str | os.PathLike | None = None) -> str:
    """Case identifier of a source: its path relative to the input ``root`` it was found under (docs/data_preparation.md
    "Case ids").

    The parts of the relative path are joined with ``__`` and the image suffix of a file is dropped
    (``root/p1/CT`` -> ``p1__CT``, ``root/a/ct.nii.gz`` -> ``a__ct``). A source that is its own input (``root`` is
    None or the source itself) is named by its own name (``ct.nii.gz`` -> ``ct``, a DICOM folder -> its name), so a
    file passed on its own keeps a short id. When the readable form is not a faithful copy of the path (a character
    outside ``[A-Za-z0-9._-]``, ``_`` at a part's start or end or doubled, an id over 120 characters), ``___h`` and
    10 hex digits of the relative path's SHA-1 are appended, so two different paths never share an id. The id
    depends on nothing but the relative path: adding or removing other folders never changes it.
    """
    p = Path(path)
    parts = list(p.relative_to(root).parts) if root is not None and Path(root) != p else [p.name]
    if not parts or parts == ["."]:
        parts = [p.name]
    if not p.is_dir():
        lower = parts[-1].lower()
        for suffix in IMAGE_SUFFIXES:
            if lower.endswith(suffix) and len(parts[-1]) > len(suffix):
                parts[-1] = parts[-1][: -len(suffix)]
                break
    readable = _PART_SEPARATOR.join(_UNSAFE_CHARS.sub("_", part) for part in parts) or "case"
    if all(_SAFE_PART.fullmatch(part) for part in parts) and len(readable) <= _MAX_CASE_ID:
        return readable
    digest = hashlib.sha1("/".join(parts).encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return readable[:_MAX_CASE_ID - len(_HASH_MARK) - 10] + _HASH_MARK + digest


def display_path(path: str | os.PathLike) -> str:
    """``path`` as printable text: bytes of a name that is not valid UTF-8 (held by Python as surrogate escapes)
    are shown as ``\\xNN``, so a rejection row can always be written to a UTF-8 CSV."""
    return os.fsencode(os.fspath(path)).decode("utf-8", "backslashreplace")


def is_dicom_folder(folder: str | os.PathLike) -> bool:
    """True when a regular file directly inside ``folder`` (links followed) may be a slice: not
    :func:`is_not_slice`, and named ``*.dcm`` or carrying the DICM marker. What the folder IS decides it, not what
    a scan of it finds: a folder whose only slice is damaged is still one case, rejected naming the file."""
    try:
        with os.scandir(folder) as it:
            for entry in it:
                if is_not_slice(entry.name) or not _is_regular_file(entry):
                    continue
                if entry.name.lower().endswith(".dcm") or is_dicom_file(entry.path):
                    return True
    except OSError:
        return False
    return False


def _is_regular_file(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file()  # follows links; False for a dangling link, a pipe or a device
    except OSError:
        return False


def check_no_special_entries(folder: str | os.PathLike) -> None:
    """Raise :class:`ImageReadError` naming the pipes, sockets and devices directly inside ``folder``: opening one
    to read its header would block forever or misread."""
    special = special_entries(folder)
    if special:
        raise ImageReadError(folder, f"holds {', '.join(special)}: not regular files, which a DICOM scan would "
                                     f"block on or misread; remove them")


@dataclass
class DicomFolderScan:
    """What :func:`scan_dicom_folder` found: ``series`` ``{SeriesInstanceUID: [(file, header)]}`` with each
    series' files sorted along the slice normal; ``problems`` ``"name (reason)"`` for every file that may be a slice
    but is in no series; ``non_images`` ``"name (modality)"`` for complete non-image DICOM objects."""

    series: dict[str, list[tuple[str, object]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    non_images: list[str] = field(default_factory=list)


def scan_dicom_folder(folder: str | os.PathLike) -> DicomFolderScan:
    """Group the files directly inside ``folder`` into DICOM series by their own headers (pydicom, pixel data
    deferred; docs/data_preparation.md "Every file of a series").

    Every entry that is not :func:`is_not_slice` and not a folder is read: an image with pixel data and a
    SeriesInstanceUID joins its series; a complete non-image object is listed in ``non_images``; anything else (a
    dangling link, an empty, truncated or non-DICOM file, an image without SeriesInstanceUID) is named in
    ``problems`` with why. GDCM's own folder scan is not used: one entry it cannot open (a dangling link) made it
    drop or split whole series (SimpleITK 2.5.7, pydicom's CT5N series). Each series is sorted by ImagePositionPatient
    along the normal of its first file's ImageOrientationPatient (GDCM's order), ties and files without a
    decodable position by InstanceNumber, then name; the geometry checks reject the latter later.

    Raises :class:`ImageReadError` when the folder cannot be listed or holds a pipe, socket or device.
    """
    folder = Path(folder)
    check_no_special_entries(folder)
    try:
        names = sorted(os.listdir(folder))
    except OSError as err:
        raise ImageReadError(folder, f"cannot list the folder ({err.strerror or err})") from None
    scan = DicomFolderScan()
    for name in names:
        path = folder / name
        if is_not_slice(name) or path.is_dir():  # a sub-folder, or a link to one, is walked, not read
            continue
        ds, reason = _classify(path)
        if ds is not None:
            scan.series.setdefault(reason, []).append((os.fspath(path), ds))
        elif reason.startswith("non-image"):
            scan.non_images.append(f"{display_path(name)} ({reason.split(': ', 1)[1]})")
        else:
            scan.problems.append(f"{display_path(name)} ({reason})")
    scan.series = {uid: sorted(members, key=_slice_order(members)) for uid, members in scan.series.items()}
    return scan


def _slice_order(members):
    """Sort key of a series' files: depth along the first file's slice normal, then InstanceNumber, then name."""
    def number(ds, keyword, size):
        try:
            values = [float(v) for v in ds.get(keyword)]
            return values if len(values) == size else None
        except Exception:  # absent (None) or undecodable: the geometry check names it
            return None

    orientation = number(members[0][1], "ImageOrientationPatient", 6)
    normal = np.cross(orientation[:3], orientation[3:]) if orientation else None

    def key(member):
        path, ds = member
        position = number(ds, "ImagePositionPatient", 3)
        depth = float(np.dot(position, normal)) if position is not None and normal is not None else math.inf
        try:
            instance = int(ds.get("InstanceNumber"))
        except Exception:
            instance = 0
        return depth, instance, path

    return key


def special_kind(mode: int) -> str | None:
    """``"named pipe"``, ``"socket"``, ``"device"`` for such a ``st_mode``; None for a regular file or folder."""
    if stat.S_ISFIFO(mode):
        return "named pipe"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return None


def special_entries(folder: str | os.PathLike) -> list[str]:
    """``"name (kind)"`` for each entry of ``folder`` (links followed) that is a pipe, socket or device."""
    found = []
    try:
        with os.scandir(folder) as it:
            for entry in it:
                try:
                    kind = special_kind(entry.stat().st_mode)
                except OSError:
                    continue  # a dangling link or unreadable entry is named by whoever reads it
                if kind:
                    found.append(f"{display_path(entry.name)} ({kind})")
    except OSError:
        return []
    return sorted(found)


def read_image(path: str | os.PathLike, *, series_uid: str | None = None, rules: ValidationRules | None = None,
               require_ct: bool = True) -> sitk.Image:
    """Read one 3-D image; raise :class:`ImageReadError` with the reason when it cannot be a CT volume.

    Args:
        path: a NIfTI/NRRD/MetaImage/DICOM file, or a folder holding a DICOM series.
        series_uid: for a folder with several series, the SeriesInstanceUID to read. By default localizer
            (scout) series are set aside and the series with the most files is read; two or more such series with
            the same, largest number of files are ambiguous and rejected, naming their UIDs.
        rules: thresholds (memory guard, minimum slices, slice-gap tolerance); the documented defaults if None.
        require_ct: reject a header whose modality is not CT (DICOM (0008,0060), MetaImage ``Modality``);
            formats that do not record a modality (NIfTI, NRRD) always pass. Switch off for label maps.

    Returns:
        the image as stored; a 4-D file with one time point is returned as its 3-D volume. A DICOM series is read
        as float32, each slice with its own RescaleSlope/Intercept (ITK would otherwise cast every slice to the
        pixel type of the first one: negative HU wrap around). A NIfTI's geometry is the one the NIfTI standard
        defines (:func:`smart.data.geometry.nifti_geometry`: sform when sform_code > 0), not ITK's qform-first
        reading. :func:`image_provenance` tells which series and which geometry rule were used.
    """
    rules = rules or ValidationRules()
    p = Path(path)
    if not p.exists():
        raise ImageReadError(p, "no such file or folder")
    if p.is_dir():
        return _read_dicom_series(p, series_uid, rules, require_ct)
    return _read_file(p, rules, require_ct)


def image_provenance(image: sitk.Image) -> dict[str, str]:
    """What :func:`read_image` chose for ``image``: ``series_uid`` (DICOM, else ""), ``geometry`` (``"dicom"``,
    ``"nifti sform"``, ``"nifti qform"``, ``"nifti sform; qform differs"`` or ``"header"`` for NRRD/MetaImage),
    ``orientation`` (:func:`smart.data.geometry.orientation_label` of the direction, e.g. ``"LPS"``) and
    ``series_choice`` (for a DICOM folder: how its series was chosen and what was set aside; else "")."""
    def meta(key):
        return image.GetMetaData(key) if image.HasMetaDataKey(key) else ""

    return {"series_uid": meta(_SERIES_KEY), "geometry": meta(_GEOMETRY_KEY) or "header",
            "orientation": orientation_label(image.GetDirection()), "series_choice": meta(_CHOICE_KEY)}


def read_array_zyx(path: str | os.PathLike) -> np.ndarray:
    """A stored 3-D volume (crop or resampled CT, in HU) as float32 with axes ``(z, y, x)`` = ``(D, H, W)``.

    This is the one array order fed to every network (docs/ARCHITECTURE.md "Axes"): SimpleITK's, which is the
    reverse of ITK/MONAI/nibabel index order ``(x, y, z)``. Read through :func:`read_image` (no modality check,
    single slices allowed), so a truncated ``.nii.gz`` or NaN voxels are rejected here too instead of arriving as
    zeros. Raises :class:`ImageReadError` naming the file.
    """
    image = read_image(path, require_ct=False, rules=ValidationRules(min_axis_size=1))
    return sitk.GetArrayFromImage(image).astype(np.float32, copy=False)


def _itk_reason(err: Exception) -> str:
    """The informative line of an ITK exception (they carry file/line noise around the message)."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    for ln in lines:
        if "ERROR:" in ln:
            return ln.split("ERROR:", 1)[1].strip()[:300]
    return (lines[-1] if lines else type(err).__name__)[:300]


def _gzip_problem(path: Path, sink=None) -> str | None:
    """Decompress a (possibly multi-member) gzip file fully; return why it is broken, or None when intact.

    zlib checks each member's CRC-32 and length trailer. With ``sink``, the decompressed bytes are kept: a binary
    file gets all of them appended; a preallocated ``bytearray`` is filled from its start, up to its length (the
    rest of the stream is still verified; a stream shorter than the buffer is reported). The copy is complete only
    when None is returned.
    """
    # ISA-L's inflate is a drop-in for zlib's (same format, CRC and length checks) and ~1.7x faster (measured on
    # 512x512x300 int16: 1.17 vs 1.97 s), which makes a verified read cheaper than ITK's unverified one.
    from isal import isal_zlib

    kept = 0
    limit = len(sink) if isinstance(sink, bytearray) else None
    try:
        with open(path, "rb") as fh:
            dec = isal_zlib.decompressobj(wbits=31)
            while True:
                chunk = fh.read(_GZIP_CHUNK)
                if not chunk:
                    break
                while chunk:
                    data = dec.decompress(chunk)
                    if limit is None and sink is not None:
                        sink.write(data)
                    elif limit is not None and kept < limit:
                        take = min(len(data), limit - kept)
                        sink[kept:kept + take] = memoryview(data)[:take]
                        kept += take
                    chunk = b""
                    if dec.eof:
                        chunk = dec.unused_data
                        if chunk:  # concatenated member (e.g. from pigz / cat)
                            dec = isal_zlib.decompressobj(wbits=31)
        if not dec.eof:
            return "truncated gzip stream (file ends before the compressed data does)"
        if limit is not None and kept < limit:
            return f"the decompressed data holds {kept} bytes, fewer than the {limit} the header announces"
    except (zlib.error, isal_zlib.error) as err:
        return f"corrupt gzip stream ({err})"
    return None


def _nifti_header(path: Path):
    """The raw NIfTI header (``check=False``: ITK and nibabel's default load both replace a zero ``pixdim`` by 1)."""
    import gzip

    import nibabel as nib  # only for NIfTI; header only, no pixel data

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            return nib.Nifti1Header.from_fileobj(fh, check=False)
    except Exception as err:  # nibabel/gzip raise several types for malformed headers
        raise ImageReadError(path, f"malformed NIfTI header ({err})") from None


def _check_nifti(path: Path):
    """Check the NIfTI header's spacing and transforms; return ``(voxels are floating point, NiftiGeometry)``."""
    header = _nifti_header(path)
    zooms = [float(z) for z in header["pixdim"][1:4]]
    if any(not (math.isfinite(z) and z > 0.0) for z in zooms):
        raise ImageReadError(path, f"invalid voxel spacing {tuple(zooms)} mm in the NIfTI header "
                                   f"(zero, negative or NaN); every spacing must be finite and > 0")
    try:
        geometry = nifti_geometry(header)
    except GeometryError as err:
        raise ImageReadError(path, f"NIfTI geometry: {err}") from None
    return header.get_data_dtype().kind == "f", geometry


def _nifti_voxels(path: Path) -> np.ndarray:
    """A float NIfTI's stored voxels (nibabel): ITK's NIfTI reader turns NaN into 0 (SimpleITK 2.5.7), so the
    non-finite rule must look at these."""
    import nibabel as nib

    return np.asanyarray(nib.load(os.fspath(path)).dataobj)


_FLOAT_PIXEL_IDS = frozenset({sitk.sitkFloat32, sitk.sitkFloat64})
_HEADER_LIMIT = 1 << 16


def _check_spacing_declared(path: Path) -> None:
    """Reject an NRRD without ``space directions`` or a MetaImage without ``ElementSpacing``: ITK
    reads either as 1 mm voxels (an NRRD with only ``spacings`` has no physical orientation either), a default
    that must never reach an output."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEADER_LIMIT)
    except OSError as err:
        raise ImageReadError(path, f"cannot read ({err.strerror or err})") from None
    lower = path.name.lower()
    if not head.startswith(b"NRRD") and b"NDims" not in head[:4096]:
        return  # not a recognisable NRRD/MetaImage header (empty, garbage): the reader's own error says so
    if lower.endswith((".nrrd", ".nhdr")):
        text = head.split(b"\n\n", 1)[0].decode("latin-1")
        keys = {ln.split(":", 1)[0].strip().lower() for ln in text.splitlines() if ":" in ln}
        if "space directions" not in keys:
            raise ImageReadError(path, "NRRD header has no 'space directions' field: voxel size and orientation "
                                       "unknown (ITK would assume 1 mm and identity)")
        values = [ln.split(":", 1)[1] for ln in text.splitlines() if ln.lower().startswith("space directions:")]
        if values and "none" in values[0].lower() and values[0].lower().count("(") < 3:
            raise ImageReadError(path, f"NRRD 'space directions' {values[0].strip()!r} lacks a vector for a "
                                       f"spatial axis: voxel size unknown")
    else:
        text = head.split(b"ElementDataFile", 1)[0].decode("latin-1")
        keys = {ln.split("=", 1)[0].strip() for ln in text.splitlines() if "=" in ln}
        if "ElementSpacing" not in keys:
            raise ImageReadError(path, "MetaImage header has no ElementSpacing: voxel size unknown (ITK would assume "
                                       "1 mm)")


def _read_file(path: Path, rules: ValidationRules, require_ct: bool) -> sitk.Image:
    reader = sitk.ImageFileReader()
    reader.SetFileName(os.fspath(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as err:
        if path.name.lower().endswith((".nrrd", ".nhdr", ".mha", ".mhd")):
            _check_spacing_declared(path)  # a missing spacing field is the clearer reason when it is one
        # a damaged .gz often fails already here; its gzip diagnosis is clearer than ITK's "no ImageIO"
        problem = _gzip_problem(path) if path.name.lower().endswith(".gz") and rules.verify_gzip else None
        raise ImageReadError(path, problem or f"unreadable or unsupported image file: {_itk_reason(err)}") from None
    size, spacing = list(reader.GetSize()), list(reader.GetSpacing())
    squeeze = len(size) == 4 and size[3] == 1
    if squeeze:
        size, spacing = size[:3], spacing[:3]
    lower = path.name.lower()
    if lower.endswith((".nrrd", ".nhdr", ".mha", ".mhd")):
        _check_spacing_declared(path)
    elif reader.HasMetaDataKey(_SERIES_UID_TAG) or is_dicom_file(path):
        _check_dicom_file(path, _dicom_header(path))
    check_geometry(path, size, spacing, rules)
    if reader.GetNumberOfComponents() != 1:
        raise ImageReadError(path, f"{reader.GetNumberOfComponents()} components per voxel (colour or vector "
                                   f"image); a scalar CT is required")
    if require_ct:
        check_modality(path, _modality(reader))
    float_nifti, geometry = _check_nifti(path) if lower.endswith((".nii", ".nii.gz")) else (False, None)
    if geometry is not None:  # the standard's spacing can differ from pixdim, which ITK used above
        check_geometry(path, size, geometry.spacing, rules)
    if lower.endswith(".gz") and rules.verify_gzip:
        # Decompress once, verifying CRC and length: ITK inflating the file again would double the read's largest cost.
        image, read_error = _read_verified_gzip(path, reader, squeeze)
    else:
        image, read_error = _execute(reader)
    if read_error is not None:
        raise ImageReadError(path, f"pixel data unreadable: {read_error}")
    if float_nifti:  # ITK's NIfTI reader has turned NaN into 0: count on the stored voxels
        check_finite_voxels(path, _nifti_voxels(path))
    elif image.GetPixelID() in _FLOAT_PIXEL_IDS:
        check_finite_voxels(path, sitk.GetArrayViewFromImage(image))
    if squeeze:
        image = image[:, :, :, 0]
    if geometry is not None:
        image.SetOrigin(geometry.origin)
        image.SetSpacing(geometry.spacing)
        image.SetDirection(geometry.direction)
        image.SetMetaData(_GEOMETRY_KEY, f"nifti {geometry.rule}")
    elif reader.HasMetaDataKey(_SERIES_UID_TAG):
        image.SetMetaData(_GEOMETRY_KEY, "dicom")
        image.SetMetaData(_SERIES_KEY, reader.GetMetaData(_SERIES_UID_TAG).strip().rstrip("\0"))
    return image


_RAW_PIXEL_IDS = {np.dtype(t): i for t, i in ((np.int8, sitk.sitkInt8), (np.uint8, sitk.sitkUInt8),
                                                 (np.int16, sitk.sitkInt16), (np.uint16, sitk.sitkUInt16),
                                                 (np.int32, sitk.sitkInt32), (np.uint32, sitk.sitkUInt32),
                                                 (np.float32, sitk.sitkFloat32), (np.float64, sitk.sitkFloat64))}


def _read_verified_gzip(path: Path, reader, squeeze: bool) -> tuple[sitk.Image | None, str | None]:
    """Read a ``.gz`` image whose gzip stream is fully verified, decompressing it once.

    A plain 3-D NIfTI whose stored voxels are what ITK returns (no ``scl_slope``/``scl_inter`` rescale, no 4-D
    squeeze) is built from the verified bytes and the geometry ITK read from the header (``reader`` after
    ``ReadImageInformation``), so the result equals ``reader.Execute()``. Anything else is decompressed to a temporary
    uncompressed copy that ITK reads. Raises :class:`ImageReadError` for a broken stream.
    """
    header = _nifti_header(path) if path.name.lower().endswith(".nii.gz") else None
    direct = header is not None and not squeeze and _itk_returns_stored_voxels(header, reader)
    if direct:
        dtype = header.get_data_dtype()
        offset = int(header["vox_offset"])
        nbytes = offset + int(np.prod(header.get_data_shape()[:3])) * dtype.itemsize
        buffer = bytearray(nbytes)
        problem = _gzip_problem(path, buffer)
        if problem:
            raise ImageReadError(path, problem)
        nx, ny, nz = (int(v) for v in reader.GetSize()[:3])
        voxels = np.frombuffer(buffer, dtype=dtype, count=nx * ny * nz, offset=offset).reshape(nz, ny, nx)
        image = sitk.GetImageFromArray(voxels.astype(dtype.newbyteorder("="), copy=False))
        image.SetOrigin(reader.GetOrigin())
        image.SetSpacing(reader.GetSpacing())
        image.SetDirection(reader.GetDirection())
        return image, None
    with tempfile.TemporaryDirectory(prefix="smart-gunzip-") as tmp:
        plain = Path(tmp) / path.name[:-3]
        with open(plain, "wb") as out:
            problem = _gzip_problem(path, out)
        if problem:
            raise ImageReadError(path, problem)
        reader.SetFileName(os.fspath(plain))
        return _execute(reader)


def _itk_returns_stored_voxels(header, reader) -> bool:
    """True when ITK hands back a 3-D NIfTI's stored voxels unchanged (type kept, no rescale)."""
    slope, inter = float(header["scl_slope"]), float(header["scl_inter"])
    unscaled = (slope in (0.0, 1.0) or not math.isfinite(slope)) and (inter == 0.0 or not math.isfinite(inter))
    dtype = header.get_data_dtype()
    return (unscaled and len(reader.GetSize()) == 3 and len(header.get_data_shape()) == 3
            and _RAW_PIXEL_IDS.get(dtype.newbyteorder("=")) == reader.GetPixelID())


def _execute(reader) -> tuple[sitk.Image | None, str | None]:
    try:
        return reader.Execute(), None
    except RuntimeError as err:
        return None, _itk_reason(err)


def _modality(reader) -> str | None:
    """The modality a header records: DICOM (0008,0060) or MetaImage ``Modality``; None when absent."""
    for key in (_MODALITY_TAG, "Modality"):
        if reader.HasMetaDataKey(key):
            value = reader.GetMetaData(key).strip()
            if value:
                return value
    return None


# SOP classes whose objects are CT images a series can be read from; a secondary capture (a screenshot, often with
# Modality CT), dose reports, RT objects and every other class are set aside when a folder is read as a CT.
_CT_IMAGE_CLASSES = frozenset({"1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1",
                               "1.2.840.10008.5.1.4.1.1.2.2"})
# DICOM per-slice geometry: every slice must carry these, with one value per series (ImagePositionPatient: three
# numbers per slice, checked against the others by check_slice_positions).
_SLICE_TAGS = {"Rows": "(0028,0010)", "Columns": "(0028,0011)", "PixelSpacing": "(0028,0030)",
               "ImageOrientationPatient": "(0020,0037)", "ImagePositionPatient": "(0020,0032)"}


def _dicom_header(path: Path):
    """A DICOM file's header (pydicom; the pixel data's value deferred, its length and position kept), or an
    :class:`ImageReadError` saying why it is not a readable DICOM file."""
    import pydicom

    try:
        size = path.stat().st_size
        if size == 0:
            raise ImageReadError(path, "empty file (0 bytes)")
        return pydicom.dcmread(path, defer_size=1024, force=not is_dicom_file(path))
    except ImageReadError:
        raise
    except OSError as err:
        raise ImageReadError(path, f"cannot read ({err.strerror or err})") from None
    except Exception as err:  # pydicom raises InvalidDicomError, EOFError, ValueError, struct.error, ...
        raise ImageReadError(path, f"not a readable DICOM file ({type(err).__name__}: {str(err)[:120]})") from None


def _pixel_data_problem(path: Path, ds) -> str | None:
    """Why ``ds``'s pixel data cannot be complete (None when it can): no pixel data, or a file that ends before the
    pixel data element's declared length does (a partial download). Encapsulated (compressed) data has no declared
    length; its frames are checked by the decoder."""
    element = None
    for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
        if keyword in ds:
            element = ds.get_item(keyword)
            break
    if element is None:
        return "no pixel data (not an image: a report, structure set or presentation object)"
    length, tell = getattr(element, "length", None), getattr(element, "value_tell", None)
    if length is None or tell is None or length == 0xFFFFFFFF:
        return None
    size = path.stat().st_size
    if tell + length > size:
        return f"truncated: the pixel data needs {tell + length} bytes, the file holds {size}"
    return None


def _functional_group_spacing(ds):
    """PixelSpacing of an enhanced multi-frame object (shared or first per-frame PixelMeasuresSequence), or None."""
    for group in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        try:
            return ds[group][0].PixelMeasuresSequence[0].PixelSpacing
        except (KeyError, AttributeError, IndexError):
            continue
    return None


def _check_dicom_file(path: Path, ds) -> None:
    """The checks of one DICOM image file: complete pixel data, a PixelSpacing (top level or, for an enhanced
    multi-frame object, in its functional groups: ITK would put 1 mm in its place) and a photometric
    interpretation whose stored values are the ones the rescale turns into HU."""
    problem = _pixel_data_problem(path, ds)
    if problem:
        raise ImageReadError(path, problem)
    if "PixelSpacing" not in ds and _functional_group_spacing(ds) is None:
        raise ImageReadError(path, "no PixelSpacing (0028,0030): pixel size unknown (ITK would assume 1 mm)")
    _check_photometric(path, [ds.get("PhotometricInterpretation", "")])


def _check_photometric(path, values) -> None:
    # MONOCHROME1 only tells a viewer to show low values bright; HU come from the rescale either way. ITK's GDCM
    # reader inverts the stored values of a MONOCHROME1 slice instead (measured, SimpleITK 2.5.7: a series of
    # -1007..707 HU read back as 62780..64494), so such a series would get wrong HU: rejected, naming the tag.
    if any(str(v).strip().upper() == "MONOCHROME1" for v in values):
        raise ImageReadError(path, "PhotometricInterpretation (0028,0004) is MONOCHROME1: the reader would invert "
                                   "the stored values (display inversion), not give HU; convert to MONOCHROME2")


def _read_dicom_series(folder: Path, series_uid: str | None, rules: ValidationRules,
                       require_ct: bool) -> sitk.Image:
    files_by_uid, non_images = _series_files(folder)
    uid, choice = _choose_series(folder, files_by_uid, series_uid, require_ct)
    if non_images:
        choice += f"; non-image objects: {', '.join(non_images)}"
    files = [f for f, _ in files_by_uid[uid]]
    headers = [ds for _, ds in files_by_uid[uid]]
    if len(files) == 1:  # one file: a single slice or an enhanced multi-frame object; the file reader handles both
        try:
            image = _read_file(Path(files[0]), rules, require_ct)
        except ImageReadError as err:
            raise ImageReadError(folder, f"{Path(err.path).name}: {err.reason}") from None
        image.SetMetaData(_SERIES_KEY, uid)
        image.SetMetaData(_GEOMETRY_KEY, "dicom")
        image.SetMetaData(_CHOICE_KEY, choice)
        return image

    names = [Path(f).name for f in files]
    values = {tag: [_header_value(folder, name, ds, tag) for name, ds in zip(names, headers)] for tag in _SLICE_TAGS}
    check_slice_geometry(folder, names, {f"{tag} {num}": values[tag] for tag, num in _SLICE_TAGS.items()})
    _check_photometric(folder, [ds.get("PhotometricInterpretation", "") for ds in headers])
    rows, cols = int(values["Rows"][0]), int(values["Columns"][0])
    row_mm, col_mm = (float(v) for v in values["PixelSpacing"][0])
    # z spacing is not known before the positions are read; 1.0 stands in, the positions are checked below.
    check_geometry(folder, (cols, rows, len(files)), (col_mm, row_mm, 1.0), rules)
    if require_ct:
        check_modality(folder, str(headers[0].get("Modality", "")) or None)

    positions = [[float(v) for v in p] for p in values["ImagePositionPatient"]]
    orientation = [float(v) for v in values["ImageOrientationPatient"][0]]
    normal = np.cross(orientation[:3], orientation[3:])
    # checked before ITK reads the pixels: cheaper, and ITK's own "non uniform sampling" warning never fires
    gap = check_slice_positions(folder, positions, normal, rules)

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    # Float output: each slice is then converted from its own stored type with its own rescale. Left to itself the
    # series reader takes the pixel type from the first slice (e.g. uint16 when its intercept is 0) and casts every
    # other slice to it, so negative HU of slices with intercept -1024 wrap around to ~64 500 (SimpleITK 2.5.7).
    # float32 holds every 16-bit stored value times a decimal slope to well under 0.01 HU.
    reader.SetOutputPixelType(sitk.sitkFloat32)
    try:
        with itk_warnings_off():
            image = reader.Execute()
    except RuntimeError as err:
        raise ImageReadError(folder, f"DICOM series unreadable: {_unreadable_slice(files) or _itk_reason(err)}") \
            from None
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ImageReadError(folder, "colour DICOM series; a scalar CT is required")
    # Every value from the checked headers, none from ITK's defaults: in-plane from PixelSpacing (row spacing is
    # the y step), z from the median gap of the checked positions (ITK uses the first two slices only).
    image.SetSpacing((col_mm, row_mm, gap))
    check_geometry(folder, image.GetSize(), image.GetSpacing(), rules)
    image.SetMetaData(_SERIES_KEY, uid)
    image.SetMetaData(_GEOMETRY_KEY, "dicom")
    image.SetMetaData(_CHOICE_KEY, choice)
    return image


def _header_value(folder: Path, name: str, ds, keyword: str):
    """``ds.<keyword>`` or None when absent; a value pydicom cannot decode is a rejection naming file and tag."""
    try:
        return ds.get(keyword)
    except Exception as err:  # pydicom's value conversion raises ValueError, TypeError, ...
        raise ImageReadError(folder, f"{name}: {keyword} {_SLICE_TAGS.get(keyword, '')} cannot be decoded "
                                     f"({type(err).__name__}: {str(err)[:100]})") from None


def _series_files(folder: Path) -> tuple[dict[str, list[tuple[str, object]]], list[str]]:
    """``{SeriesInstanceUID: [(file, header)]}`` of the DICOM image files directly inside ``folder`` and the
    non-image DICOM objects beside them (``"dose.dcm (SR)"``, recorded with the series choice); rejects the folder,
    naming each file, when a file that may be a slice (not :func:`is_not_slice`) is in no series: the series would
    silently lose that slice."""
    scan = scan_dicom_folder(folder)
    if scan.problems:
        stray = scan.problems
        shown = "; ".join(stray[:5]) + (f"; ... {len(stray) - 5} more" if len(stray) > 5 else "")
        raise ImageReadError(folder, f"{len(stray)} file(s) in the DICOM folder cannot be read as slices: {shown}. "
                                     f"Repair or remove them (a series read without them would miss slices)")
    if not scan.series and scan.non_images:
        raise ImageReadError(folder, f"no DICOM image series in the folder, only non-image objects: "
                                     f"{', '.join(scan.non_images)}")
    if not scan.series:
        raise ImageReadError(folder, "no DICOM series found in the folder (files must be directly inside it)")
    return scan.series, scan.non_images


def _classify(path: Path) -> tuple[object | None, str]:
    """``(header, SeriesInstanceUID)`` for a DICOM image with its whole pixel data and a series, else ``(None,
    why)`` in words; ``"non-image object: <modality>"`` for a DICOM object that is not an image (a dose report,
    structure set, presentation state: its SOP class is not an image storage class and it holds no pixel data),
    which is never a slice. A file of an image class without pixel data is a truncated slice. A file without the
    DICM marker (no Part 10 preamble) counts as DICOM only when its header parses and names a series."""
    if path.is_symlink() and not path.exists():
        return None, "dangling symbolic link"
    try:
        size = path.stat().st_size
        marked = is_dicom_file(path)
        ds = _dicom_header(path)  # raises for an empty or unreadable file
        uid = str(ds.get("SeriesInstanceUID", "") or "").strip()
    except ImageReadError as err:
        return None, err.reason
    except OSError as err:
        return None, f"cannot read ({err.strerror or err})"
    except Exception:  # pydicom decodes the value lazily; an undecodable UID is no series
        uid = ""
    if not marked and not uid:
        return None, f"not a DICOM file: {size} bytes without the DICM marker"
    problem = _pixel_data_problem(path, ds)
    if problem and problem.startswith("no pixel data") and not _is_image_class(ds):
        return None, f"non-image object: {str(ds.get('Modality', '')).strip() or 'no modality'}"
    if problem:
        return None, problem if problem.startswith("truncated") else \
            f"truncated: {problem.split(' (')[0]} in an image file"
    if not uid:
        return None, "a DICOM image in no series (no SeriesInstanceUID)"
    return ds, uid


def _is_image_class(ds) -> bool:
    """True when the object's SOP class (file meta or dataset) is an image storage class (its registered name says
    "Image Storage"), or when no SOP class is recorded (assume the worst: a slice)."""
    from pydicom.uid import UID

    sop = ds.get("SOPClassUID") or getattr(ds.get("file_meta"), "MediaStorageSOPClassUID", None)
    return sop is None or "Image Storage" in UID(str(sop)).name


def _unreadable_slice(files: Sequence[str]) -> str | None:
    """After the series reader failed: the first file that cannot be read on its own, with ITK's reason."""
    for f in files:
        one = sitk.ImageFileReader()
        one.SetFileName(f)
        try:
            one.Execute()
        except RuntimeError as err:
            return f"{Path(f).name}: {_itk_reason(err)}"
    return None


def _choose_series(folder: Path, files_by_uid: dict[str, list[tuple[str, object]]], series_uid: str | None,
                   require_ct: bool) -> tuple[str, str]:
    """The series to read and how it was chosen (recorded as ``series_choice`` in the manifest).

    ``series_uid`` if given. Otherwise objects that are not CT images are set aside — another modality (PET of a
    PET/CT, MR), a non-image or non-CT SOP class (dose report, secondary capture, RT object) and localizers — and
    the one CT image series left is read; of several, the one with the most files, which must be unique (two
    reconstructions of one scan with equal slice counts are an ambiguity a person resolves, per folder, with a
    ``series_uid`` column in a CSV listing). With ``require_ct`` False (label maps) only localizers are set aside.
    """
    ids = sorted(files_by_uid)
    if series_uid is not None:
        if series_uid not in files_by_uid:
            raise ImageReadError(folder, f"series {series_uid!r} not in the folder (found: {', '.join(ids)})")
        return series_uid, f"given series_uid ({len(ids)} series in the folder)"
    kinds = {uid: _series_kind(files_by_uid[uid][0][1], require_ct) for uid in ids}
    volumes = [u for u in ids if kinds[u] == ""]
    aside = [f"{u} ({len(files_by_uid[u])} file(s), {kinds[u]})" for u in ids if kinds[u]]
    note = f"; set aside: {', '.join(aside)}" if aside else ""
    if not volumes:
        if len(ids) == 1:
            raise ImageReadError(folder, kinds[ids[0]])
        raise ImageReadError(folder, f"no CT image series in the folder (found: {', '.join(aside)})")
    if len(volumes) == 1:
        return volumes[0], "only CT image series" + note
    most = max(len(files_by_uid[u]) for u in volumes)
    top = [u for u in volumes if len(files_by_uid[u]) == most]
    if len(top) > 1:
        raise ImageReadError(folder, f"ambiguous: {len(top)} series with {most} files each ({', '.join(top)}); "
                                     f"choose one for this folder with a series_uid column in a CSV listing (or "
                                     f"--series-uid when it is the only folder), or move the others out")
    others = ", ".join(f"{u} ({len(files_by_uid[u])} files)" for u in volumes if u != top[0])
    return top[0], f"most files of {len(volumes)} CT image series ({most}; others: {others})" + note


def _series_kind(ds, require_ct: bool) -> str:
    """Why a series is set aside ("" when it is a candidate volume), from its first file's header."""
    def tag(keyword):
        try:
            value = ds.get(keyword)
        except Exception:  # undecodable: the geometry checks name what matters
            return ""
        if value is None:
            return ""
        if isinstance(value, str) or not isinstance(value, Iterable):
            return str(value).strip()
        return "\\".join(str(v).strip() for v in value)  # a multi-valued element such as ImageType

    if "LOCALIZER" in tag("ImageType").upper():
        return "localizer"
    if not require_ct:
        return ""
    modality, sop_class = tag("Modality").upper(), tag("SOPClassUID")
    if modality and modality not in ("CT", "OT"):
        return f"modality {modality!r} is not CT"
    if sop_class and sop_class not in _CT_IMAGE_CLASSES:
        return f"SOP class {sop_class} is not a CT image"
    return ""


class itk_warnings_off:
    """Context: ITK's global warning display off (restored after). ITK prints its warnings to stderr without the
    file they concern; every condition they report is checked and named by this module instead."""

    def __enter__(self):
        self._before = sitk.ProcessObject.GetGlobalWarningDisplay()
        sitk.ProcessObject.SetGlobalWarningDisplay(False)
        return self

    def __exit__(self, *exc):
        sitk.ProcessObject.SetGlobalWarningDisplay(self._before)
        return False
