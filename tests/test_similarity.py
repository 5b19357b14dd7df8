"""Colour check, flat-picture guard and isometric matching, on real image files."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import photo
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from dedup_cli.benchmark import TRANSFORMS
from dedup_cli.cli import main
from dedup_cli.hashing import HashSettings, hash_collection
from dedup_cli.similarity import (
    DEFAULT_COLOUR_THRESHOLD,
    EDIT_FACTOR,
    LOCAL_FACTOR,
    colour_distance,
    edit_distance,
    local_distance,
)

# Fitzpatrick skin tones as emoji sets draw them.
SKIN_TONES = {"light": (247, 222, 206), "medium": (213, 171, 136), "medium_dark": (175, 126, 87)}


def same_luma_other_colours(seed: int) -> tuple[Image.Image, Image.Image]:
    """Two pictures with one luminance plane and different colour planes (like two flags
    that look alike in grey)."""
    luma = np.asarray(photo(seed).convert("L"))
    height, width = luma.shape
    chroma_one = np.zeros((height, width, 2), dtype=np.uint8)
    chroma_one[:, : width // 2] = (90, 170)
    chroma_one[:, width // 2 :] = (170, 90)
    chroma_two = 255 - chroma_one
    planes = [np.dstack([luma, chroma]) for chroma in (chroma_one, chroma_two)]
    return tuple(Image.fromarray(p, "YCbCr").convert("RGB") for p in planes)


def face(tone) -> Image.Image:
    """A simple emoji-like face: a round face in `tone` on white, dark eyes and mouth."""
    image = Image.new("RGB", (160, 160), "white")
    draw = ImageDraw.Draw(image)
    draw.ellipse((16, 16, 144, 144), fill=tone)
    draw.ellipse((50, 55, 66, 75), fill=(60, 40, 30))
    draw.ellipse((94, 55, 110, 75), fill=(60, 40, 30))
    draw.arc((50, 70, 110, 120), 20, 160, fill=(60, 40, 30), width=6)
    return image


def delete_report(folder, tmp_path, *options):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["delete", "--images-path", str(folder), "--output-path", str(out),
                                       "--no-progress", *options])
    assert result.exit_code == 0, result.output
    report = json.loads(next(out.glob("delete-*/report.json")).read_text())
    for folder_path in out.glob("delete-*"):
        for path in folder_path.iterdir():
            path.unlink()
        folder_path.rmdir()
    groups = {frozenset(p.rsplit("/", 1)[-1] for p in [*(k["path"] for k in g["keep"]),
                                                       *(r["path"] for r in g["remove"])])
              for g in report["groups"]}
    removed = {r["path"].rsplit("/", 1)[-1] for g in report["groups"] for r in g["remove"]}
    return groups, removed


def test_same_grey_different_colours_are_not_grouped_but_a_grey_copy_is(tmp_path):
    folder = tmp_path / "pictures"
    folder.mkdir()
    first, second = same_luma_other_colours(4)
    first.save(folder / "first.png")
    second.save(folder / "second.png")
    first.convert("L").save(folder / "first_grey.jpg", quality=90)
    groups, removed = delete_report(folder, tmp_path, "--colour", "n")
    assert groups == {frozenset({"first.png", "second.png", "first_grey.jpg"})}
    assert removed == {"second.png", "first_grey.jpg"}
    # With the colour check neither colour picture is removed because of the other; the
    # grey copy goes (it matches both, and a kept picture stands within the threshold).
    assert delete_report(folder, tmp_path)[1] == {"first_grey.jpg"}


def test_skin_tones_are_distinct_images(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    for name, tone in SKIN_TONES.items():
        face(tone).save(folder / f"face_{name}.png")
    face(SKIN_TONES["light"]).save(folder / "face_light_copy.jpg", quality=80)
    everything = frozenset({"face_light.png", "face_medium.png", "face_medium_dark.png", "face_light_copy.jpg"})
    # A threshold wide enough for the hashes of all tones, so that colour alone decides.
    assert delete_report(folder, tmp_path, "--colour", "n", "--threshold", "16")[0] == {everything}
    # The default separates tones two steps apart; neighbouring tones need a stricter
    # colour threshold (the README says so).
    _, removed = delete_report(folder, tmp_path, "--threshold", "16")
    assert "face_medium_dark.png" not in removed and len({"face_light.png", "face_light_copy.jpg"} - removed) == 1
    assert delete_report(folder, tmp_path, "--threshold", "16", "--colour-threshold", "6")[0] == {
        frozenset({"face_light.png", "face_light_copy.jpg"})}


@pytest.mark.parametrize("edit", ["brightness", "contrast", "resize", "crop", "watermark", "blur"])
def test_standard_edits_keep_the_colours(tmp_path, edit):
    original = photo(11)
    original.save(tmp_path / "a.png")
    TRANSFORMS[edit].edit(original).save(tmp_path / "b.jpg", quality=85)
    hashed = hash_collection([str(tmp_path / "a.png"), str(tmp_path / "b.jpg")], HashSettings())
    assert colour_distance(hashed.colour[:1], hashed.colour[1:])[0] < 0.8 * DEFAULT_COLOUR_THRESHOLD
    assert local_distance(hashed.colour[:1], hashed.colour[1:])[0] < 0.6 * LOCAL_FACTOR * DEFAULT_COLOUR_THRESHOLD
    assert edit_distance(hashed.colour[:1], hashed.colour[1:])[0] < 0.6 * EDIT_FACTOR * DEFAULT_COLOUR_THRESHOLD


def tricolour(star_centres=()) -> Image.Image:
    """Red, white and black bands, with green stars in the white band (like Syria's and
    Yemen's flags, which differ only by the stars)."""
    image = Image.new("RGB", (300, 200), (206, 17, 38))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 67, 299, 133), fill="white")
    draw.rectangle((0, 134, 299, 199), fill="black")
    angles = np.pi / 2 + np.arange(10) * np.pi / 5
    radii = np.where(np.arange(10) % 2 == 0, 22, 9)
    for x in star_centres:
        draw.polygon(list(zip(x + radii * np.cos(angles), 100 - radii * np.sin(angles))), fill=(0, 122, 61))
    return image


