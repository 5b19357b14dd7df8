"""present/review.py and pages.py without a browser: the page's data, the reasons, the
escaping, the links and thumbnails, and `dedup review` on real run folders."""

import json
import os
import re
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DATA, HOSTILE_NAME, photo
from PIL import Image

from dedup_cli.cli import main
from dedup_cli.present.pages import embed_json
from dedup_cli.present.plot import fan_out, tsne_positions
from dedup_cli.present.review import THUMB_SIDE, display_path, keep_reason, match_text

SETTINGS = {"keep_policy": "resolution", "threshold_bits": 14, "hash_algorithm": "phash", "hash_size": 8,
            "colour_check": True, "reference": []}


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def dry_run(images: Path, output: Path, *extra) -> Path:
    result = run("delete", "--images-path", images, "--output-path", output, "--no-progress", *extra)
    assert result.exit_code == 0, result.output
    (folder,) = [p for p in output.iterdir() if p.is_dir()]
    return folder


def page_data(page: Path) -> dict:
    """The JSON a page embeds, read back as the browser's JSON.parse would."""
    text = page.read_text(encoding="utf-8")
    found = re.search(r'<script id="(?:review|map)-data" type="application/json">(.*?)</script>', text, re.S)
    return json.loads(found.group(1))


def entry(path, width=320, height=240, size=1000, mtime_ns=0):
    return {"path": path, "width": width, "height": height, "size": size, "mtime_ns": mtime_ns}


def test_embedded_json_cannot_close_its_script_element_and_round_trips():
    data = {"path": "</script><script>alert(1)</script>\u2028&<!--", "odd": "caf\udce9.jpg"}
    text = embed_json(data)
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == data  # the lone surrogate of a non-UTF-8 name survives too


@pytest.mark.parametrize(("policy", "keeper", "other", "reason"), [
    ("resolution", entry("/a.jpg", 640, 480), entry("/b.jpg"), "more pixels: 640×480 against 320×240"),
    ("resolution", entry("/a.png", size=10), entry("/b.jpg", size=99), "same pixels, then the better copy: PNG is "
                                                                        "lossless, JPEG is not"),
    ("resolution", entry("/a.jpg", size=10), entry("/b.jpg", size=99), "same pixels, then the better copy (colour"),
    ("resolution", entry("/a.jpg", size=99), entry("/b.jpg", size=10), "or, those being equal, the larger file"),
    ("size", entry("/a.jpg", 100, 100, size=4096), entry("/b.jpg", size=1024), "larger file: 4.0 KB against 1.0 KB"),
    ("oldest", entry("/a.jpg", mtime_ns=0), entry("/b.jpg", mtime_ns=86_400 * 10**9), "the older file"),
    ("path", entry("/a.jpg", 10, 10), entry("/b.jpg"), "its path sorts first"),
])
def test_keep_reason_names_what_decided_under_each_policy(policy, keeper, other, reason):
    assert reason in keep_reason(keeper, other, SETTINGS | {"keep_policy": policy})


def test_keep_reason_puts_a_reference_folder_first():
    settings = SETTINGS | {"reference": ["/ref"]}
    assert "--reference" in keep_reason(entry("/ref/a.jpg", 10, 10), entry("/b.jpg"), settings)


def test_match_text_says_hash_and_colour_and_the_threshold():
    assert match_text(SETTINGS).startswith("hash+colour: hash distance within 14 bits")
    assert match_text(SETTINGS | {"colour_check": False}).startswith("hash only")
    assert "rotations" in match_text(SETTINGS | {"isometric": True})


def files_of(page: Path) -> dict[str, dict]:
    return {f["path"]: f for g in page_data(page)["groups"] for f in g["files"]}


def test_every_dry_run_writes_a_review_page_that_links_the_files_themselves(small_library, tmp_path):
    (small_library / HOSTILE_NAME).write_bytes((small_library / "sub" / "pic1_small.jpg").read_bytes())
    folder = dry_run(small_library, tmp_path / "out")
    report = json.loads((folder / "report.json").read_text())
    page = folder / "review.html"
    data = page_data(page)
    assert [g["id"] for g in data["groups"]] == [g["id"] for g in report["groups"]]
    files = [f for g in data["groups"] for f in g["files"]]
    assert {f["path"] for f in files} == {e["path"] for g in report["groups"] for e in (*g["keep"], *g["remove"])}
    assert all(f["plan"] == "keep" for g in data["groups"] for f in g["files"][:1])
    assert all(f["reason"].startswith("kept file chosen by: ") for g in data["groups"] for f in g["files"][1:])
    # No picture was read: no thumbnails, and each file is linked relative to the page.
    assert not (folder / "thumbs").exists() and all(f["thumb"] is None for f in files)
    for file in files:
        assert (folder / unquote(file["src"])).resolve() == Path(file["path"]).resolve()
        assert file["shown"] == os.path.relpath(file["path"], small_library)
    text = page.read_text()
    assert HOSTILE_NAME not in text and "http://" not in text and "https://" not in text  # escaped; offline


