"""Issue #20 items 1-3: every file of a DICOM series is read or named, per-slice geometry is checked (never a reader's
default), MONOCHROME1 and mixed-modality folders. Inputs from tests/clinical_generators.py (pydicom, explicit numbers);
each example of the issue has its right value here, with at least one more example of the same kind."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from pydicom.uid import generate_uid

from clinical_generators import (UID_ROOT, ct_hu_volume, damage_file, edit_header, edit_slices, write_ct_series,
                                 write_dose_report, write_rtstruct)

from smart.data.io import image_provenance, read_image, scan_dicom_folder
from smart.data.resample_batch import resample_batch
from smart.data.validation import ImageReadError, ValidationRules

SC_STORAGE = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture Image Storage


def _reason(path, **kw) -> str:
    with pytest.raises(ImageReadError) as info:
        read_image(path, **kw)
    assert info.value.path == os.fspath(path)
    return info.value.reason


def _series(tmp_path, n=12, name="ct", spacing=(0.7, 0.7, 2.0), **kw):
    write_ct_series(tmp_path / name, ct_hu_volume((n, 10, 12)), spacing=spacing, **kw)
    return tmp_path / name


def _batch(inputs, out):
    counts = resample_batch(inputs, out, out / "manifest.csv", out / "rejected.csv", spacing=2.0,
                            rules=ValidationRules(), progress=False)
    return (counts, pd.read_csv(out / "manifest.csv", keep_default_na=False),
            pd.read_csv(out / "rejected.csv", keep_default_na=False))


# ------------------------------------------------------------------ item 1: every file of a series is read or named


def test_issue_example_last_slice_empty_is_rejected_naming_the_file(tmp_path):
    """The issue's example: 12 slices, the last cut to 0 bytes -> rejected naming ct011.dcm (was: 11 slices, ok)."""
    folder = _series(tmp_path)
    damage_file(folder / "ct011.dcm", "empty")
    counts, manifest, rejected = _batch([folder], tmp_path / "out")
    assert (counts["resampled"], list(manifest.status)) == (0, ["rejected"])
    assert list(rejected.file) == [os.fspath(folder)]
    assert rejected.reason.item() == ("1 file(s) in the DICOM folder cannot be read as slices: ct011.dcm (empty file "
                                      "(0 bytes)). Repair or remove them (a series read without them would miss "
                                      "slices)")
    assert not (tmp_path / "out" / "ct.nii.gz").exists()


@pytest.mark.parametrize("name", ["ct000.dcm", "ct005.dcm", "ct011.dcm"])
@pytest.mark.parametrize("how, words", [
    ("empty", "ct{k}.dcm (empty file (0 bytes))"),
    ("cut:1", "ct{k}.dcm (truncated: the pixel data needs {need} bytes, the file holds {have})"),
    ("cut:100", "ct{k}.dcm (truncated: the pixel data needs {need} bytes, the file holds {have})"),
    ("text", "ct{k}.dcm (not a DICOM file: 37 bytes without the DICM marker)"),
])
def test_damaged_slice_anywhere_is_named_never_a_spacing_error(tmp_path, name, how, words):
    """Same kind, first/middle/last file, four damages: the reason names the file (mid-series damage used to read
    as "non-uniform slice spacing")."""
    folder = _series(tmp_path)
    need = (folder / name).stat().st_size
    damage_file(folder / name, how)
    have = (folder / name).stat().st_size
    reason = _reason(folder)
    assert words.format(k=name[2:5], need=need, have=have) in reason
    assert "non-uniform" not in reason


def test_dangling_link_in_a_series_folder_is_named(tmp_path):
    folder = _series(tmp_path, n=4)
    os.symlink("elsewhere/ct004.dcm", folder / "ct004.dcm")
    assert _reason(folder).startswith("1 file(s) in the DICOM folder cannot be read as slices: ct004.dcm (dangling "
                                      "symbolic link)")


