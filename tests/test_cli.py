"""End to end through the CLI on real files: dry runs, real deletions, search, show, errors."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from conftest import DEMO, photo, tree_digest
from PIL import Image

from dedup_cli import __version__
from dedup_cli.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def only_run_folder(output: Path) -> Path:
    folders = [p for p in output.iterdir() if p.is_dir()]
    assert len(folders) == 1
    return folders[0]


def test_version_and_module_entry_point():
    assert run("--version").output.strip() == f"dedup, version {__version__}"
    completed = subprocess.run([sys.executable, "-m", "dedup_cli", "--version"], capture_output=True, text=True)
    assert completed.returncode == 0 and __version__ in completed.stdout


def test_every_command_and_option_has_help():
    for name, command in main.commands.items():
        assert command.help, f"dedup {name} has no help"
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"dedup {name} {param.opts} has no help"
        assert run(name, "--help").exit_code == 0


def test_dry_run_leaves_images_byte_for_byte_unchanged(demo_copy, tmp_path):
    before = tree_digest(demo_copy)
    result = run("delete", "--images-path", demo_copy, "--output-path", tmp_path / "out", "--safe-deletion", "y")
    assert result.exit_code == 0, result.output
    assert tree_digest(demo_copy) == before
    assert "Dry run" in result.output


def test_dry_run_is_the_default_and_writes_reports(demo_copy, tmp_path):
    result = run("delete", "--images-path", demo_copy, "--output-path", tmp_path / "out")
    assert result.exit_code == 0, result.output
    folder = only_run_folder(tmp_path / "out")
    report = json.loads((folder / "report.json").read_text())
    assert report["format_version"] == 2 and report["tool_version"] == __version__
    summary = report["summary"]
    assert summary["dry_run"] and summary["scanned"] == 47 and summary["unreadable"] == 0
    assert summary["remove"] > 20 and summary["groups"] >= 8
    bits = report["settings"]["threshold_bits"]
    with open(folder / f"duplicates_remove_8_dist_{bits}.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == summary["remove"]
    assert all(int(row["bits"]) <= bits for row in rows)
    kept = {k["path"] for g in report["groups"] for k in g["keep"]}
    assert all(row["nearest_keep"] in kept for row in rows)
    assert (folder / f"duplicates_keep_8_dist_{bits}.csv").exists()
    assert f"to remove: {summary['remove']}" in result.output


def test_demo_plan_agrees_with_its_truth(demo_copy, tmp_path):
    result = run("delete", "--images-path", demo_copy, "--output-path", tmp_path / "out")
    assert result.exit_code == 0, result.output
    report = json.loads((only_run_folder(tmp_path / "out") / "report.json").read_text())
    assert any(group["remove"] for group in report["groups"])
    with open(DEMO / "truth.csv", newline="") as handle:
        truth = {str(demo_copy / row["file"]): row["group"] for row in csv.DictReader(handle)}
    for group in report["groups"]:
        for removal in group["remove"]:
            assert truth[removal["path"]] == truth[removal["nearest_keep"]], result.output


def test_each_run_gets_a_new_folder(small_library, tmp_path):
    for _ in range(3):
        assert run("delete", "--images-path", small_library, "--output-path", tmp_path / "out").exit_code == 0
    assert len([p for p in (tmp_path / "out").iterdir() if p.is_dir()]) == 3


def test_real_deletion_moves_duplicates_into_the_backup_and_journals_them(small_library, tmp_path):
    before = tree_digest(small_library)
    result = run("delete", "--images-path", small_library, "--output-path", tmp_path / "out",
                 "--safe-deletion", "n", "--backup-keep", "y")
    assert result.exit_code == 0, result.output
    folder = only_run_folder(tmp_path / "out")
    report = json.loads((folder / "report.json").read_text())
    removed = [r["path"] for g in report["groups"] for r in g["remove"]]
    kept = [k["path"] for g in report["groups"] for k in g["keep"]]
    assert len(removed) == 6 and len(kept) == 3  # three pictures, two copies each
    after = tree_digest(small_library)
    relative_removed = {str(Path(p).relative_to(small_library)) for p in removed}
    assert set(before) - set(after) == relative_removed  # nothing else moved
    for relative in relative_removed:
        assert tree_digest(folder / "remove")[relative] == before[relative]
    assert set(tree_digest(folder / "keep")) == {str(Path(p).relative_to(small_library)) for p in kept}
    journal = [json.loads(line) for line in (folder / "journal.jsonl").read_text().splitlines()]
    moves = [e for e in journal if e["action"] == "move"]
    assert {e["path"] for e in moves if e["state"] == "intent"} == set(removed)
    assert {e["path"] for e in moves if e["state"] == "done"} == set(removed)
    assert report["summary"]["removed"] == 6


def test_backup_duplicate_n_unlinks(small_library, tmp_path):
    result = run("delete", "--images-path", small_library, "--output-path", tmp_path / "out",
                 "--safe-deletion", "n", "--backup-duplicate", "n")
    assert result.exit_code == 0
    folder = only_run_folder(tmp_path / "out")
    assert not (folder / "remove").exists()
    assert len(list(small_library.rglob("*.*"))) == 4
    journal = (folder / "journal.jsonl").read_text()
    assert journal.count('"delete"') == 12  # an intent and a done line per file


def test_output_inside_images_path_is_never_scanned(small_library):
    for _ in range(2):
        result = run("delete", "--images-path", small_library, "--output-path", small_library / "dedup-output",
                     "--safe-deletion", "n")
        assert result.exit_code == 0
    assert "Scanned 4 images" in result.output  # the second run saw only the kept files


def test_unreadable_files_are_reported_and_skipped(small_library, tmp_path):
    (small_library / "zero.jpg").write_bytes(b"")
    (small_library / "notes.png").write_text("hello")
    good = (small_library / "pic0.png").read_bytes()
    (small_library / "cut.png").write_bytes(good[: len(good) // 2])
    result = run("delete", "--images-path", small_library, "--output-path", tmp_path / "out")
    assert result.exit_code == 0
    assert f"Cannot read '{small_library / 'zero.jpg'}': empty file (0 bytes) (skipped)" in result.stderr
    assert "notes.png" in result.stderr and "cut.png" in result.stderr
    report = json.loads((only_run_folder(tmp_path / "out") / "report.json").read_text())
    assert {Path(u["path"]).name for u in report["unreadable"]} == {"zero.jpg", "notes.png", "cut.png"}
    assert "Traceback" not in result.output


def test_nothing_readable_exits_1_and_empty_folder_says_so(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.jpg").write_bytes(b"")
    result = run("delete", "--images-path", broken, "--output-path", tmp_path / "out")
    assert result.exit_code == 1 and "None of the 1 images could be read" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run("delete", "--images-path", empty, "--output-path", tmp_path / "out")
    assert result.exit_code == 0 and "No images found" in result.output


def test_missing_paths_are_one_line_errors(tmp_path):
    result = run("delete", "--images-path", tmp_path / "nope")
    assert result.exit_code == 2 and "does not exist" in result.output and "Traceback" not in result.output
    result = run("search", "--images-path", tmp_path, "--query", tmp_path / "nope.png")
    assert result.exit_code == 2 and "does not exist" in result.output


def test_search_lists_matches_nearest_first_excluding_the_query(small_library, tmp_path):
    query = small_library / "pic1.png"
    result = run("search", "--images-path", small_library, "--query", query, "--format", "json")
    assert result.exit_code == 0, result.output
    matches = json.loads(result.stdout)["matches"]
    assert {Path(m["path"]).name for m in matches} == {"pic1_small.jpg", "pic1_q50.JPG"}
    assert [m["distance"] for m in matches] == sorted(m["distance"] for m in matches)


def test_search_with_outside_relative_query_csv_and_mosaic(small_library, tmp_path, monkeypatch):
    photo(2).resize((200, 150)).save(tmp_path / "outside.jpg")
    monkeypatch.chdir(small_library)
    result = run("search", "--images-path", ".", "--query", "../outside.jpg", "--format", "csv",
                 "--nearest-neighbors", "2", "--output-path", tmp_path / "out")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "path,distance,bits,width,height" and len(lines) == 3
    assert all("pic2" in line for line in lines[1:])
    mosaic = next((tmp_path / "out").glob("search-*/mosaic.png"))
    assert Image.open(mosaic).size == (160 * 3, 178)


def test_search_table_says_when_nothing_matches(small_library):
    result = run("search", "--images-path", small_library, "--query", small_library / "loner.webp")
    assert result.exit_code == 0 and "No image within the threshold" in result.output


@pytest.mark.parametrize("tree", ["mih", "KDTree", "cKDTree"])
def test_metrics_and_trees_agree_through_the_cli(small_library, tmp_path, tree):
    summaries = []
    for metric, threshold in (("manhattan", 10), ("euclidean", 10 ** 0.5), ("l1", 10)):
        out = tmp_path / f"{metric}-{tree}"
        result = run("delete", "--images-path", small_library, "--output-path", out, "--tree-type", tree,
                     "-d", metric, "--threshold", threshold)
        assert result.exit_code == 0, result.output
        report = json.loads((only_run_folder(out) / "report.json").read_text())
        assert report["settings"]["threshold_bits"] == 10
        assert (report["settings"]["distance_metric"], report["settings"]["tree_type"]) == (
            "manhattan" if metric == "l1" else metric, tree)
        summaries.append(report["groups"])
    assert summaries[0] and summaries[0] == summaries[1] == summaries[2]


def test_show_writes_tsne_csv_and_pictures(small_library, tmp_path):
    result = run("show", "--images-path", small_library, "--output-path", tmp_path / "out",
                 "--image-w", "32", "--image-h", "24")
    assert result.exit_code == 0, result.output
    folder = only_run_folder(tmp_path / "out")
    with open(folder / "tsne.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 10 and {"path", "x", "y"} == set(rows[0])
    assert Image.open(folder / "tsne_preview.png").width <= 800
    assert Image.open(folder / "tsne_map.png").width >= 600
    assert Image.open(folder / "tsne_groups.png").size == (700, 700)


def test_boolean_options_accept_the_original_spellings(small_library, tmp_path):
    for spelling in ("y", "yes", "true", "1"):
        result = run("delete", "--images-path", small_library, "--output-path", tmp_path / spelling,
                     "--safe-deletion", spelling)
        assert result.exit_code == 0 and "Dry run" in result.output
    assert run("delete", "--images-path", small_library, "--safe-deletion", "maybe").exit_code == 2


def test_help_and_version_do_not_import_heavy_libraries():
    # dedup --help must stay instant: scikit-learn, scipy, matplotlib, imagehash and numba
    # are imported only by the commands that use them.
    code = ("import sys; from click.testing import CliRunner; from dedup_cli.cli import main; "
            "CliRunner().invoke(main, ['--help']); CliRunner().invoke(main, ['delete', '--help']); "
            "CliRunner().invoke(main, ['match', '--help']); "
            "print(sorted(m for m in ('sklearn', 'scipy', 'matplotlib', 'imagehash', 'tqdm', 'numba') "
            "if m in sys.modules))")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]"


def test_second_run_reads_hashes_from_the_cache_and_no_cache_skips_it(small_library, tmp_path):
    cache = tmp_path / "hashes.sqlite"
    common = ["delete", "--images-path", small_library, "--output-path", tmp_path / "out", "--cache", cache]
    assert "(0 from cache)" in run(*common).output
    assert "(10 from cache)" in run(*common).output
    (small_library / "pic0.png").write_bytes((small_library / "pic1.png").read_bytes())
    assert "(9 from cache)" in run(*common).output
    assert "(0 from cache)" in run(*common[:-2], "--no-cache").output


def test_default_cache_lives_under_xdg_cache_home(small_library, tmp_path):
    run("delete", "--images-path", small_library, "--output-path", tmp_path / "out")
    assert (tmp_path / "xdg-cache" / "dedup" / "hashes.sqlite").exists()


def test_report_reads_back_and_unknown_formats_are_refused(small_library, tmp_path):
    from dedup_cli.runs import read_report

    run("delete", "--images-path", small_library, "--output-path", tmp_path / "out")
    path = next((tmp_path / "out").glob("delete-*/report.json"))
    report = read_report(path)
    assert report["summary"]["remove"] == sum(len(g["remove"]) for g in report["groups"]) == 6
    path.write_text(json.dumps(report | {"format_version": 99}))
    with pytest.raises(ValueError, match="format version"):
        read_report(path)


def test_cli_offers_exactly_the_registered_hash_algorithms():
    from dedup_cli.cli import HASH_ALGORITHMS
    from dedup_cli.fingerprint.hashing import ALGORITHMS

    assert set(HASH_ALGORITHMS) == set(ALGORITHMS)


def test_search_with_a_query_folder_lists_every_query_s_matches(small_library, tmp_path):
    queries = tmp_path / "queries"
    queries.mkdir()
    photo(0).resize((200, 150)).save(queries / "zero.jpg", quality=80)
    photo(2).save(queries / "two.png")
    photo(50).save(queries / "stranger.png")
    (queries / "broken.jpg").write_bytes(b"")
    result = run("search", "--images-path", small_library, "--query", queries, "--format", "csv",
                 "--nearest-neighbors", "2", "--output-path", tmp_path / "out")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(result.stdout.splitlines()))
    by_query = {}
    for row in rows:
        by_query.setdefault(Path(row["query"]).name, []).append(Path(row["path"]).name)
        assert int(row["bits"]) <= 14
    assert set(by_query) == {"zero.jpg", "two.png"}
    assert all(len(found) == 2 for found in by_query.values())  # 3 copies each, k = 2
    assert all(name.startswith("pic0") for name in by_query["zero.jpg"])
    assert all(name.startswith("pic2") for name in by_query["two.png"])
    assert "broken.jpg" in result.stderr
    written = next((tmp_path / "out").glob("search-*/matches.csv"))
    assert len(list(csv.DictReader(written.open()))) == len(rows)
    as_json = json.loads(run("search", "--images-path", small_library, "--query", queries, "--format", "json").stdout)
    assert as_json["queries"] == 3 and len(as_json["matches"]) == 6 and len(as_json["unreadable"]) == 1


def test_a_query_folder_inside_the_images_does_not_match_itself(small_library):
    result = run("search", "--images-path", small_library, "--query", small_library / "sub", "--format", "json",
                 "--nearest-neighbors", "9")
    matches = json.loads(result.stdout)["matches"]
    assert matches and all(m["query"] != m["path"] for m in matches)


def test_the_cli_offers_exactly_the_actions_the_library_carries_out():
    from dedup_cli.act.actions import ACTIONS as CARRIED_OUT
    from dedup_cli.cli import ACTIONS

    assert ACTIONS == CARRIED_OUT


def test_a_warm_run_over_images_loads_no_heavy_library(small_library, tmp_path):
    # A second run over unchanged images reads hashes from the cache and plans them with
    # numpy: numba (about 0.15 s and 60 MB), scikit-learn, scipy, matplotlib, imagehash,
    # PyAV and onnxruntime are for the commands and collections that need them.
    cache, output = tmp_path / "hashes.sqlite", tmp_path / "out"
    code = ("import sys; from dedup_cli.cli import main; "
            f"main(['delete', '--images-path', {str(small_library)!r}, '--output-path', {str(output)!r}, "
            f"'--cache', {str(cache)!r}, '--no-progress'], standalone_mode=False); "
            "print(sorted(m for m in ('numba', 'sklearn', 'scipy', 'matplotlib', 'imagehash', 'av', 'onnxruntime') "
            "if m in sys.modules))")
    subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)  # fills the cache
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip().splitlines()[-1] == "[]"