def test_a_small_emblem_makes_a_different_picture(tmp_path):
    folder = tmp_path / "flags"
    folder.mkdir()
    tricolour().save(folder / "plain.png")
    tricolour((90, 210)).save(folder / "stars.png")
    hashed = hash_collection([str(folder / "plain.png"), str(folder / "stars.png")], HashSettings())
    # The stars cover too little of the picture for the global check ...
    assert colour_distance(hashed.colour[:1], hashed.colour[1:])[0] < DEFAULT_COLOUR_THRESHOLD
    # ... but not of the detail grid.
    assert local_distance(hashed.colour[:1], hashed.colour[1:])[0] > 1.5 * LOCAL_FACTOR * DEFAULT_COLOUR_THRESHOLD
    # A threshold wide enough for both hashes, so that colour alone decides.
    assert delete_report(folder, tmp_path, "--threshold", "32", "--colour", "n")[0] == {
        frozenset({"plain.png", "stars.png"})}
    assert delete_report(folder, tmp_path, "--threshold", "32")[0] == set()


def two_bands(top, bottom=(220, 20, 60)) -> Image.Image:
    image = Image.new("RGB", (200, 150), bottom)
    ImageDraw.Draw(image).rectangle((0, 0, 199, 74), fill=top)
    return image


def test_a_white_band_is_not_any_colour_clipped_to_white(tmp_path):
    # Regression (Poland and Haiti in the bench flags): cells clipped to white were left
    # out of the colour check, so a white band matched a blue one over the same red.
    two_bands("white").save(tmp_path / "white_red.png")
    two_bands((0, 40, 140)).save(tmp_path / "blue_red.png")
    ImageEnhance.Brightness(two_bands("white")).enhance(1.25).save(tmp_path / "white_red_brighter.png")
    hashed = hash_collection([str(tmp_path / name) for name in ("white_red.png", "blue_red.png",
                                                                 "white_red_brighter.png")], HashSettings())
    assert colour_distance(hashed.colour[:1], hashed.colour[1:2])[0] > 3 * DEFAULT_COLOUR_THRESHOLD
    # A brightness change that clips the white band keeps the two pictures together.
    assert colour_distance(hashed.colour[:1], hashed.colour[2:])[0] < 0.5 * DEFAULT_COLOUR_THRESHOLD


def test_a_lighter_red_is_another_flag(tmp_path):
    # Regression (Indonesia and Monaco in the bench flags): red over white in two reds.
    # A free brightness/contrast fit of the YCbCr grids explains one red by the other, but
    # no single edit does in RGB: the lighter red is as saturated as the darker one.
    folder = tmp_path / "flags"
    folder.mkdir()
    two_bands((234, 30, 45), "white").save(folder / "indonesia.png")
    two_bands((244, 52, 73), "white").save(folder / "monaco.png")
    colour = hash_collection([str(folder / "indonesia.png"), str(folder / "monaco.png")], HashSettings()).colour
    assert colour_distance(colour[:1], colour[1:])[0] < 0.5 * DEFAULT_COLOUR_THRESHOLD
    assert local_distance(colour[:1], colour[1:])[0] < 0.5 * LOCAL_FACTOR * DEFAULT_COLOUR_THRESHOLD
    assert edit_distance(colour[:1], colour[1:])[0] > 1.5 * EDIT_FACTOR * DEFAULT_COLOUR_THRESHOLD
    assert delete_report(folder, tmp_path, "--colour", "n")[0] == {frozenset({"indonesia.png", "monaco.png"})}
    assert delete_report(folder, tmp_path)[0] == set()