def test_documented_non_slice_files_are_ignored(tmp_path):
    """DICOMDIR, AppleDouble ._*, .DS_Store, Thumbs.db and documents beside the slices are never part of the image."""
    folder = _series(tmp_path, n=6)
    for junk in ("DICOMDIR", "._ct000.dcm", ".DS_Store", "Thumbs.db", "desktop.ini", "README.txt", "report.pdf"):
        (folder / junk).write_bytes(b"\x00\x05Mac OS X  not an image")
    assert read_image(folder).GetSize() == (12, 10, 6)


# ------------------------------------------------------------------ item 2: per-slice geometry, never a default


def test_issue_example_no_pixel_spacing_is_rejected_not_1mm(tmp_path):
    """The issue's example: 0.7 mm pixels without PixelSpacing were resampled as 1 mm."""
    folder = _series(tmp_path, n=10)
    edit_slices(folder, lambda ds: delattr(ds, "PixelSpacing"))
    assert _reason(folder) == ("PixelSpacing (0028,0030) missing on 10 of 10 slice file(s) (ct000.dcm, ct001.dcm, "
                               "ct002.dcm, ct003.dcm, ct004.dcm, ct005.dcm, ...): the series geometry is unknown (a "
                               "reader would put its default in place)")


def test_issue_example_first_slice_spacing_differs(tmp_path):
    """The issue's example: slice 0 says 0.7 mm, the other nine 0.9 mm (was: resampled at 0.7 mm)."""
    folder = _series(tmp_path, n=10, spacing=(0.9, 0.9, 2.0))
    edit_slices(folder, lambda ds: setattr(ds, "PixelSpacing", ["0.7", "0.7"]), ["ct000.dcm"])
    assert _reason(folder) == ("PixelSpacing (0028,0030) differs between slices: 0.7\\0.7 in ct000.dcm, 0.9\\0.9 in "
                               "9 file(s) (ct001.dcm, ct002.dcm, ct003.dcm, ct004.dcm, ct005.dcm, ct006.dcm, ...)")


def _drop(keyword):
    return lambda ds: delattr(ds, keyword)


def _other_size(ds):
    ds.Rows, ds.Columns = 12, 10
    ds.PixelData = np.zeros((12, 10), np.int16).tobytes()


@pytest.mark.parametrize("edit, names, reason", [
    (_drop("PixelSpacing"), ["ct004.dcm"], "PixelSpacing (0028,0030) missing on 1 of 8 slice file(s) (ct004.dcm)"),
    (_drop("ImageOrientationPatient"), ["ct007.dcm"],
     "ImageOrientationPatient (0020,0037) missing on 1 of 8 slice file(s) (ct007.dcm)"),
    (_drop("ImagePositionPatient"), ["ct002.dcm", "ct003.dcm"],
     "ImagePositionPatient (0020,0032) missing on 2 of 8 slice file(s) (ct002.dcm, ct003.dcm)"),
    (lambda ds: setattr(ds, "ImageOrientationPatient", ["1", "0", "0", "0", "0.8", "-0.6"]), ["ct006.dcm"],
     "ImageOrientationPatient (0020,0037) differs between slices: 1\\0\\0\\0\\1\\0 in ct000.dcm, "
     "1\\0\\0\\0\\0.8\\-0.6 in 1 file(s) (ct006.dcm)"),
    (_other_size, ["ct005.dcm"],
     "Rows (0028,0010) differs between slices: 10 in ct000.dcm, 12 in 1 file(s) (ct005.dcm)"),
])
def test_per_slice_geometry_missing_or_differing(tmp_path, edit, names, reason):
    folder = _series(tmp_path, n=8)
    edit_slices(folder, edit, names)
    assert _reason(folder).startswith(reason)


def test_checked_spacing_is_the_header_value(tmp_path):
    """A good series gets its spacing from PixelSpacing (row spacing = y step) and the positions, not from ITK."""
    folder = _series(tmp_path, n=6, spacing=(0.6, 0.8, 2.5))
    assert read_image(folder).GetSpacing() == pytest.approx((0.6, 0.8, 2.5), abs=1e-6)


