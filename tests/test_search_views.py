"""`dedup search --views y`: padded, letterboxed and cropped copies of a query are found
by the rule delete groups them by, each match names the views that matched, and without
--views the output is what it was."""

import csv
import json
from pathlib import Path

import pytest
from conftest import DEMO, run
from PIL import Image, ImageOps

import dedup_cli.fingerprint.hashing
from dedup_cli.fingerprint.hashing import HashSettings, hash_collection
from dedup_cli.plan.similarity import Matcher, MatchSettings

PLAIN_CSV = "path,distance,bits,width,height"
FAST = ("--no-progress", "--parallel", "n")


def _crop(image: Image.Image, fraction: float) -> Image.Image:
    dx, dy = round(image.width * fraction), round(image.height * fraction)
    return image.crop((dx, dy, image.width - dx, image.height - dy))


def _pad(image: Image.Image) -> Image.Image:
    return ImageOps.expand(image, border=round(min(image.size) * 0.1), fill=(255, 255, 255))


def _recolour(image: Image.Image) -> Image.Image:
    red, green, blue = image.split()
    return Image.merge("RGB", (blue, green, red))


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    """(library, queries) of demo pictures: each query has one edited copy in the library
    (or, for elephants, the library holds the original of two edited queries)."""
    root = tmp_path_factory.mktemp("search-views")
    library, queries = root / "library", root / "queries"
    library.mkdir()
    queries.mkdir()
    pictures = {}
    for name in ("bridge", "elephants", "ladybird", "storm", "aqua"):
        with Image.open(DEMO / "originals" / f"{name}.jpg") as opened:
            pictures[name] = opened.convert("RGB")
        pictures[name].thumbnail((400, 400))
    saved = {
        queries / "bridge.jpg": pictures["bridge"], library / "bridge_padded.jpg": _pad(pictures["bridge"]),
        library / "elephants.jpg": pictures["elephants"],
        queries / "elephants_crop10.jpg": _crop(pictures["elephants"], 0.1),
        queries / "elephants_padded.jpg": _pad(pictures["elephants"]),
        queries / "ladybird.jpg": pictures["ladybird"],
        library / "ladybird_crop10.jpg": _crop(pictures["ladybird"], 0.1),
        queries / "storm.jpg": pictures["storm"], library / "storm_recoloured.jpg": _pad(_recolour(pictures["storm"])),
        queries / "aqua.jpg": pictures["aqua"], library / "aqua_mirrored.jpg": _pad(ImageOps.mirror(pictures["aqua"])),
    }
    for path, image in saved.items():
        image.save(path, quality=90)
    return library, queries


def _search(library: Path, query: Path, *extra) -> str:
    result = run("search", "--images-path", library, "--query", query, "--no-cache", *FAST, *extra)
    assert result.exit_code == 0, result.output
    return result.stdout


def _found(output: str) -> dict[str, str]:
    """Match file name -> its views, from a one-query JSON output."""
    return {Path(m["path"]).name: m.get("view") for m in json.loads(output)["matches"]}


def test_a_padded_copy_in_the_library_is_found_only_with_views(folders):
    library, queries = folders

    with_views = _found(_search(library, queries / "bridge.jpg", "--format", "json", "--views", "y"))
    without = json.loads(_search(library, queries / "bridge.jpg", "--format", "json"))

    assert with_views == {"bridge_padded.jpg": "trimmed ~ whole"}
    assert without["matches"] == []


def test_a_cropped_query_finds_its_original_only_with_views(folders):
    library, queries = folders

    with_views = _search(library, queries / "elephants_crop10.jpg", "--format", "csv", "--views", "y")
    without = _search(library, queries / "elephants_crop10.jpg", "--format", "csv")

    rows = list(csv.DictReader(with_views.splitlines()))
    assert with_views.splitlines()[0] == PLAIN_CSV + ",view"
    assert [(Path(row["path"]).name, row["view"]) for row in rows] == [("elephants.jpg", "centre 85% ~ whole")]
    assert int(rows[0]["bits"]) <= 14
    assert without.splitlines() == [PLAIN_CSV]  # no match, and the columns of before


def test_the_table_shows_the_views_in_a_column(folders):
    library, queries = folders

    table = _search(library, queries / "ladybird.jpg", "--views", "y").splitlines()
    plain = _search(library, queries / "elephants_crop10.jpg", "--threshold", "64", "--colour", "n").splitlines()

    assert table[0].split() == ["distance", "bits", "size", "view", "path"]
    assert table[1].split()[3:] == ["whole", "~", "centre", "85%", str(library / "ladybird_crop10.jpg")]
    assert table[0].index("view") == table[1].index("whole")  # one column
    assert plain[0] == f"{'distance':>8}  {'bits':>4}  {'size':>11}  path"  # as before


