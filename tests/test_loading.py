"""load_image: EXIF orientation, failure reasons, colour modes, reduced decoding, size limit."""

import imagehash
import numpy as np
import pytest
from conftest import photo
from PIL import ExifTags, Image

import dedup_cli.media.loading
from dedup_cli.errors import UnreadableImage
from dedup_cli.fingerprint.hashing import HashSettings, hash_file
from dedup_cli.media.loading import load_image
from dedup_cli.search.index import hamming

PHASH = HashSettings("phash", 8)
# Pixels as stored in the file for each EXIF orientation, given the upright picture.
STORED_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def packed(record) -> np.ndarray:
    assert record.error == ""
    return np.frombuffer(record.packed_bits, dtype=np.uint8)


def save_with_orientation(image: Image.Image, path, orientation: int) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    image.save(path, quality=95, exif=exif)


# --- EXIF orientation ---------------------------------------------------------------


@pytest.mark.parametrize("orientation", sorted(STORED_FOR_ORIENTATION))
def test_exif_orientation_is_applied_to_pixels_and_size(tmp_path, orientation):
    upright = photo(7, size=(320, 200))
    upright.save(tmp_path / "upright.jpg", quality=95)
    stored = upright.transpose(STORED_FOR_ORIENTATION[orientation])
    rotated_path = tmp_path / f"orientation{orientation}.jpg"
    save_with_orientation(stored, rotated_path, orientation)
    assert Image.open(rotated_path).getexif()[ExifTags.Base.Orientation] == orientation

    loaded = load_image(rotated_path)
    assert (loaded.width, loaded.height) == (320, 200)
    assert loaded.image.size == (320, 200)

    original = packed(hash_file(str(tmp_path / "upright.jpg"), PHASH))
    oriented = packed(hash_file(str(rotated_path), PHASH))
    assert int(hamming(original, oriented)) <= 4

    # The same file hashed as stored (orientation ignored) is far away: orientation matters.
    ignored = imagehash.phash(Image.open(rotated_path))
    assert ignored - imagehash.phash(Image.open(tmp_path / "upright.jpg")) > 10


def test_exif_orientation_reports_upright_size_when_decoded_reduced(tmp_path):
    path = tmp_path / "portrait.jpg"
    save_with_orientation(photo(3, size=(1600, 1200)).transpose(Image.Transpose.ROTATE_90), path, 6)
    loaded = load_image(path, min_side=128)
    assert (loaded.width, loaded.height) == (1600, 1200)
    assert loaded.image.width > loaded.image.height


# --- failure reasons ----------------------------------------------------------------


def reason_for(path) -> str:
    with pytest.raises(UnreadableImage) as info:
        load_image(path)
    assert str(path) in str(info.value)
    assert info.value.path == str(path)
    return info.value.reason