def test_delete_with_review_n_writes_no_page(small_library, tmp_path):
    folder = dry_run(small_library, tmp_path / "out", "--review", "n")
    assert not (folder / "review.html").exists()


def test_review_makes_the_thumbnails_once_and_the_page_shows_them(small_library, tmp_path):
    (small_library / HOSTILE_NAME).write_bytes((small_library / "sub" / "pic1_small.jpg").read_bytes())
    folder = dry_run(small_library, tmp_path / "out")
    result = run("review", folder / "report.json")
    assert result.exit_code == 0, result.output
    # 10 files in groups; the hostile name is a byte copy of another, so they share one.
    assert "Thumbnails: 9 made, 0 reused, 0 unreadable." in result.output
    thumbs = sorted((folder / "thumbs").iterdir())
    assert len(thumbs) == 9
    assert all(Image.open(t).format == "JPEG" and max(Image.open(t).size) <= THUMB_SIDE for t in thumbs)
    files = files_of(folder / "review.html")
    assert len(files) == 10 and all((folder / f["thumb"]).is_file() for f in files.values())
    again = run("review", folder)
    assert again.exit_code == 0 and "Thumbnails: 0 made, 9 reused" in again.output, again.output


def test_review_open_uses_the_default_browser_and_says_when_there_is_none(small_library, tmp_path, monkeypatch):
    import webbrowser

    folder = dry_run(small_library, tmp_path / "out")
    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or False)
    result = run("review", folder, "--open")
    assert result.exit_code == 0
    assert opened == [(folder / "review.html").as_uri()]
    assert "No web browser found: open file://" in result.output


def test_review_of_something_else_is_an_error_with_the_path(tmp_path):
    result = run("review", tmp_path)
    assert result.exit_code == 1 and f"'{tmp_path}' is neither a dedup run folder" in result.output


def test_a_real_run_page_shows_what_was_removed_and_links_the_backups(small_library, tmp_path):
    result = run("delete", "--images-path", small_library, "--output-path", tmp_path / "out", "--safe-deletion", "n",
                 "--no-progress")
    assert result.exit_code == 0, result.output
    (folder,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    removed = [f for f in files_of(folder / "review.html").values() if f["plan"] == "remove"]
    assert len(removed) == 6 and all(f["done"] == "move" for f in removed)
    for file in removed:  # the duplicates are in remove/ by now: the page links them there
        backup = folder / "remove" / Path(file["path"]).relative_to(small_library)
        assert (folder / unquote(file["src"])).resolve() == backup.resolve()
    made = run("review", folder)
    assert made.exit_code == 0 and "9 made, 0 reused, 0 unreadable" in made.output, made.output


def test_a_file_unreadable_at_review_time_gets_no_thumbnail_and_the_page_is_written(small_library, tmp_path):
    folder = dry_run(small_library, tmp_path / "out", "--review", "n")
    broken = small_library / "sub" / "pic2_small.jpg"
    broken.write_bytes(b"not a picture any more")
    result = run("review", folder)
    assert result.exit_code == 0
    assert f"No thumbnail for '{broken}'" in result.output and "1 unreadable" in result.output
    assert files_of(folder / "review.html")[str(broken)]["thumb"] is None


def test_display_path_is_relative_to_the_images_folder_only_inside_it():
    assert display_path("/photos/a/b.jpg", "/photos") == "a/b.jpg"
    assert display_path("/photos/a/b.jpg", "/photos/") == "a/b.jpg"
    assert display_path("/photosx/b.jpg", "/photos") == "/photosx/b.jpg"
    assert display_path("/ref/b.jpg", "") == "/ref/b.jpg"


def test_fan_out_spreads_stacked_points_and_leaves_lone_ones_alone():
    positions = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [100.0, 100.0], [50.0, 20.0]])
    fanned = fan_out(positions)
    assert np.array_equal(fanned[3:], positions[3:])
    stacked = fanned[:3]
    assert len({tuple(p) for p in stacked.round(6)}) == 3  # three points, three places
    assert np.abs(stacked).max() < 2  # still beside where they were (gap 0.4 of a span of 100)


