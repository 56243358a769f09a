"""Geometry that readers disagree on: the NIfTI qform/sform rule and orientation labels (docs/data_preparation.md).

NIfTI-1 stores two transforms. The standard (nifti1.h) and nibabel, FSL, MRtrix, AFNI use the **sform when
sform_code > 0**, else the qform; ITK (SimpleITK 2.5.7) uses the qform unless sform_code is 1 (scanner), and takes the
spacing from ``pixdim`` even when the sform's column lengths differ. One file can therefore sit at two places (or two
scales) depending on the reader. :func:`nifti_geometry` applies the standard's rule to every NIfTI this package reads
(:func:`smart.data.io.read_image` overwrites ITK's geometry with it) and says which transform it used, for the
manifest. A sheared sform cannot be represented by an ITK image (origin + spacing + orthonormal direction): it is
rejected rather than silently dropped (ITK only prints a warning).

All coordinates here are ITK/DICOM LPS (x to the patient's left, y posterior, z superior); NIfTI affines are RAS, so
their first two rows change sign.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["NiftiGeometry", "nifti_geometry", "orientation_label", "SHEAR_TOLERANCE"]

# |cos| between two affine columns above which the grid counts as sheared (1e-4 rad ~ 0.006 degree: float32
# round-off of a converter's rotation is ~1e-7, a real shear is percent-level).
SHEAR_TOLERANCE = 1e-4
# qform and sform count as the same when every affine entry agrees to this (mm, or unit direction cosines).
AGREEMENT_TOLERANCE_MM = 1e-3

_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


@dataclass(frozen=True)
class NiftiGeometry:
    """Where a NIfTI's voxels are, by the NIfTI standard's rule.

    Attributes:
        origin: LPS position (mm) of voxel (0, 0, 0)'s centre.
        spacing: voxel size (mm) along i, j, k (the affine's column lengths).
        direction: 3x3 row-major direction cosines (LPS), columns = the i, j, k axes.
        rule: ``"sform"`` or ``"qform"`` — the transform used; with ``"; qform differs"`` appended when the sform was
            used and the qform (also valid) disagreed with it, so the manifest shows the file was ambiguous.
    """

    origin: tuple[float, float, float]
    spacing: tuple[float, float, float]
    direction: tuple[float, ...]
    rule: str


class GeometryError(ValueError):
    """A NIfTI header whose geometry cannot be used as is (no transform, shear); the message says why."""


def nifti_geometry(header) -> NiftiGeometry:
    """Geometry of a ``nibabel.Nifti1Header`` by the standard's rule: sform if sform_code > 0, else qform if
    qform_code > 0; raises :class:`GeometryError` when neither is set (orientation unknown) or the sform is sheared.
    """
    s_code, q_code = int(header["sform_code"]), int(header["qform_code"])
    if s_code > 0:
        affine, rule = np.asarray(header.get_sform(), dtype=float), "sform"
        if q_code > 0:
            qform = np.asarray(header.get_qform(), dtype=float)
            if not np.allclose(qform, affine, rtol=0.0, atol=AGREEMENT_TOLERANCE_MM):
                rule = "sform; qform differs"
    elif q_code > 0:
        affine, rule = np.asarray(header.get_qform(), dtype=float), "qform"
    else:
        raise GeometryError("neither sform nor qform is set (both codes 0): the orientation is unknown")
    if not np.all(np.isfinite(affine)):
        raise GeometryError(f"the {rule.split(';')[0]} holds non-finite values")
    linear = affine[:3, :3]
    spacing = np.linalg.norm(linear, axis=0)
    if np.any(spacing <= 0.0):
        raise GeometryError(f"the {rule.split(';')[0]} has a zero-length axis (column lengths {tuple(spacing)})")
    unit = linear / spacing
    cosines = np.abs(unit.T @ unit - np.eye(3))
    if float(cosines.max()) > SHEAR_TOLERANCE:
        raise GeometryError(f"the {rule.split(';')[0]} is sheared (axes not perpendicular, |cos| up to "
                            f"{float(cosines.max()):.3g}); an image grid cannot represent it — resample it with a "
                            f"shear-aware tool first")
    direction = _RAS_TO_LPS @ unit
    origin = _RAS_TO_LPS @ affine[:3, 3]
    return NiftiGeometry(origin=tuple(float(v) for v in origin), spacing=tuple(float(v) for v in spacing),
                         direction=tuple(float(v) for v in direction.ravel()), rule=rule)


def orientation_label(direction) -> str:
    """Three-letter label of the patient direction each index axis points to (DICOM LPS letters), e.g. ``"LPS"``
    for an identity direction, ``"RAS"`` for diag(-1, -1, 1); prefixed ``"oblique "`` when an axis is not aligned
    with the patient axes (off by more than 1e-3 in a cosine) — the label then names the nearest axes."""
    d = np.asarray(direction, dtype=float).reshape(3, 3)
    letters = (("L", "R"), ("P", "A"), ("S", "I"))
    out = []
    oblique = False
    for axis in range(3):
        column = d[:, axis]
        k = int(np.argmax(np.abs(column)))
        oblique |= bool(np.max(np.abs(np.delete(column, k))) > 1e-3)
        out.append(letters[k][0] if column[k] > 0 else letters[k][1])
    label = "".join(out)
    return f"oblique {label}" if oblique else label
