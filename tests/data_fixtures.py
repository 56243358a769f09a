"""Shared data fixtures: pydicom's real CT test files (read from disk only, never fetched), a small HU phantom and
one bad input per rejection kind."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

_CT5N_PARTS = ("dicomdirtests", "98892001", "CT5N")


def _pydicom_test_files() -> Path | None:
    try:
        import pydicom
    except ImportError:
        return None
    path = Path(os.path.dirname(pydicom.__file__)) / "data" / "test_files"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def ct5n_dir() -> Path:
    """The 5-slice CT5N series (16x16 thumbnails, 0.488 mm pixels, 2.5 mm slices) shipped inside pydicom."""
    root = _pydicom_test_files()
    folder = root.joinpath(*_CT5N_PARTS) if root else None
    if folder is None or len([f for f in folder.iterdir() if f.is_file()]) != 5:
        pytest.skip("pydicom's local test series dicomdirtests/98892001/CT5N is not installed")
    return folder


@pytest.fixture(scope="session")
def ct_small_path() -> Path:
    """pydicom's single-slice CT_small.dcm (128x128, 0.661 mm pixels, 5 mm slice)."""
    root = _pydicom_test_files()
    path = root / "CT_small.dcm" if root else None
    if path is None or not path.is_file():
        pytest.skip("pydicom's local test file CT_small.dcm is not installed (not fetched from the network)")
    return path


@pytest.fixture
def ct5n_copy(ct5n_dir, tmp_path) -> Path:
    """A writable copy of CT5N, for tests that delete or edit slices."""
    dest = tmp_path / "CT5N"
    shutil.copytree(ct5n_dir, dest)
    return dest


def phantom_hu(shape_zyx=(12, 14, 16), seed: int = 0) -> np.ndarray:
    """int16 HU volume: air outside, a soft-tissue ellipsoid (40 HU) holding two lungs (-800 HU), mild noise."""
    z, y, x = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape_zyx], indexing="ij")
    vol = np.full(shape_zyx, -1000.0)
    vol[(x / 0.9) ** 2 + (y / 0.7) ** 2 + (z / 1.2) ** 2 <= 1] = 40.0
    for cx in (-0.4, 0.4):
        vol[((x - cx) / 0.3) ** 2 + (y / 0.4) ** 2 + (z / 0.9) ** 2 <= 1] = -800.0
    vol += np.random.default_rng(seed).normal(0, 10, shape_zyx)
    return np.rint(vol).astype(np.int16)


@pytest.fixture(scope="session")
def phantom():
    """The :func:`phantom_hu` generator (test modules are not a package, so they take it as a fixture)."""
    return phantom_hu


def to_image(array_zyx: np.ndarray, spacing=(0.7, 0.8, 1.5), origin=(-10.0, 20.0, 5.0), direction=None) -> sitk.Image:
    img = sitk.GetImageFromArray(array_zyx)
    img.SetSpacing(spacing)
    img.SetOrigin(origin)
    if direction is not None:
        img.SetDirection(direction)
    return img


@pytest.fixture
def write_ct(tmp_path):
    """``write_ct(name, array=None, **geometry) -> Path``: write a phantom (or ``array``) with SimpleITK."""

    def _write(name: str, array: np.ndarray | None = None, **geometry) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sitk.WriteImage(to_image(phantom_hu() if array is None else array, **geometry), os.fspath(path))
        return path

    return _write


def write_bad_inputs(tmp_path, ct5n_dir, phantom):
    """Write one file (or folder) per rejection kind into ``tmp_path``; returns ``{name: phrase its reason must contain}``."""
    import pydicom

    out = {}
    good = tmp_path / "good.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(phantom()), os.fspath(good))
    data = good.read_bytes()
    (tmp_path / "truncated.nii.gz").write_bytes(data[: len(data) // 2])
    out["truncated.nii.gz"] = "truncated gzip stream"
    raw = gzip.decompress(data)
    bad = bytearray(gzip.compress(raw))
    bad[-8] ^= 0xFF
    (tmp_path / "crc.nii.gz").write_bytes(bytes(bad))
    out["crc.nii.gz"] = "corrupt gzip stream"
    sitk.WriteImage(sitk.GetImageFromArray(phantom()[0]), os.fspath(tmp_path / "flat2d.nii.gz"))
    out["flat2d.nii.gz"] = "a 2-D image"
    four = sitk.JoinSeries([sitk.GetImageFromArray(phantom())] * 2)
    sitk.WriteImage(four, os.fspath(tmp_path / "dyn4d.nii.gz"))
    out["dyn4d.nii.gz"] = "a 4-D image"
    header = ("ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = False\n"
              "ElementSpacing = 0 1 1\nDimSize = 16 14 12\nElementType = MET_SHORT\nElementDataFile = LOCAL\n")
    (tmp_path / "zerosp.mha").write_bytes(header.encode() + phantom().astype("<i2").tobytes())
    out["zerosp.mha"] = "invalid voxel spacing"
    nan = phantom().astype(np.float32)
    nan[3, 3, 3] = np.nan
    sitk.WriteImage(sitk.GetImageFromArray(nan), os.fspath(tmp_path / "nanvox.nii.gz"))
    out["nanvox.nii.gz"] = "1 non-finite voxel"
    sitk.WriteImage(sitk.GetImageFromArray(np.full((5, 6, 7), 40, np.int16)), os.fspath(tmp_path / "const.nii.gz"))
    out["const.nii.gz"] = "constant image"
    stored = (phantom() + 1024).clip(0).astype(np.uint16)  # raw stored values, rescale intercept not applied
    sitk.WriteImage(sitk.GetImageFromArray(stored), os.fspath(tmp_path / "raw.nrrd"))
    out["raw.nrrd"] = "no air"
    gap = tmp_path / "gapseries"
    shutil.copytree(ct5n_dir, gap)
    (gap / "2693").unlink()  # the middle slice (z = 3.76 mm)
    out["gapseries"] = "non-uniform slice spacing"
    mr = tmp_path / "mrseries"
    shutil.copytree(ct5n_dir, mr)
    for f in mr.iterdir():
        ds = pydicom.dcmread(f)
        ds.Modality = "MR"
        ds.save_as(f)
    out["mrseries"] = "modality 'MR' is not CT"
    return out