def test_a_query_folder_names_the_views_of_each_match(folders, tmp_path):
    library, queries = folders

    output = _search(library, queries, "--format", "json", "--views", "y", "--output-path", tmp_path / "out")
    table = _search(library, queries, "--views", "y")

    found = {Path(m["query"]).name: (Path(m["path"]).name, m["view"]) for m in json.loads(output)["matches"]}
    assert found == {
        "bridge.jpg": ("bridge_padded.jpg", "trimmed ~ whole"),  # the library's padded copy of the query
        "elephants_crop10.jpg": ("elephants.jpg", "centre 85% ~ whole"),  # a cropped query, its original
        "elephants_padded.jpg": ("elephants.jpg", "whole ~ trimmed"),  # a padded query, its original
        "ladybird.jpg": ("ladybird_crop10.jpg", "whole ~ centre 85%"),  # the library's cropped copy
    }  # storm's copy is recoloured; aqua's is mirrored, which takes --isometric
    assert json.loads(output)["queries"] == 6
    assert f"{queries / 'bridge.jpg'}  ->  {library / 'bridge_padded.jpg'}  [trimmed ~ whole]" in table
    written = next((tmp_path / "out").glob("search-*/matches.csv"))
    with open(written, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {Path(row["query"]).name: (Path(row["path"]).name, row["view"]) for row in rows} == found
    plain = json.loads(_search(library, queries, "--format", "json"))
    assert plain["matches"] == []  # a global hash sees none of these copies


def test_views_and_orientations_together_find_a_mirrored_padded_copy(folders):
    library, queries = folders

    both = _found(_search(library, queries / "aqua.jpg", "--format", "json", "--views", "y", "--isometric", "y"))
    views_only = _found(_search(library, queries / "aqua.jpg", "--format", "json", "--views", "y"))

    assert both == {"aqua_mirrored.jpg": "trimmed ~ mirrored"}
    assert views_only == {}


def test_a_recoloured_copy_is_still_rejected(folders):
    library, queries = folders

    checked = _found(_search(library, queries / "storm.jpg", "--format", "json", "--views", "y"))
    unchecked = _found(_search(library, queries / "storm.jpg", "--format", "json", "--views", "y", "--colour", "n"))

    assert checked == {}
    assert set(unchecked) == {"storm_recoloured.jpg"}  # its hash does match (in a view): colour rules it out


@pytest.mark.parametrize("isometric", [False, True], ids=["views", "views+isometric"])
def test_search_finds_the_pairs_delete_finds_between_queries_and_library(folders, isometric):
    library, queries = folders
    settings = HashSettings("phash", 8, isometric=isometric, views=True)
    match = MatchSettings(max_bits=14)
    library_files, query_files = sorted(library.iterdir()), sorted(queries.iterdir())
    together = hash_collection(library_files + query_files, settings)
    first, second, bits = Matcher(together, match).pairs()
    names = [Path(path).name for path in together.paths]
    query_names = {path.name for path in query_files}
    by_delete = {tuple(sorted((names[a], names[b]))): int(d) for a, b, d in zip(first, second, bits, strict=True)
                 if (names[a] in query_names) != (names[b] in query_names)}

    hashed_library, hashed_queries = hash_collection(library_files, settings), hash_collection(query_files, settings)
    query_rows, rows, found_bits, views = Matcher(hashed_library, match).matches_views(hashed_queries)
    by_search = {tuple(sorted((Path(hashed_queries.paths[q]).name, Path(hashed_library.paths[r]).name))): int(d)
                 for q, r, d in zip(query_rows, rows, found_bits, strict=True)}

    assert by_search == by_delete
    assert len(by_delete) == (5 if isometric else 4)
    assert "whole" not in views


def test_the_query_s_views_come_from_the_cache(folders, tmp_path, monkeypatch):
    library, queries = folders
    cache = tmp_path / "hashes.sqlite"
    arguments = ("search", "--images-path", library, "--query", queries / "bridge.jpg", "--cache", cache,
                 "--format", "json", "--views", "y", *FAST)
    first = run(*arguments)

    def refuse(*args, **kwargs):
        raise AssertionError("decoded although the cache holds the views")

    monkeypatch.setattr(dedup_cli.fingerprint.hashing, "load_image", refuse)
    second = run(*arguments)

    assert first.exit_code == 0 and second.exit_code == 0, second.output
    assert second.stdout == first.stdout
    assert _found(second.stdout) == {"bridge_padded.jpg": "trimmed ~ whole"}


def test_an_unreadable_query_says_so_with_views(folders, tmp_path):
    library, _ = folders
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a picture")

    result = run("search", "--images-path", library, "--query", broken, "--views", "y", "--no-cache", *FAST)

    assert result.exit_code != 0 and "broken.jpg" in result.output and "Traceback" not in result.output
