import numpy as np
import pytest
import SimpleITK as sitk

from smart.commands.synth import write_ct
from smart.data.synthetic.fields import item_rng
from smart.data.synthetic.phantom import PhantomSpec, Tissue, generate_phantom, sample_spec

SMALL = PhantomSpec(shape=(40, 64, 64), spacing=(2.0, 2.0, 3.0))

# clinical HU bands the median of each tissue must fall in
HU_BANDS = {
    Tissue.AIR: (-1010, -990),
    Tissue.FAT: (-130, -70),
    Tissue.BODY_SOFT: (20, 70),
    Tissue.LUNG: (-900, -780),
    Tissue.AIRWAY: (-1024, -900),
    Tissue.VESSEL: (30, 260),
    Tissue.HEART: (20, 70),
    Tissue.LIVER: (40, 140),
    Tissue.KIDNEY: (20, 220),
    Tissue.BONE_CANCELLOUS: (150, 400),
    Tissue.BONE_CORTICAL: (400, 1000),
}


@pytest.fixture(scope="module")
def default_phantom():
    return generate_phantom(item_rng(0, "ct", 0))


def test_same_seed_identical_different_seed_different():
    a, la, _ = generate_phantom(item_rng(5, "ct", 0), SMALL)
    b, lb, _ = generate_phantom(item_rng(5, "ct", 0), SMALL)
    c, _, _ = generate_phantom(item_rng(6, "ct", 0), SMALL)
    assert a.dtype == np.int16 and a.shape == SMALL.shape
    assert np.array_equal(a, b) and np.array_equal(la, lb)
    assert not np.array_equal(a, c)


def test_hu_ranges_per_tissue(default_phantom):
    hu, labels, _ = default_phantom
    present = {Tissue(v) for v in np.unique(labels)}
    for needed in (Tissue.LUNG, Tissue.AIRWAY, Tissue.VESSEL, Tissue.HEART, Tissue.LIVER, Tissue.BONE_CORTICAL,
                   Tissue.BONE_CANCELLOUS, Tissue.FAT, Tissue.BODY_SOFT):
        assert needed in present, f"{needed.name} missing from the default phantom"
    for tissue, (lo, hi) in HU_BANDS.items():
        if tissue in present:
            median = float(np.median(hu[labels == tissue]))
            assert lo <= median <= hi, f"{tissue.name}: median {median} HU outside [{lo}, {hi}]"
    # lungs have texture (not a flat value) and bone reaches cortical densities
    assert hu[labels == Tissue.LUNG].std() > 15
    assert np.percentile(hu[labels == Tissue.BONE_CORTICAL], 95) > 800


def test_default_grid_survives_resampling_to_64_cubed():
    """Every sampled spec is anisotropic and still >= 64 voxels per axis after resampling to 2 mm."""
    for i in range(200):
        spec = sample_spec(item_rng(0, "spec-test", i))
        assert 0.8 <= spec.spacing[0] == spec.spacing[1] <= 0.9
        assert spec.spacing[2] in (1.25, 1.5, 2.0, 2.5)
        extent_xyz = np.array(spec.shape[::-1]) * np.array(spec.spacing)
        assert (extent_xyz / 2.0 >= 64).all(), (spec, extent_xyz)


def test_write_ct_writes_readable_anisotropic_nifti(tmp_path, default_phantom):
    (path,) = write_ct(tmp_path, seed=0, count=1)
    assert path.name == "synct_0000.nii.gz"
    image = sitk.ReadImage(str(path))
    hu, _, spec = default_phantom
    assert image.GetPixelID() == sitk.sitkInt16
    assert np.allclose(image.GetSpacing(), spec.spacing)
    assert image.GetSize() == spec.shape[::-1]
    assert np.array_equal(sitk.GetArrayFromImage(image), hu)  # same seed -> identical array, through the file
    assert not list(tmp_path.glob(".*tmp*"))  # atomic write left no temporary file


def test_spec_validation():
    with pytest.raises(ValueError, match="shape"):
        PhantomSpec(shape=(8, 64, 64))
    with pytest.raises(ValueError, match="spacing"):
        PhantomSpec(spacing=(1.0, 0.0, 1.0))