def test_single_dicom_file_without_pixel_spacing(tmp_path):
    folder = _series(tmp_path, n=2)
    edit_slices(folder, _drop("PixelSpacing"), ["ct000.dcm"])
    assert _reason(folder / "ct000.dcm", rules=ValidationRules(min_axis_size=1)) == (
        "no PixelSpacing (0028,0030): pixel size unknown (ITK would assume 1 mm)")


@pytest.mark.parametrize("suffix, drop, add, reason", [
    (".nrrd", ["space directions"], [], "NRRD header has no 'space directions' field"),
    (".nrrd", ["space directions", "space origin", "space:"], ["spacings: 0.7 0.7 2"],
     "NRRD header has no 'space directions' field"),
    (".mha", ["ElementSpacing"], [], "MetaImage header has no ElementSpacing: voxel size unknown"),
])
def test_header_formats_without_spacing(tmp_path, suffix, drop, add, reason):
    """NRRD and MetaImage: a header without its spacing field is read by ITK as 1 mm voxels; rejected instead."""
    path = tmp_path / f"ct{suffix}"
    image = sitk.GetImageFromArray(ct_hu_volume((6, 10, 12)))
    image.SetSpacing((0.7, 0.7, 2.0))
    sitk.WriteImage(image, os.fspath(path), useCompression=False)
    assert read_image(path).GetSpacing() == pytest.approx((0.7, 0.7, 2.0))
    edit_header(path, drop, add)
    assert _reason(path).startswith(reason)


# ------------------------------------------------------------------ item 3: photometric interpretation, modalities


def test_monochrome1_series_and_file_rejected_naming_the_tag(tmp_path):
    folder = _series(tmp_path, n=4, photometric="MONOCHROME1")
    words = "PhotometricInterpretation (0028,0004) is MONOCHROME1"
    assert _reason(folder).startswith(words)
    assert _reason(folder / "ct000.dcm", rules=ValidationRules(min_axis_size=1)).startswith(words)
    # one MONOCHROME1 slice among MONOCHROME2 ones is the same kind
    edit_slices(folder, lambda ds: setattr(ds, "PhotometricInterpretation", "MONOCHROME2"),
                ["ct000.dcm", "ct001.dcm", "ct002.dcm"])
    assert _reason(folder).startswith(words)


def test_pet_ct_folder_reads_its_ct_and_records_the_choice(tmp_path):
    """PET/CT export: the PET series has more files than the CT (the old largest-series rule read the PET)."""
    folder = tmp_path / "petct"
    ct = write_ct_series(folder, ct_hu_volume((6, 10, 12)), prefix="ct")
    pet_uid = generate_uid(UID_ROOT)
    write_ct_series(folder, np.abs(ct_hu_volume((9, 10, 12))), prefix="pt", modality="PT", series_uid=pet_uid,
                    intercepts=[0.0] * 9, sop_class_uid="1.2.840.10008.5.1.4.1.1.128")
    image = read_image(folder)
    assert image.GetSize() == (12, 10, 6)
    provenance = image_provenance(image)
    assert provenance["series_uid"] == ct[0].SeriesInstanceUID
    assert provenance["series_choice"] == (f"only CT image series; set aside: {pet_uid} (9 file(s), modality 'PT' is "
                                           f"not CT)")


def test_ct_with_dose_report_secondary_capture_and_rtstruct(tmp_path):
    folder = tmp_path / "export"
    ct = write_ct_series(folder, ct_hu_volume((5, 10, 12)), prefix="ct")
    # a screenshot series with Modality CT and more files than the CT: excluded by its SOP class
    write_ct_series(folder, ct_hu_volume((7, 10, 12)), prefix="sc", sop_class_uid=SC_STORAGE)
    write_dose_report(folder / "dose.dcm", ct[0])
    write_rtstruct(folder / "rs.dcm", ct, {"GTV": []})
    image = read_image(folder)
    assert image.GetSize() == (12, 10, 5) and image_provenance(image)["series_uid"] == ct[0].SeriesInstanceUID
    choice = image_provenance(image)["series_choice"]
    assert choice.startswith("only CT image series; set aside: ")
    assert f"(7 file(s), SOP class {SC_STORAGE} is not a CT image)" in choice
    assert choice.endswith("; non-image objects: dose.dcm (SR), rs.dcm (RTSTRUCT)")


