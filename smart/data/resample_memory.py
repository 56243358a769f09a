"""The peak memory of resampling one CT, estimated from its header before any pixel is read.

A job that runs out of memory is killed by the scheduler (SLURM's ``--mem`` = the rule's ``mem_mb``) with no line
naming the CT; a shard of thousands of CTs then fails on the one that does not fit. So ``smart resample --mem-mb``
reads each source's header (voxel count: ITK's image information for a file, ``files x rows x columns`` of the series
a DICOM folder would give) and refuses a CT whose estimate exceeds the budget, with a rejection naming the CT, its
size and the estimate (docs/data_preparation.md "Resampling knows its memory").

The estimate is a line measured on our own reader, ``python -m smart resample`` on synthetic 512 x 512 DICOM series of
300, 1,000 and 1,500 slices (``python -m smart.bench.resample_memory``, BENCHMARKS.md): peak RSS =
:data:`READER_BASE_MB` + :data:`READER_BYTES_PER_VOXEL` x voxels, within 4 MiB at every point: 12 bytes per voxel
is three times a float32 volume; the base is the process with its imports. The factor belongs to the reader: re-measure
it when :mod:`smart.data.io` changes how it reads.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from smart.data.validation import ImageReadError

__all__ = ["READER_BASE_MB", "READER_BYTES_PER_VOXEL", "estimate_peak_mb", "header_voxels", "check_memory"]

# Measured 2026-12-07 (SimpleITK 2.5.7, 2-core VM; BENCHMARKS.md "Resample peak memory"): 300 / 1,000 / 1,500 slices
# of 512^2 peaked at 1,323 / 3,427 / 4,927 MiB; least squares gives 422.8 MiB + 12.01 B/voxel.
READER_BASE_MB = 423.0
READER_BYTES_PER_VOXEL = 12.0


def estimate_peak_mb(voxels: int) -> float:
    """Peak resident memory (MiB) of ``smart resample`` on one CT of ``voxels`` voxels (module notes)."""
    return READER_BASE_MB + READER_BYTES_PER_VOXEL * int(voxels) / 2**20


def header_voxels(source: str | os.PathLike, series_uid: str | None = None) -> int | None:
    """Voxel count of ``source`` from headers only, or None when the headers cannot tell (the reader then rejects
    the source with its own reason). A DICOM folder counts the series ``series_uid`` or, without one, its largest
    series (what the reader picks, or more): files x rows x columns x frames of its first file."""
    import SimpleITK as sitk

    path = Path(source)
    try:
        if path.is_dir():
            from smart.data.io import scan_dicom_folder  # its own headers, not GDCM's folder scan

            series = [[f for f, _ in members] for uid, members in scan_dicom_folder(path).series.items()
                      if series_uid is None or uid == series_uid]
            if not series:
                return None
            files = max(series, key=len)
            first = files[0]
        else:
            files, first = [os.fspath(path)], os.fspath(path)
        reader = sitk.ImageFileReader()
        reader.SetFileName(first)
        reader.ReadImageInformation()
    except (RuntimeError, ImageReadError):
        return None
    return len(files) * math.prod(int(s) for s in reader.GetSize())


def check_memory(source: str | os.PathLike, mem_mb: float, series_uid: str | None = None) -> float | None:
    """Raise :class:`ImageReadError` naming ``source`` when its estimated peak exceeds ``mem_mb`` MiB; return the
    estimate (None when the header cannot be read)."""
    voxels = header_voxels(source, series_uid)
    if voxels is None:
        return None
    estimate = estimate_peak_mb(voxels)
    if estimate > mem_mb:
        raise ImageReadError(source, f"estimated peak memory {estimate:.0f} MB for {voxels} voxels "
                                     f"({READER_BASE_MB:g} MB + {READER_BYTES_PER_VOXEL:g} B per voxel, the measured "
                                     f"factor of the reader) exceeds mem_mb={mem_mb:g}; give the job more memory "
                                     f"(resources.resample.mem_mb) or leave this CT out")
    return estimate
