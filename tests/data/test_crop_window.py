"""The one crop rule (docs/data_preparation.md "Every crop must hold image"): the centre inside the image and at
least MIN_IN_IMAGE_FRACTION of the crop's voxels inside it."""

import numpy as np
import pytest

from smart.data.crop_window import (MIN_IN_IMAGE_FRACTION, CropHoldsNoImage, check_crop_holds_image, extract,
                                    in_image_fraction)


def test_in_image_fraction_is_the_product_of_the_overlaps():
    # z: 2 of 4 voxels inside, y: all 10, x: 5 of 10 -> 1/2 * 1 * 1/2
    assert in_image_fraction((10, 10, 10), (-2, 0, 5), (4, 10, 10)) == 0.25
    assert in_image_fraction((10, 10, 10), (0, 0, 0), (10, 10, 10)) == 1.0
    assert in_image_fraction((10, 10, 10), (10, 0, 0), (4, 4, 4)) == 0.0  # starts past the end
    assert in_image_fraction((3, 40, 40), (-14, 0, 0), (32, 32, 32)) == 3 / 32  # image thinner than the crop


def test_centre_outside_the_image_is_refused_whatever_the_fraction():
    # the centre half a voxel past the last slice: outside, although the crop still holds half image
    with pytest.raises(CropHoldsNoImage,
                       match=r"crop centre lies outside the image \(voxel index \(9\.6, 5\.0, 5\.0\)"):
        check_crop_holds_image((10, 10, 10), (2, 0, 0), (16, 10, 10), centre_index=(9.6, 5.0, 5.0))
    with pytest.raises(CropHoldsNoImage, match="outside"):
        check_crop_holds_image((10, 10, 10), (0, 0, 0), (4, 4, 4), centre_index=(2.0, -0.6, 2.0))
    with pytest.raises(CropHoldsNoImage, match="outside"):
        check_crop_holds_image((10, 10, 10), (0, 0, 0), (4, 4, 4), centre_index=(np.nan, 2.0, 2.0))
    # on the last voxel's far edge (n - 0.5) the centre still belongs to that voxel
    assert check_crop_holds_image((10, 10, 10), (5, 3, 3), (8, 4, 4), centre_index=(9.5, 5.0, 5.0)) == 5 / 8


def test_fraction_threshold_is_inclusive_and_documented():
    assert MIN_IN_IMAGE_FRACTION == 0.25
    assert check_crop_holds_image((8, 8, 8), (-4, -4, 0), (8, 8, 8)) == 0.25  # centre on a corner of two axes
    with pytest.raises(CropHoldsNoImage, match=r"only 12\.5% of the crop \(8, 8, 8\) lies inside the image "
                                               r"\(8, 8, 8\) \(minimum 25%\)"):
        check_crop_holds_image((8, 8, 8), (-4, -4, -4), (8, 8, 8))  # centre on a corner of three axes
    assert check_crop_holds_image((8, 8, 8), (-4, -4, -4), (8, 8, 8), min_fraction=0.1) == 0.125
    with pytest.raises(ValueError, match="min_fraction"):
        check_crop_holds_image((8, 8, 8), (0, 0, 0), (8, 8, 8), min_fraction=1.5)


def test_extract_pads_with_fill_and_a_disjoint_box_is_all_fill():
    volume = np.arange(27, dtype=np.int16).reshape(3, 3, 3)
    out = extract(volume, (-1, 0, 1), (3, 3, 3), -1000)
    assert (out[0] == -1000).all() and (out[:, :, 2] == -1000).all()
    np.testing.assert_array_equal(out[1:, :, :2], volume[:2, :, 1:])
    assert (extract(volume, (5, 0, 0), (2, 2, 2), -7) == -7).all()