def test_two_ct_series_chosen_per_folder_by_the_listing(tmp_path):
    """Two folders, each with two CT series of equal size: ambiguous alone; a listing's series_uid column chooses per
    folder (one --series-uid could not), and the manifest records the choice."""
    chosen = {}
    for patient, keep in (("p1", 0), ("p2", 1)):
        uids = [generate_uid(UID_ROOT) for _ in range(2)]
        for k, uid in enumerate(uids):
            write_ct_series(tmp_path / patient / "CT", ct_hu_volume((4, 10, 12), seed=k), series_uid=uid,
                            prefix=f"s{k}_")
        chosen[patient] = uids[keep]
    assert _reason(tmp_path / "p1" / "CT").startswith("ambiguous: 2 series with 4 files each")
    pd.DataFrame({"path": ["p1/CT", "p2/CT"], "series_uid": [chosen["p1"], chosen["p2"]]}).to_csv(
        tmp_path / "cases.csv", index=False)
    counts, manifest, rejected = _batch([tmp_path / "cases.csv"], tmp_path / "out")
    assert rejected.empty and counts["resampled"] == 2
    assert list(manifest.series_uid) == [chosen["p1"], chosen["p2"]]
    assert set(manifest.series_choice) == {"given series_uid (2 series in the folder)"}


def test_choice_between_ct_series_is_recorded(tmp_path):
    folder = tmp_path / "ct"
    big = write_ct_series(folder, ct_hu_volume((6, 10, 12)), prefix="a")
    small = write_ct_series(folder, ct_hu_volume((3, 10, 12)), prefix="b")
    image = read_image(folder)
    assert image_provenance(image)["series_uid"] == big[0].SeriesInstanceUID
    assert image_provenance(image)["series_choice"] == (
        f"most files of 2 CT image series (6; others: {small[0].SeriesInstanceUID} (3 files))")


def test_folder_without_ct_lists_what_it_holds(tmp_path):
    folder = tmp_path / "pet"
    uid = generate_uid(UID_ROOT)
    write_ct_series(folder, np.abs(ct_hu_volume((3, 10, 12))), modality="PT", series_uid=uid, intercepts=[0.0] * 3)
    assert _reason(folder) == "modality 'PT' is not CT"
    sc_uid = generate_uid(UID_ROOT)
    write_ct_series(folder, ct_hu_volume((2, 10, 12)), prefix="sc", series_uid=sc_uid, sop_class_uid=SC_STORAGE)
    found = {sc_uid: f"{sc_uid} (2 file(s), SOP class {SC_STORAGE} is not a CT image)",
             uid: f"{uid} (3 file(s), modality 'PT' is not CT)"}  # listed in UID order
    assert _reason(folder) == f"no CT image series in the folder (found: {', '.join(found[u] for u in sorted(found))})"


def test_malformed_pixel_spacing_on_one_slice(tmp_path):
    """A PixelSpacing whose bytes are not numbers (a damaged export) is named, not parsed as a default."""
    folder = _series(tmp_path, n=4, spacing=(1.0, 1.0, 2.0))
    data = (folder / "ct001.dcm").read_bytes()
    at = data.index(b"\x28\x00\x30\x00DS") + 8  # explicit VR little endian: tag, VR, 2-byte length, value "1\1 "
    assert data[at:at + 4] == b"1\\1 "
    (folder / "ct001.dcm").write_bytes(data[:at] + b"a\\1 " + data[at + 4:])
    assert _reason(folder) == "PixelSpacing (0028,0030) of ct001.dcm is not numeric: ['a', '1']"