def test_one_edit_explains_a_smooth_colour_clipped_by_brightness(tmp_path):
    # Regression guard: a brightness edit clips the green channel of a light green
    # background (the colour turns towards cyan); the clipped channel is only a bound, so
    # the edit still explains the copy. The same holds for the flag's red channel.
    background = Image.new("RGB", (300, 200), (120, 230, 160))
    background.paste(photo(3, (150, 100)), (75, 50))
    pictures = {"photo.png": background, "photo_brighter.jpg": TRANSFORMS["brightness"].edit(background),
                "flag.png": two_bands((234, 30, 45), "white"),
                "flag_brighter.png": TRANSFORMS["brightness"].edit(two_bands((234, 30, 45), "white")),
                "flag_contrast.png": TRANSFORMS["contrast"].edit(two_bands((234, 30, 45), "white"))}
    for name, picture in pictures.items():
        picture.save(tmp_path / name)
    colour = hash_collection([str(tmp_path / name) for name in pictures], HashSettings()).colour
    assert colour_distance(colour[:1], colour[1:2])[0] > 0.5 * DEFAULT_COLOUR_THRESHOLD  # a large change ...
    originals, copies = colour[[0, 2, 2]], colour[[1, 3, 4]]
    assert (edit_distance(originals, copies) < 0.2 * EDIT_FACTOR * DEFAULT_COLOUR_THRESHOLD).all()  # ... one edit


def test_a_grey_picture_matches_a_colour_one_only_through_one_edit(tmp_path):
    # Regression (the bench flags' grey placeholder matched Haiti's flag): against a grey
    # picture only luma is compared, and a free offset made a light grey gradient fit a
    # dark two-band flag. The fit is now held to what one brightness or contrast edit does.
    folder = tmp_path / "pictures"
    folder.mkdir()
    placeholder = Image.linear_gradient("L").rotate(90).resize((300, 200)).point(lambda v: 190 + v // 6)
    placeholder.save(folder / "placeholder.png")
    flag = Image.new("RGB", (300, 200), (210, 16, 52))
    ImageDraw.Draw(flag).rectangle((0, 0, 299, 99), fill=(0, 32, 159))
    flag.save(folder / "flag.png")
    flag.convert("L").save(folder / "flag_grey.png")
    ImageEnhance.Brightness(flag.convert("L")).enhance(1.25).save(folder / "flag_grey_brighter.png")
    paths = [str(folder / name) for name in ("placeholder.png", "flag.png", "flag_grey.png", "flag_grey_brighter.png")]
    colour = hash_collection(paths, HashSettings()).colour
    assert colour_distance(colour[:1], colour[1:2])[0] > 2 * DEFAULT_COLOUR_THRESHOLD
    # A grey copy, also one edited after the conversion, still matches its original.
    assert colour_distance(colour[1:2], colour[2:3])[0] < 0.2 * DEFAULT_COLOUR_THRESHOLD
    assert colour_distance(colour[1:2], colour[3:4])[0] < 0.5 * DEFAULT_COLOUR_THRESHOLD
    (folder / "flag_grey.png").unlink()
    (folder / "flag_grey_brighter.png").unlink()
    assert delete_report(folder, tmp_path, "--colour", "n")[0] == {frozenset({"placeholder.png", "flag.png"})}
    assert delete_report(folder, tmp_path)[0] == set()


def test_uniform_pictures_match_only_their_own_colour(tmp_path):
    folder = tmp_path / "flat"
    folder.mkdir()
    Image.new("RGB", (200, 150), "white").save(folder / "white.png")
    Image.new("RGB", (100, 75), "white").save(folder / "white_small.jpg")
    Image.new("RGB", (200, 150), (250, 250, 250)).save(folder / "almost_white.png")
    Image.new("RGB", (200, 150), "black").save(folder / "black.png")
    groups, _ = delete_report(folder, tmp_path, "--colour", "n")
    assert groups == {frozenset({"white.png", "white_small.jpg", "almost_white.png"})}


def test_isometric_matches_rotated_and_mirrored_copies(tmp_path):
    folder = tmp_path / "turned"
    folder.mkdir()
    original = photo(21)
    original.save(folder / "original.png")
    ImageOps.mirror(original).save(folder / "mirrored.jpg", quality=90)
    original.transpose(Image.Transpose.ROTATE_90).save(folder / "rotated.jpg", quality=90)
    photo(22).save(folder / "other.png")
    assert delete_report(folder, tmp_path)[0] == set()
    assert delete_report(folder, tmp_path, "--isometric", "y")[0] == {
        frozenset({"original.png", "mirrored.jpg", "rotated.jpg"})}


def test_white_logos_on_transparency_are_seen_on_black(tmp_path):
    # Regression: white shapes kept only in the alpha channel flattened to blank white
    # pictures, and every such logo in the Debian wallpapers matched every other.
    folder = tmp_path / "logos"
    folder.mkdir()
    for name, box in (("circle", (20, 20, 140, 140)), ("bar", (10, 60, 150, 100))):
        logo = Image.new("RGBA", (160, 160), (255, 255, 255, 0))
        draw = ImageDraw.Draw(logo)
        (draw.ellipse if name == "circle" else draw.rectangle)(box, fill=(255, 255, 255, 255))
        logo.save(folder / f"{name}.png")
        logo.resize((80, 80)).save(folder / f"{name}_small.png")
    groups, _ = delete_report(folder, tmp_path)
    assert groups == {frozenset({"circle.png", "circle_small.png"}), frozenset({"bar.png", "bar_small.png"})}
