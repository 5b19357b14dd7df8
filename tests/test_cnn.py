"""--method cnn: the model (built offline, checked by sha256), embeddings, their cache, the
colour veto, and the commands end to end on the demo set. Skipped, with the reason, where
onnxruntime or the model (`make model`) is missing."""

import json
import os
import shutil
import socket
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DEMO, photo, tree_digest
from PIL import Image

from dedup_cli.cli import main
from dedup_cli.fingerprint import cnn_model
from dedup_cli.fingerprint.cache import HashCache
from dedup_cli.fingerprint.embedding import embed_collection, embed_many, open_model
from dedup_cli.plan.cnn_match import EmbeddingMatcher, max_units
from dedup_cli.plan.similarity import MatchSettings


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def vectors(records) -> np.ndarray:
    return np.stack([np.frombuffer(r.vector, dtype=np.float16).astype(np.float32) for r in records])


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("the CNN path tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_the_model_loads_offline_and_embeds_unit_vectors(cnn, offline, tmp_path):
    settings = open_model()
    assert settings.model_sha256 == cnn_model.EXPECTED_SHA256
    path = tmp_path / "a.png"
    photo(1).save(path)
    records = embed_many([str(path)], settings)
    assert records[0].error == ""
    vector = np.frombuffer(records[0].vector, dtype=np.float16)
    assert vector.shape == (1280,) and abs(float(np.linalg.norm(vector.astype(np.float32))) - 1) < 1e-3


def test_a_resized_copy_is_closer_than_a_different_picture(cnn, tmp_path):
    originals = sorted((DEMO / "originals").glob("*.jpg"))[:4]
    small = tmp_path / "small.jpg"
    original = Image.open(originals[0])
    original.resize((original.width // 2, original.height // 2)).save(small, quality=70)
    found = vectors(embed_many([str(small), *map(str, originals)], open_model()))
    similarity = found[1:] @ found[0]
    assert similarity[0] > 0.85  # above the default threshold (0.80)
    assert similarity[0] > similarity[1:].max() + 0.1


def test_exif_orientation_is_applied_before_embedding(cnn, tmp_path):
    upright = Image.open(DEMO / "originals" / "bridge.jpg").convert("RGB")
    upright.save(tmp_path / "upright.jpg", quality=90)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned a quarter anticlockwise: viewers turn it back
    upright.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "stored.jpg", exif=exif, quality=90)
    upright.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "really_turned.jpg", quality=90)
    found = vectors(embed_many([str(tmp_path / n) for n in ("upright.jpg", "stored.jpg", "really_turned.jpg")],
                               open_model()))
    assert found[0] @ found[1] > 0.97
    assert found[0] @ found[1] > found[0] @ found[2] + 0.03


def test_unreadable_files_are_failures_not_a_failed_run(cnn, tmp_path):
    good, bad = tmp_path / "good.png", tmp_path / "bad.jpg"
    photo(3).save(good)
    bad.write_bytes(b"\xff\xd8\xff not really a jpeg")
    records = embed_many([str(bad), str(good)], open_model(), workers=2, batch_size=1)
    assert records[0].vector is None and records[0].error
    assert records[1].vector is not None


def test_embeddings_are_cached_by_file_and_model(cnn, tmp_path):
    paths = []
    for seed in range(3):
        paths.append(str(tmp_path / f"p{seed}.png"))
        photo(seed).save(paths[-1])
    sizes = np.array([os.path.getsize(p) for p in paths])
    mtimes = np.array([os.stat(p).st_mtime_ns for p in paths])
    settings = open_model()
    cache = HashCache(tmp_path / "cache.sqlite")
    first, failures, from_cache = embed_collection(paths, sizes, mtimes, settings, cache=cache)
    assert not failures and from_cache == 0
    again, _, from_cache = embed_collection(paths, sizes, mtimes, settings, cache=cache)
    assert from_cache == 3 and again.dtype == np.float16 and np.array_equal(again, first)
    other_model = type(settings)(settings.model_path, "0" * 64)
    _, _, from_cache = embed_collection(paths, sizes, mtimes, other_model, cache=cache)
    assert from_cache == 0  # another model's embeddings are never mixed in
    cache.close()


def test_the_colour_checks_veto_pairs_the_network_cannot_tell_apart(cnn, tmp_path):
    # Smooth random pictures look alike to the network (cosine about 0.9), and a copy in
    # other colours (channels swapped, like an emoji in another skin tone) even more so;
    # the resized and the cropped copy are the only true duplicates.
    picture = photo(1)
    picture.save(tmp_path / "a.png")
    Image.fromarray(np.asarray(picture)[:, :, ::-1]).save(tmp_path / "a_swapped.png")
    photo(2).save(tmp_path / "b.png")
    picture.resize((160, 120)).save(tmp_path / "a_small.jpg", quality=80)
    # A 10% crop, not resized: its grids line up with the original's only when the checks
    # take it as the central window of the original (the sizes say it may be one).
    picture.crop((32, 24, 288, 216)).save(tmp_path / "a_crop10.png")
    for colour, expected in (("n", 4), ("y", 2)):
        result = run("delete", "--images-path", tmp_path, "--output-path", tmp_path.parent / f"out-{colour}",
                     "--method", "cnn", "--colour", colour, "--no-cache")
        assert result.exit_code == 0, result.output
        assert f"to remove: {expected} " in result.output


def test_matcher_distances_agree_with_its_pairs(cnn):
    rng = np.random.default_rng(0)
    embeddings = rng.standard_normal((6, 1280)).astype(np.float32)
    embeddings[3] = embeddings[0] + 0.3 * embeddings[3]
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)

    class Flat:  # one colour signature for all: nothing vetoed
        colour = np.tile(np.frombuffer(bytes(range(256)) * 7, dtype=np.uint8)[:1728], (6, 1))
        width = height = np.full(6, 100)

    matcher = EmbeddingMatcher(Flat(), embeddings.astype(np.float16), MatchSettings(max_units(0.8), colour_check=False))
    first, second, distance = matcher.pairs()
    assert list(zip(first.tolist(), second.tolist())) == [(0, 3)]
    assert matcher.distances([3, 1], 0)[0] == distance[0] and matcher.distances([3, 1], 0)[1] == matcher.rejected