# ------------------------------------------------------------------ real files: entries the folder scan cannot open
# pydicom's CT5N series (5 real CT slices) copied into a patient tree. GDCM's own folder scan (GetGDCMSeriesIDs)
# split it into five one-file cases, or blamed healthy slices for "no SeriesInstanceUID", as soon as a dangling
# link sat beside the slices; the series is now grouped from the files' own headers.

CT5N_UID = "1.3.6.1.4.1.5962.1.1.0.0.0.1194734704.16302.0.6"
# CT5N's files by ImagePositionPatient z (-1.2375, 1.2625, 3.7625, 6.2625, 8.7625 mm; axial, normal +z).
CT5N_BY_POSITION = ["3353", "3023", "2693", "2392", "2062"]


def _copy_ct5n(ct5n_dir, folder, suffix):
    folder.mkdir(parents=True)
    for f in sorted(ct5n_dir.iterdir()):
        (folder / (f.name + suffix)).write_bytes(f.read_bytes())
    return folder


def _rows(manifest, rejected):
    return (list(zip(manifest.case_id, manifest.status)), list(zip(rejected.file, rejected.reason)))


def _only_named(name, why):
    return (f"1 file(s) in the DICOM folder cannot be read as slices: {name} ({why}). Repair or remove them (a series "
            f"read without them would miss slices)")


@pytest.mark.parametrize("suffix, link", [(".dcm", "broken.dcm"), ("", "9999"), ("", "ct9.dcm")])
def test_real_series_beside_a_dangling_link_is_one_case_naming_only_the_link(tmp_path, ct5n_dir, suffix, link):
    folder = _copy_ct5n(ct5n_dir, tmp_path / "tree" / "a" / "CT", suffix)
    os.symlink(tmp_path / "nowhere" / "x.dcm", folder / link)
    scan = scan_dicom_folder(folder)
    assert list(scan.series) == [CT5N_UID]
    assert [os.path.basename(f) for f, _ in scan.series[CT5N_UID]] == [n + suffix for n in CT5N_BY_POSITION]
    assert (scan.problems, scan.non_images) == ([f"{link} (dangling symbolic link)"], [])
    counts, manifest, rejected = _batch([tmp_path / "tree"], tmp_path / "out1")
    named = _only_named(link, "dangling symbolic link")
    assert _rows(manifest, rejected) == ([("a__CT", "rejected")], [(os.fspath(folder), named)])
    os.remove(folder / link)
    # the order GDCM gives the same files once nothing confuses its scan
    assert [os.path.basename(f) for f, _ in scan_dicom_folder(folder).series[CT5N_UID]] == \
        [os.path.basename(f) for f in sitk.ImageSeriesReader.GetGDCMSeriesFileNames(os.fspath(folder), CT5N_UID)]
    counts, manifest, rejected = _batch([tmp_path / "tree"], tmp_path / "out2")
    assert _rows(manifest, rejected) == ([("a__CT", "ok")], [])
    assert (manifest.orig_size.item(), manifest.series_uid.item()) == ("16x16x5", CT5N_UID)
    assert manifest.orig_spacing.item() == "0.488281x0.488281x2.5"


def test_case_id_of_a_single_file_folder_does_not_depend_on_a_dangling_link(tmp_path, ct_small_path):
    """CT_small.dcm alone in p2/CT: the case is p2__CT with the link beside it (was p2__CT__CT_small) and after."""
    folder = tmp_path / "tree" / "p2" / "CT"
    folder.mkdir(parents=True)
    (folder / "CT_small.dcm").write_bytes(ct_small_path.read_bytes())
    os.symlink(tmp_path / "nowhere.dcm", folder / "gone.dcm")
    _, manifest, rejected = _batch([tmp_path / "tree"], tmp_path / "out1")
    assert _rows(manifest, rejected) == ([("p2__CT", "rejected")],
                                         [(os.fspath(folder), _only_named("gone.dcm", "dangling symbolic link"))])
    os.remove(folder / "gone.dcm")
    _, manifest, rejected = _batch([tmp_path / "tree"], tmp_path / "out2")
    assert _rows(manifest, rejected) == ([("p2__CT", "rejected")], [(os.fspath(folder), "CT_small.dcm: a single "
                                          "slice: size (128, 128, 1), need at least 2 voxels along every axis")])


