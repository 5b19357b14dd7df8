"""The benchmark generator and `dedup evaluate`, on real files."""

import csv
import json

import numpy as np
from click.testing import CliRunner
from conftest import DEMO, photo

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
    rows = make_benchmark(originals(tmp_path), tmp_path / "bench", kinds=tuple(TRANSFORMS), max_side=300)
    assert len(rows) == 2 * (1 + len(TRANSFORMS))
    with open(tmp_path / "bench" / "truth.csv", newline="") as handle:
        truth = list(csv.DictReader(handle))
    assert [r["file"] for r in truth] == [r["file"] for r in rows]
    assert all((tmp_path / "bench" / r["file"]).exists() for r in truth)
    assert {r["transform"] for r in truth} == {"original", *TRANSFORMS}


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
