"""The colour signature: three grids from one box-filtered copy of the picture."""

import numpy as np
from conftest import photo
from PIL import Image

from dedup_cli.fingerprint.signature import GRID_SIDES, SIGNATURE_BYTES, colour_signature, grid


def signature(image) -> np.ndarray:
    return np.frombuffer(colour_signature(image), dtype=np.uint8)[None, :]


def test_grids_are_cell_means_of_the_picture():
    image = photo(5).resize((320, 256))
    found = signature(image)
    assert found.shape[1] == SIGNATURE_BYTES
    for part, side in ((0, GRID_SIDES[0]), (1, GRID_SIDES[1])):
        direct = np.asarray(image.convert("YCbCr").resize((side, side), Image.Resampling.BOX), dtype=np.float64)
        # Means of means of a 32x32 box copy: within rounding of a direct box resize.
        assert np.abs(grid(found, part).reshape(side, side, 3) - direct).max() <= 1.0


def test_the_centre_grid_lines_up_with_a_slightly_cropped_copy():
    image = photo(6).resize((640, 512))
    margin_x, margin_y = image.width // 32, image.height // 32
    cropped = image.crop((margin_x, margin_y, image.width - margin_x, image.height - margin_y))
    centre = grid(signature(image), 2)
    cropped_detail = grid(signature(cropped), 1)
    uncropped_detail = grid(signature(image), 1)
    assert np.abs(centre - cropped_detail).mean() < 0.5 * np.abs(uncropped_detail - cropped_detail).mean()


def test_a_grey_picture_has_neutral_chroma():
    found = signature(photo(7).convert("L"))
    for part in range(len(GRID_SIDES)):
        assert np.all(grid(found, part)[..., 1:] == 128)


def test_a_zoomed_signature_stands_for_the_cropped_copy():
    from dedup_cli.fingerprint.signature import zoomed

    picture = photo(3, (320, 240))
    whole = np.frombuffer(colour_signature(picture), dtype=np.uint8)[None]
    cropped = np.frombuffer(colour_signature(picture.crop((32, 24, 288, 216))), dtype=np.uint8)[None].astype(int)
    window = zoomed(whole, np.array([0.8]), np.array([0.8])).astype(int)
    assert np.abs(window - cropped).mean() < 0.3 * np.abs(whole.astype(int) - cropped).mean()
    unchanged = zoomed(whole, np.array([1.0]), np.array([1.0])).astype(int)
    assert np.abs(unchanged - whole).mean() < 1.5  # the whole window: the signature again