def test_zero_byte_file_is_reported_empty(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    assert "empty" in reason_for(path)


def test_truncated_jpeg_is_reported_truncated(tmp_path):
    whole = tmp_path / "whole.jpg"
    photo(1, size=(640, 480)).save(whole, quality=90)
    data = whole.read_bytes()
    path = tmp_path / "half.jpg"
    path.write_bytes(data[: len(data) // 2])
    assert "truncated" in reason_for(path)


def test_text_file_with_image_extension_is_reported_not_an_image(tmp_path):
    path = tmp_path / "x.png"
    path.write_text("hello, I am not a picture\n")
    assert "not an image" in reason_for(path)


# --- colour modes -------------------------------------------------------------------


def rgb(size=(64, 48)) -> Image.Image:
    return photo(5, size=size)


def paletted_with_transparency() -> Image.Image:
    image = rgb().convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    image.info["transparency"] = 0
    return image


MODE_CASES = {
    "1": (lambda: rgb().convert("1"), "png"),
    "P": (lambda: rgb().convert("P", palette=Image.Palette.ADAPTIVE, colors=32), "png"),
    "P-transparency": (paletted_with_transparency, "png"),
    "LA": (lambda: rgb().convert("LA"), "png"),
    "RGBA": (lambda: rgb().convert("RGBA"), "png"),
    "CMYK": (lambda: rgb().convert("CMYK"), "jpg"),
    "I;16": (lambda: Image.fromarray(np.full((48, 64), 1000, dtype=np.uint16)), "png"),
    "F": (lambda: Image.fromarray(np.full((48, 64), 100.0, dtype=np.float32)), "tif"),
}


@pytest.mark.parametrize("case", sorted(MODE_CASES))
def test_colour_mode_loads_as_grey_with_its_size(tmp_path, case):
    make, extension = MODE_CASES[case]
    path = tmp_path / f"image.{extension}"
    make().save(path)
    with Image.open(path) as stored:
        # Pillow < 11 opens 16-bit grey PNGs as 'I'; either way they must load.
        assert stored.mode in ({"I;16", "I"} if case == "I;16" else {case.split("-")[0]})
        assert ("transparency" in stored.info) == case.endswith("transparency")
    loaded = load_image(path)
    assert loaded.image.mode == "L"
    assert loaded.image.size == (64, 48)
    assert (loaded.width, loaded.height) == (64, 48)


def test_rgb_mode_can_be_requested(tmp_path):
    path = tmp_path / "rgba.png"
    rgb().convert("RGBA").save(path)
    assert load_image(path, mode="RGB").image.mode == "RGB"


def test_sixteen_bit_mid_grey_maps_to_mid_grey(tmp_path):
    path = tmp_path / "grey16.png"
    Image.fromarray(np.full((48, 64), 32768, dtype=np.uint16)).save(path)
    values = np.asarray(load_image(path).image)
    assert abs(int(values.min()) - 128) <= 1 and abs(int(values.max()) - 128) <= 1


def test_float_tiff_keeps_its_values(tmp_path):
    path = tmp_path / "float.tif"
    Image.fromarray(np.full((48, 64), 100.0, dtype=np.float32)).save(path)
    assert np.all(np.asarray(load_image(path).image) == 100)


def test_animated_gif_loads_its_first_frame(tmp_path):
    path = tmp_path / "anim.gif"
    black, white = Image.new("L", (64, 48), 0), Image.new("L", (64, 48), 255)
    black.save(path, save_all=True, append_images=[white], duration=100, loop=0)
    assert Image.open(path).n_frames == 2
    loaded = load_image(path)
    assert loaded.image.mode == "L" and loaded.image.size == (64, 48)
    assert np.asarray(loaded.image).max() < 10


# --- reduced decoding ---------------------------------------------------------------


@pytest.mark.parametrize(("name", "shorter_side_below"), [("big.jpg", 1500), ("big.png", 256)],
                         ids=["jpeg-draft", "png-box-reduce"])
def test_large_image_is_decoded_reduced_but_reports_full_size(tmp_path, name, shorter_side_below):
    path = tmp_path / name
    photo(2, size=(2000, 1500)).save(path)
    loaded = load_image(path, min_side=128)
    assert (loaded.width, loaded.height) == (2000, 1500)
    assert 128 <= min(loaded.image.size) < shorter_side_below


def test_small_image_is_never_reduced_below_its_size(tmp_path):
    path = tmp_path / "small.png"
    photo(2, size=(200, 150)).save(path)
    assert load_image(path, min_side=128).image.size == (200, 150)


# --- size limit ---------------------------------------------------------------------


def test_image_over_pixel_limit_is_reported_too_large(tmp_path, monkeypatch):
    path = tmp_path / "huge.png"
    photo(4, size=(200, 150)).save(path)
    monkeypatch.setattr(dedup_cli.media.loading, "MAX_PIXELS", 100 * 100)
    assert "too large" in reason_for(path)
    monkeypatch.setattr(dedup_cli.media.loading, "MAX_PIXELS", 200 * 150)
    assert load_image(path).image.size == (200, 150)


def test_hundred_megapixel_jpeg_under_pixel_limit_loads_reduced(tmp_path):
    # Regression: Pillow's own limit (~89.5 MP) rejected images that MAX_PIXELS allows.
    path = tmp_path / "camera_100mp.jpg"
    Image.new("L", (11648, 8736), 90).save(path, quality=80)  # a 100 MP medium-format camera frame
    assert 11648 * 8736 < dedup_cli.media.loading.MAX_PIXELS
    loaded = load_image(path, min_side=128)
    assert (loaded.width, loaded.height) == (11648, 8736)
    assert min(loaded.image.size) < 8736
