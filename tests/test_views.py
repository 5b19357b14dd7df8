"""Views (--views): trimmed borders and centre crops find padded, letterboxed and cropped
copies; uniform stripes of a flag are not trimmed away; the report names the views."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageOps

import dedup_cli.fingerprint.hashing
from dedup_cli.cli import main
from dedup_cli.fingerprint.cache import HashCache
from dedup_cli.fingerprint.hashing import HashSettings, hash_collection
from dedup_cli.fingerprint.views import VIEW_NAMES, trim_box
from dedup_cli.plan.grouping import make_plan
from dedup_cli.plan.similarity import Matcher, MatchSettings

DEMO = Path(__file__).resolve().parent.parent / "datasets" / "demo" / "originals"
VIEWS = HashSettings("phash", 8, views=True)
PLAIN = HashSettings("phash", 8)
MATCH = MatchSettings(max_bits=14)


def _crop(image: Image.Image, fraction: float) -> Image.Image:
    dx, dy = round(image.width * fraction), round(image.height * fraction)
    return image.crop((dx, dy, image.width - dx, image.height - dy))


def _letterbox(image: Image.Image) -> Image.Image:
    """Black bars above and below, as a film shown in a taller frame."""
    bar = image.height // 6
    return ImageOps.expand(image, border=(0, bar, 0, bar), fill=(0, 0, 0))


EDITS = {
    "padded": lambda im: ImageOps.expand(im, border=round(min(im.size) * 0.1), fill=(255, 255, 255)),
    "letterboxed": _letterbox,
    "cropped10": lambda im: _crop(im, 0.10),
    "cropped15": lambda im: _crop(im, 0.15),
}


@pytest.fixture(scope="module")
def edited_demo(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("views")
    paths = []
    for source in ("bridge.jpg", "elephants.jpg", "storm.jpg"):
        with Image.open(DEMO / source) as opened:
            image = opened.convert("RGB")
        image.thumbnail((480, 480))
        stem = source.split(".")[0]
        image.save(folder / f"{stem}_original.jpg", quality=92)
        paths.append(folder / f"{stem}_original.jpg")
        for name, edit in EDITS.items():
            edit(image).save(folder / f"{stem}_{name}.jpg", quality=90)
            paths.append(folder / f"{stem}_{name}.jpg")
    return paths


def _grouped_with_original(hashed, settings) -> set[str]:
    """Names of the edited files put in one group with their own original."""
    plan = make_plan(hashed, settings)
    found = set()
    for group in plan.groups:
        names = [Path(hashed.paths[row]).name for row in group.rows]
        stems = {name.split("_")[0] for name in names}
        assert len(stems) == 1, f"different pictures grouped: {names}"
        if any(name.endswith("_original.jpg") for name in names):
            found.update(name for name in names if not name.endswith("_original.jpg"))
    return found


def test_padded_letterboxed_and_cropped_copies_are_found_only_with_views(edited_demo):
    edited = {path.name for path in edited_demo if not path.name.endswith("_original.jpg")}

    with_views = _grouped_with_original(hash_collection(edited_demo, VIEWS), MATCH)
    without = _grouped_with_original(hash_collection(edited_demo, PLAIN), MATCH)

    assert with_views == edited
    assert len(without) < len(edited) / 2  # what a global hash alone misses


def test_the_views_that_matched_are_named(edited_demo):
    hashed = hash_collection(edited_demo, VIEWS)
    matcher = Matcher(hashed, MATCH)
    row = {Path(path).name: number for number, path in enumerate(hashed.paths)}

    padded = matcher.matched_views(row["bridge_original.jpg"], row["bridge_padded.jpg"])
    cropped = matcher.matched_views(row["bridge_original.jpg"], row["bridge_cropped10.jpg"])

    assert padded == "trimmed ~ whole"
    assert cropped == "whole ~ centre 85%"
    assert matcher.distances([row["bridge_original.jpg"]], row["bridge_cropped10.jpg"])[0] <= MATCH.max_bits


def test_a_padded_copy_is_not_kept_over_its_original(edited_demo):
    hashed = hash_collection(edited_demo, VIEWS)
    plan = make_plan(hashed, MATCH)

    kept = {Path(hashed.paths[row]).name for group in plan.groups for row in group.keep}

    assert not any("padded" in name or "letterboxed" in name for name in kept)


def _flag(stripes: list[tuple[int, int, int]], size=(300, 200), vertical=False) -> Image.Image:
    image = Image.new("RGB", size)
    pixels = np.asarray(image).copy()
    bounds = np.linspace(0, size[0] if vertical else size[1], len(stripes) + 1).round().astype(int)
    for colour, start, end in zip(stripes, bounds[:-1], bounds[1:], strict=True):
        if vertical:
            pixels[:, start:end] = colour
        else:
            pixels[start:end] = colour
    return Image.fromarray(pixels)


WHITE, RED, BLACK, GREEN, BLUE = (255, 255, 255), (206, 17, 38), (0, 0, 0), (0, 146, 70), (0, 56, 168)


@pytest.mark.parametrize("stripes, vertical", [
    ([WHITE, RED], False),  # Poland: a white half
    ([BLACK, RED, (255, 206, 0)], False),  # Germany: a black third
    ([GREEN, WHITE, RED], True),  # Italy: a white third in the middle
    ([WHITE, BLUE, BLUE, WHITE], False),  # white quarters at both edges: wider than TRIM_MAX_SHARE
], ids=["poland", "germany", "italy", "white-quarters"])
def test_a_flags_uniform_stripes_are_not_trimmed(stripes, vertical):
    assert trim_box(_flag(stripes, vertical=vertical)) is None


def test_a_coloured_frame_is_content_but_a_grey_one_is_trimmed():
    picture = _flag([GREEN, WHITE, RED], size=(200, 150), vertical=True)

    assert trim_box(ImageOps.expand(picture, border=20, fill=BLUE)) is None
    assert trim_box(ImageOps.expand(picture, border=20, fill=(128, 128, 128))) == (20, 20, 220, 170)
    assert trim_box(ImageOps.expand(picture, border=(0, 25, 0, 25), fill=BLACK)) == (0, 25, 200, 175)


def test_the_report_names_the_view_in_json_and_csv(edited_demo, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("storm_original.jpg", "storm_padded.jpg", "storm_cropped10.jpg"):
        (images / name).write_bytes(next(p for p in edited_demo if p.name == name).read_bytes())

    result = CliRunner().invoke(main, ["delete", "--images-path", str(images), "--output-path", str(tmp_path / "out"),
                                       "--no-cache", "--no-progress", "--parallel", "n", "--views", "y"])

    assert result.exit_code == 0, result.output
    run = next((tmp_path / "out").glob("delete-*"))
    report = json.loads((run / "report.json").read_text())
    views = {Path(r["path"]).name: r["view"] for g in report["groups"] for r in g["remove"]}
    assert views == {"storm_padded.jpg": "trimmed ~ whole", "storm_cropped10.jpg": "whole ~ centre 85%"}
    assert report["settings"]["views"] is True
    with open(next(run.glob("duplicates_remove_*.csv")), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {Path(r["path"]).name: r["view"] for r in rows} == views


def test_views_come_back_from_the_cache_and_plain_records_are_not_reused(edited_demo, tmp_path, monkeypatch):
    cache = HashCache(tmp_path / "hashes.sqlite")
    hash_collection(edited_demo[:5], PLAIN, cache=cache)
    first = hash_collection(edited_demo[:5], VIEWS, cache=cache)
    assert first.from_cache == 0  # a record without views is not one with them

    def refuse(*args, **kwargs):
        raise AssertionError("decoded although the cache holds the views")

    monkeypatch.setattr(dedup_cli.fingerprint.hashing, "load_image", refuse)
    second = hash_collection(edited_demo[:5], VIEWS, cache=cache)
    cache.close()

    assert second.from_cache == 5
    assert second.views.shape == (5, len(VIEW_NAMES), 8)
    assert np.array_equal(second.views, first.views) and np.array_equal(second.view_colour, first.view_colour)
    assert np.allclose(second.content_share, first.content_share)
    assert (first.content_share < 0.9).sum() == 2  # the padded and letterboxed copies


def test_views_and_orientations_together_find_and_name_both(edited_demo, tmp_path):
    original = next(p for p in edited_demo if p.name == "elephants_original.jpg")
    padded = next(p for p in edited_demo if p.name == "elephants_padded.jpg")
    mirrored = tmp_path / "elephants_mirrored.jpg"
    with Image.open(original) as image:
        ImageOps.mirror(image).save(mirrored, quality=92)
    hashed = hash_collection([original, padded, mirrored], HashSettings("phash", 8, isometric=True, views=True))
    matcher = Matcher(hashed, MATCH)

    first, second, _ = matcher.pairs()

    assert {(0, 1), (0, 2)} <= set(zip(first.tolist(), second.tolist(), strict=True))
    assert matcher.matched_views(0, 1) == "trimmed ~ whole"
    assert matcher.matched_views(0, 2) in ("mirrored ~ whole", "whole ~ mirrored")