@pytest.mark.slow
def test_cnn_method_end_to_end_on_the_demo_set(cnn, demo_copy, tmp_path):
    before = tree_digest(demo_copy)
    result = run("evaluate", "--images-path", demo_copy, "--truth", demo_copy / "truth.csv", "--method", "cnn",
                 "--format", "json")
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert scores["settings"]["method"] == "cnn" and scores["settings"]["model_sha256"] == cnn_model.EXPECTED_SHA256
    assert scores["linked_precision"] == 1.0 and scores["linked_recall"] >= 0.95
    assert scores["wrongly_removed"] == [] and scores["groups_losing_every_member"] == []

    result = run("delete", "--images-path", demo_copy, "--output-path", tmp_path / "out", "--method", "cnn")
    assert result.exit_code == 0, result.output
    assert "cosine similarity >= 0.8" in result.output
    report_path = next((tmp_path / "out").glob("delete-*/report.json"))
    report = json.loads(report_path.read_text())
    assert report["settings"]["method"] == "cnn" and report["summary"]["remove"] >= 30
    removal = report["groups"][0]["remove"][0]
    assert 0 <= removal["distance"] <= 0.2 and removal["bits"] == round(removal["distance"] * 10000)
    assert tree_digest(demo_copy) == before
    page = (report_path.parent / "review.html").read_text(encoding="utf-8")
    assert "CNN embeddings: cosine similarity \\u003e= 0.8" in page and '"method":"cnn"' in page
    assert "from cache" in result.output and "(47 from cache)" in result.output  # evaluate filled the cache

    # apply with decisions that move the keep: a CNN report holds no embeddings to
    # measure another kept file by, so the file decided away stays (the safe side).
    group = max(report["groups"], key=lambda g: len(g["remove"]))
    kept, promoted = group["keep"][0]["path"], group["remove"][0]["path"]
    decisions = tmp_path / "decisions.json"
    decisions.write_text(json.dumps({kept: "remove", promoted: "keep"}))
    applied = run("apply", report_path.parent, "--decisions", decisions)
    assert applied.exit_code == 0, applied.output
    assert "no kept file within the threshold after the decisions; kept" in applied.output
    assert os.path.exists(kept) and os.path.exists(promoted)
    assert not any(os.path.exists(r["path"]) for r in group["remove"][1:])


@pytest.mark.slow
def test_cnn_search_and_show_on_the_demo_set(cnn, tmp_path):
    result = run("search", "--images-path", DEMO, "--query", DEMO / "edits" / "bridge_70.jpg", "--method", "cnn",
                 "--format", "json")
    assert result.exit_code == 0, result.output
    matches = json.loads(result.stdout)["matches"]
    assert matches and all("bridge" in m["path"] or "DSC00412" in m["path"] for m in matches)
    assert matches[0]["distance"] <= matches[-1]["distance"]
    result = run("search", "--images-path", DEMO / "originals", "--query", DEMO / "edits", "--method", "cnn",
                 "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = [line.split(",") for line in result.stdout.splitlines()]
    assert any(row[0].endswith("bridge_70.jpg") and row[1].endswith("bridge.jpg") for row in rows)
    result = run("show", "--images-path", DEMO / "originals", "--output-path", tmp_path / "out", "--method", "cnn")
    assert result.exit_code == 0, result.output
    assert next((tmp_path / "out").glob("show-*/tsne_map.png")).is_file()


def test_without_onnxruntime_cnn_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now fails
    photo(1).save(tmp_path / "a.png")
    result = run("delete", "--images-path", tmp_path, "--output-path", tmp_path / "out", "--method", "cnn")
    assert result.exit_code == 2
    assert "pip install 'dedup-cli[cnn]'" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_a_missing_or_wrong_model_names_the_build_command(cnn, monkeypatch, tmp_path):
    photo(1).save(tmp_path / "a.png")
    monkeypatch.setenv("DEDUP_CNN_MODEL", str(tmp_path / "nowhere.onnx"))
    result = run("search", "--images-path", tmp_path, "--query", tmp_path / "a.png", "--method", "cnn")
    assert result.exit_code == 2 and "dedup model build" in result.output and "not built" in result.output
    damaged = tmp_path / "damaged.onnx"
    shutil.copyfile(cnn, damaged)
    with open(damaged, "r+b") as handle:
        handle.seek(5000)
        handle.write(b"\0" * 16)
    monkeypatch.setenv("DEDUP_CNN_MODEL", str(damaged))
    result = run("evaluate", "--images-path", tmp_path, "--truth", DEMO / "truth.csv", "--method", "cnn")
    assert result.exit_code == 2 and "not the expected file" in result.output and "Traceback" not in result.output


def test_a_cosine_threshold_above_one_is_a_usage_error(tmp_path):
    result = run("delete", "--images-path", tmp_path, "--method", "cnn", "--threshold", "14")
    assert result.exit_code == 2 and "cosine similarity" in result.output


def test_model_check_reports_the_built_model(cnn):
    result = run("model", "check")
    assert result.exit_code == 0 and cnn_model.EXPECTED_SHA256 in result.output