def test_folder_holding_only_an_empty_dcm_is_its_own_case_naming_the_file(tmp_path, ct_small_path):
    folder = tmp_path / "tree" / "p5" / "CT"
    folder.mkdir(parents=True)
    (folder / "only.dcm").write_bytes(b"")
    _, manifest, rejected = _batch([tmp_path / "tree"], tmp_path / "out")
    assert _rows(manifest, rejected) == ([("p5__CT", "rejected")],
                                         [(os.fspath(folder), _only_named("only.dcm", "empty file (0 bytes)"))])


def test_cli_stderr_holds_only_our_lines_for_a_folder_with_a_dangling_link(tmp_path, ct5n_dir):
    """ITK/GDCM printed multi-line "WARNING: ... No Series were found" blocks naming no folder."""
    import subprocess
    import sys

    for patient, suffix, link in (("a", ".dcm", "broken.dcm"), ("b", "", "9999"), ("c", "", None)):
        folder = _copy_ct5n(ct5n_dir, tmp_path / "tree" / patient / "CT", suffix)
        if link:
            os.symlink(tmp_path / "nowhere", folder / link)
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "smart", "resample", "--input", os.fspath(tmp_path / "tree"),
                           "--out-dir", os.fspath(out), "--manifest", os.fspath(out / "manifest.csv"),
                           "--rejected", os.fspath(out / "rejected.csv")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if not ln.startswith("resample: case ")]  # progress lines
    tree = tmp_path / "tree"
    why = "dangling symbolic link"
    assert lines == [f"smart resample: rejected {tree / 'a' / 'CT'}: {_only_named('broken.dcm', why)}",
                     f"smart resample: rejected {tree / 'b' / 'CT'}: {_only_named('9999', why)}",
                     f"smart resample: 1 resampled, 0 unchanged (skipped), 2 rejected -> {out / 'manifest.csv'}"]
    manifest = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    assert list(zip(manifest.case_id, manifest.status)) == [("a__CT", "rejected"), ("b__CT", "rejected"),
                                                            ("c__CT", "ok")]


@pytest.mark.parametrize("suffix, link", [(".dcm", "broken.dcm"), ("", "9999")])
def test_memory_estimate_and_regrid_see_every_slice_beside_a_dangling_link(tmp_path, ct5n_dir, suffix, link):
    """The header-only memory estimate and LIDC's re-gridding reader group the folder the same way as read_image
    (GDCM's scan found no series, or 2 of the 5 files, here)."""
    from smart.data.resample_memory import header_voxels
    from smart.data.slice_regrid import read_series_on_regular_grid

    folder = _copy_ct5n(ct5n_dir, tmp_path / "CT", suffix)
    os.symlink(tmp_path / "nowhere", folder / link)
    assert header_voxels(folder) == 5 * 16 * 16
    image = read_series_on_regular_grid(folder, CT5N_UID)
    assert image.GetSize() == (16, 16, 5)
    assert image.GetOrigin() == (-72.199997, -143.0, -1.2375)  # the lowest slice's ImagePositionPatient


def test_folder_of_only_non_image_objects_says_what_it_holds(tmp_path):
    """A dose report and a structure set without their CT: the folder is a DICOM folder (its files are .dcm), read as
    one case, and the reason lists what it holds."""
    ct = write_ct_series(tmp_path / "ct", ct_hu_volume((3, 10, 12)))
    folder = tmp_path / "objects"
    folder.mkdir()
    write_dose_report(folder / "dose.dcm", ct[0])
    write_rtstruct(folder / "rs.dcm", ct, {"GTV": []})
    assert _reason(folder) == "no DICOM image series in the folder, only non-image objects: dose.dcm (SR), rs.dcm " \
                              "(RTSTRUCT)"