def test_show_writes_an_explorable_map_with_every_point(small_library, tmp_path):
    photo(7).save(small_library / HOSTILE_NAME)
    result = run("show", "--images-path", small_library, "--output-path", tmp_path / "out", "--no-progress")
    assert result.exit_code == 0, result.output
    page = Path(re.search(r"interactive map: (\S+)", result.output).group(1))
    data = page_data(page)
    assert data["count"] == len(data["x"]) == len(data["paths"]) == 11 and data["groups"] == 3
    assert sorted(data["group"]).count(-1) == 2 and not data["missing"]
    assert all(0 <= v <= 1 for v in data["x"] + data["y"]) and data["sheets"][0].startswith("data:image/jpeg;base64,")
    assert HOSTILE_NAME not in page.read_text()


def test_show_draws_the_same_map_with_and_without_worker_processes(small_library, tmp_path):
    maps = []
    for parallel in ("y", "n"):
        result = run("show", "--images-path", small_library, "--output-path", tmp_path / parallel, "--no-progress",
                     "--parallel", parallel)
        assert result.exit_code == 0, result.output
        data = page_data(Path(re.search(r"interactive map: (\S+)", result.output).group(1)))
        csv_text = Path(re.search(r"t-SNE coordinates: (\S+)", result.output).group(1)).read_text()
        maps.append((csv_text, data["group"], data["sheets"]))
    assert maps[0] == maps[1]


def test_tsne_map_of_the_generated_set_is_a_map_not_a_line():
    # Regression: 250 iterations, all of them early exaggeration in scikit-learn, drew the
    # 1,377 generated files (81 pictures, 17 edits each) as a line, the groups mixed.
    lines = (DATA / "generated_phash.txt").read_text().splitlines()
    packed = np.array([bytearray.fromhex(line) for line in lines if not line.startswith("#")], dtype=np.uint8)
    positions = tsne_positions(np.unpackbits(packed, axis=1), perplexity=30)
    extent = np.ptp(positions, axis=0)
    assert len(positions) == 646 and extent.min() > 0.5 * extent.max()


def test_a_name_that_is_not_utf8_gets_a_working_link_and_its_own_path_back(small_library, tmp_path):
    from urllib.parse import unquote_to_bytes

    name = os.fsdecode(b"caf\xe9.jpg")  # Latin-1 bytes: a lone surrogate in Python
    (small_library / name).write_bytes((small_library / "sub" / "pic1_small.jpg").read_bytes())
    folder = dry_run(small_library, tmp_path / "out")
    files = files_of(folder / "review.html")
    odd = files[str(small_library / name)]  # the page holds the same \udcXX path as report.json
    target = os.path.join(os.fsencode(folder), unquote_to_bytes(odd["src"]))
    assert os.path.samefile(target, small_library / name)


def facts(path, colour=True, depth=8, lossless=False, frames=1, **sizes):
    return entry(path, **sizes) | {"colour": colour, "depth": depth, "lossless": lossless, "frames": frames}


@pytest.mark.parametrize(("keeper", "other", "reason"), [
    (facts("/a.jpg"), facts("/b.jpg", colour=False), "same pixels, then the better copy: colour over grey"),
    (facts("/a.png", depth=16), facts("/b.png", depth=6), "the better copy: 16-bit over a palette"),
    (facts("/a.webp", lossless=True), facts("/b.webp"), "the better copy: a lossless format over a lossy one"),
    (facts("/a.png", lossless=True), facts("/b.jpg"), "the better copy: PNG is lossless, JPEG is not"),
    (facts("/a.gif", frames=12), facts("/b.gif"), "the better copy: more animation frames: 12 against 1"),
    # equal facts: the next criterion decided, and the reason says so without hedging
    (facts("/a.jpg", size=99), facts("/b.jpg", size=10),
     "same pixels and colour, bit depth, format and frames, then the larger file"),
])
def test_keep_reason_reads_the_better_copy_facts_of_the_report(keeper, other, reason):
    assert reason in keep_reason(keeper, other, SETTINGS)


def test_report_files_carry_the_facts_the_keep_order_reads(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    picture = photo(3)
    picture.save(images / "colour.png")
    picture.convert("L").save(images / "grey.png")
    report = json.loads((dry_run(images, tmp_path / "out") / "report.json").read_text())
    (group,) = report["groups"]
    (kept,), (removed,) = group["keep"], group["remove"]
    assert Path(kept["path"]).name == "colour.png" and kept["colour"] is True and removed["colour"] is False
    assert kept["lossless"] is True and kept["depth"] == 8 and kept["frames"] == 1
