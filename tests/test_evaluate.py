"""The benchmark generator and `dedup evaluate`, on real files."""

import csv
import json

import numpy as np
from click.testing import CliRunner
from conftest import DEMO, photo
from PIL import Image, ImageDraw

from dedup_cli.benchmark import STANDARD, TRANSFORMS, make_benchmark
from dedup_cli.cli import main
from dedup_cli.fingerprint.hashing import HashSettings, hash_file
from dedup_cli.media.loading import load_image
from dedup_cli.search.index import hamming


def originals(tmp_path, count=2):
    folder = tmp_path / "originals"
    folder.mkdir()
    for seed in range(count):
        photo(seed + 30, size=(400, 300)).save(folder / f"o{seed}.png")
    return sorted(folder.iterdir())


def test_generator_writes_every_edit_and_its_truth(tmp_path):
    copies = tuple(name for name, transform in TRANSFORMS.items() if not transform.negative)
    rows = make_benchmark(originals(tmp_path), tmp_path / "bench", kinds=copies, max_side=300)
    assert len(rows) == 2 * (1 + len(copies))
    with open(tmp_path / "bench" / "truth.csv", newline="") as handle:
        truth = list(csv.DictReader(handle))
    assert [r["file"] for r in truth] == [r["file"] for r in rows]
    assert all((tmp_path / "bench" / r["file"]).exists() for r in truth)
    assert {r["transform"] for r in truth} == {"original", *copies}


def coloured_objects(tmp_path, count=2):
    """Originals with one main colour: a red object on a pale, textured ground."""
    folder = tmp_path / "objects"
    folder.mkdir()
    for seed in range(count):
        ground = Image.blend(photo(seed + 40, size=(400, 300)), Image.new("RGB", (400, 300), (200, 200, 190)), 0.8)
        ImageDraw.Draw(ground).ellipse((110 + 20 * seed, 60, 290, 250), fill=(200, 30 + 20 * seed, 40))
        ground.save(folder / f"o{seed}.png")
    return sorted(folder.iterdir())


def test_colour_variants_are_pictures_of_their_own_and_evaluate_counts_them(tmp_path):
    kinds = ("brightness", "contrast", "other_hue", "other_shade")
    rows = make_benchmark(coloured_objects(tmp_path), tmp_path / "bench", kinds=kinds, max_side=300)
    groups = {row["file"]: row["group"] for row in rows}
    assert groups["g0000_other_hue.png"] == "g0000-other_hue" != groups["g0000_original.jpg"]
    assert groups["g0000_brightness.jpg"] == groups["g0000_original.jpg"] == "g0000"
    variant = np.asarray(Image.open(tmp_path / "bench" / "g0000_other_hue.png").convert("HSV"), dtype=np.int32)
    original = np.asarray(load_image(tmp_path / "bench" / "g0000_original.jpg", mode="RGB").image.convert("HSV"),
                          dtype=np.int32)
    turned = np.abs((variant[..., 0] - original[..., 0] + 128) % 256 - 128) > 40
    assert 0.15 < turned.mean() < 0.5  # the object, not the ground
    result = CliRunner().invoke(main, ["evaluate", "--images-path", str(tmp_path / "bench"), "--truth",
                                       str(tmp_path / "bench" / "truth.csv"), "--format", "json", "--no-progress"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report["negatives_by_kind"]) == {"other_hue", "other_shade"}
    assert report["negatives_by_kind"]["other_hue"] == {"files": 2, "paired": 0, "removed": 0}
    assert set(report["recall_by_kind"]) == {"original", "brightness", "contrast"}
    assert report["recall_by_kind"]["brightness"]["found"] == 2


def test_a_picture_without_a_main_colour_has_no_colour_variant(tmp_path):
    folder = tmp_path / "grey"
    folder.mkdir()
    photo(3, size=(400, 300)).convert("L").convert("RGB").save(folder / "grey.png")
    rows = make_benchmark([folder / "grey.png"], tmp_path / "bench", kinds=("other_hue", "brightness"), max_side=300)
    assert [row["transform"] for row in rows] == ["original", "brightness"]


def test_generated_exif_copy_is_upright_and_matches(tmp_path):
    make_benchmark(originals(tmp_path, 1), tmp_path / "bench", max_side=300)
    original = load_image(tmp_path / "bench" / "g0000_original.jpg")
    rotated = load_image(tmp_path / "bench" / "g0000_exif_rotated.jpg")
    assert (rotated.width, rotated.height) == (original.width, original.height) == (300, 225)
    bits = [np.frombuffer(hash_file(str(tmp_path / "bench" / f"g0000_{name}.jpg"), HashSettings()).packed_bits,
                          np.uint8) for name in ("original", "exif_rotated")]
    assert int(hamming(*bits)) <= 4


def test_evaluate_scores_a_generated_benchmark(tmp_path):
    make_benchmark(originals(tmp_path), tmp_path / "bench", kinds=STANDARD, max_side=300)
    result = CliRunner().invoke(main, ["evaluate", "--images-path", str(tmp_path / "bench"), "--truth",
                                       str(tmp_path / "bench" / "truth.csv"), "--format", "json", "--no-progress"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["true_pairs"] == 2 * 12 * 11 // 2
    assert report["linked_precision"] == 1.0 and report["linked_recall"] >= 0.9
    assert report["removal_precision"] == 1.0 and report["groups_losing_every_member"] == []
    assert set(report["recall_by_kind"]) == {"original", *STANDARD}


def test_evaluate_text_on_the_demo_set():
    result = CliRunner().invoke(main, ["evaluate", "--images-path", str(DEMO), "--truth", str(DEMO / "truth.csv"),
                                       "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "linked pairs: precision 1.0000" in result.output
    assert "groups losing every member: 0" in result.output


def test_evaluate_rejects_a_truth_file_without_columns(tmp_path):
    (tmp_path / "truth.csv").write_text("name,label\na.jpg,1\n")
    result = CliRunner().invoke(main, ["evaluate", "--images-path", str(tmp_path), "--truth",
                                       str(tmp_path / "truth.csv")])
    assert result.exit_code == 1 and "needs the columns file,group" in result.output
