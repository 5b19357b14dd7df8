"""apply, undo and the actions on real files: a saved plan carried out later with checks,
every action undone byte for byte, and kills at any moment losing nothing."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO, photo, tree_digest
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup_cli.act.apply import plan_from_report
from dedup_cli.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def dry_run(images: Path, output: Path, *extra) -> Path:
    result = run("delete", "--images-path", images, "--output-path", output, *extra)
    assert result.exit_code == 0, result.output
    (folder,) = [p for p in output.iterdir() if p.is_dir()]
    return folder


def planned(folder: Path) -> tuple[set[str], set[str]]:
    report = json.loads((folder / "report.json").read_text())
    kept = {k["path"] for g in report["groups"] for k in g["keep"]}
    removed = {r["path"] for g in report["groups"] for r in g["remove"]}
    return kept, removed


def test_apply_carries_out_a_dry_run_and_undo_restores_every_byte(small_library, tmp_path):
    before = tree_digest(small_library)
    folder = dry_run(small_library, tmp_path / "out")
    assert tree_digest(small_library) == before  # the dry run changed nothing
    kept, removed = planned(folder)
    result = run("apply", folder)
    assert result.exit_code == 0 and "Removed 6 files; 0 skipped" in result.output, result.output
    assert all(not Path(p).exists() for p in removed) and all(Path(p).exists() for p in kept)
    assert len(tree_digest(folder / "remove")) == 6
    again = run("apply", folder)  # nothing left to do, nothing done twice
    assert again.exit_code == 0 and "Removed 0 files" in again.output and "6 done by an earlier run" in again.output
    undone = run("undo", folder)
    assert undone.exit_code == 0 and "Restored 6 files" in undone.output, undone.output
    assert tree_digest(small_library) == before
    twice = run("undo", folder)
    assert twice.exit_code == 0 and "Restored 0 files; 6 already in place" in twice.output
    assert tree_digest(small_library) == before


def test_apply_skips_a_file_changed_after_the_scan_with_the_same_size_and_mtime(small_library, tmp_path):
    folder = dry_run(small_library, tmp_path / "out")
    _, removed = planned(folder)
    victim = Path(sorted(removed)[0])
    info = victim.stat()
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x55
    victim.write_bytes(bytes(data))
    os.utime(victim, ns=(info.st_atime_ns, info.st_mtime_ns))
    result = run("apply", folder)
    assert result.exit_code == 0 and "Removed 5 files; 1 skipped" in result.output
    assert f"Skipped '{victim}': file content changed since the scan" in result.stderr
    assert victim.read_bytes() == bytes(data)


def test_apply_skips_removals_whose_kept_file_is_gone(small_library, tmp_path):
    folder = dry_run(small_library, tmp_path / "out")
    report = json.loads((folder / "report.json").read_text())
    group = report["groups"][0]
    Path(group["keep"][0]["path"]).unlink()
    result = run("apply", folder)
    assert "Removed 4 files; 2 skipped" in result.output
    assert all(Path(r["path"]).exists() for r in group["remove"])


def test_decisions_move_the_keep_choice_but_never_empty_a_group(small_library, tmp_path):
    folder = dry_run(small_library, tmp_path / "out")
    report = json.loads((folder / "report.json").read_text())
    first, second = report["groups"][0], report["groups"][1]
    swapped = first["remove"][0]["path"]
    decisions = {swapped: "keep", first["keep"][0]["path"]: "remove"}
    decisions |= {f["path"]: "remove" for f in (*second["keep"], *second["remove"])}  # would empty it
    (tmp_path / "decisions.json").write_text(json.dumps({"decisions": decisions}))
    result = run("apply", folder, "--decisions", tmp_path / "decisions.json")
    assert result.exit_code == 0, result.output
    assert Path(swapped).exists() and not Path(first["keep"][0]["path"]).exists()
    assert all(Path(f["path"]).exists() for f in (*second["keep"], *second["remove"]))
    assert f"group {second['id']}: the decisions would keep none of its files" in result.stderr


def test_bad_decisions_are_refused_before_anything_changes(small_library, tmp_path):
    folder = dry_run(small_library, tmp_path / "out")
    before = tree_digest(small_library)
    (tmp_path / "bad.json").write_text(json.dumps({"/x.jpg": "maybe"}))
    result = run("apply", folder, "--decisions", tmp_path / "bad.json")
    assert result.exit_code == 1 and "use \"keep\" or \"remove\"" in result.output
    assert tree_digest(small_library) == before


@pytest.mark.parametrize("action", ["trash", "hardlink", "symlink"])
def test_each_action_is_undone_byte_for_byte(small_library, tmp_path, monkeypatch, action):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    before = tree_digest(small_library)
    result = run("delete", "--images-path", small_library, "--output-path", tmp_path / "out",
                 "--safe-deletion", "n", "--action", action)
    assert result.exit_code == 0 and "Removed 6 files" in result.output, result.output
    (folder,) = list((tmp_path / "out").glob("delete-*"))
    report = json.loads((folder / "report.json").read_text())
    for group in report["groups"]:
        for removal in group["remove"]:
            path = Path(removal["path"])
            if action == "trash":
                assert not path.exists()
            elif action == "symlink":
                assert path.is_symlink() and path.resolve() == Path(removal["nearest_keep"]).resolve()
            else:
                assert path.samefile(removal["nearest_keep"]) and not path.is_symlink()
    if action == "trash":
        assert len(list((tmp_path / "xdg-data" / "Trash" / "files").iterdir())) == 6
    undone = run("undo", folder)
    assert undone.exit_code == 0 and "Restored 6 files" in undone.output, undone.output
    assert tree_digest(small_library) == before
    assert not any(p.is_symlink() for p in small_library.rglob("*"))


def test_delete_action_cannot_be_undone_and_says_so(small_library, tmp_path):
    result = run("delete", "--images-path", small_library, "--output-path", tmp_path / "out",
                 "--safe-deletion", "n", "--action", "delete")
    assert result.exit_code == 0 and "Removed 6 files" in result.output
    (folder,) = list((tmp_path / "out").glob("delete-*"))
    undone = run("undo", folder)
    assert undone.exit_code == 1 and "6 not restored" in undone.output
    assert "cannot be restored" in undone.stderr


def test_undo_of_a_dry_run_says_there_is_nothing_to_undo(small_library, tmp_path):
    folder = dry_run(small_library, tmp_path / "out")
    result = run("undo", folder)
    assert result.exit_code == 1 and "dry run" in result.output


def test_hardlinks_across_file_systems_are_refused(tmp_path):
    other = Path("/dev/shm")
    if not other.is_dir() or other.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on another file system than the temporary folder")
    from dedup_cli.act.actions import ActionSettings, FileState, Step, carry_out
    from dedup_cli.media.loading import content_digest

    kept_folder = Path(os.environ.get("TMPDIR_SHM", other)) / f"dedup-test-{os.getpid()}"
    kept_folder.mkdir()
    try:
        kept, duplicate = kept_folder / "kept.png", tmp_path / "duplicate.png"
        photo(1).save(kept)
        photo(1).save(duplicate)
        states = [FileState(str(p), p.stat().st_size, p.stat().st_mtime_ns, content_digest(p))
                  for p in (duplicate, kept)]
        run_folder = tmp_path / "run"
        run_folder.mkdir()
        (outcome,) = carry_out([Step(*states)], [], tmp_path, run_folder, ActionSettings("hardlink"))
        assert outcome.status == "skipped" and "another file system" in outcome.reason
        assert duplicate.exists() and not duplicate.is_symlink()
    finally:
        shutil.rmtree(kept_folder)


# --- The plan after decisions, as a property ------------------------------------------

def _report(groups: list[list[int]], bits: list[int]) -> dict:
    """A report with hand-made groups; member i has a hash with bits[i] ones."""
    def entry(i):
        value = (1 << bits[i]) - 1
        return {"path": f"/img/{i}.jpg", "size": 1, "mtime_ns": 1, "digest": "00" * 16,
                "hash": value.to_bytes(8, "big").hex()}

    out = []
    for number, members in enumerate(groups, start=1):
        keep, *rest = members
        out.append({"id": number, "keep": [entry(keep)],
                    "remove": [entry(i) | {"nearest_keep": f"/img/{keep}.jpg"} for i in rest]})
    return {"settings": {"threshold_bits": 6}, "groups": out}


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_no_decisions_ever_leave_a_group_with_nothing(data):
    sizes = data.draw(st.lists(st.integers(2, 5), min_size=1, max_size=5))
    groups, start = [], 0
    for size in sizes:
        groups.append(list(range(start, start + size)))
        start += size
    bits = data.draw(st.lists(st.integers(0, 12), min_size=start, max_size=start))
    choices = data.draw(st.lists(st.sampled_from(["keep", "remove", None]), min_size=start, max_size=start))
    decisions = {f"/img/{i}.jpg": c for i, c in enumerate(choices) if c}
    steps, keeps, _ = plan_from_report(_report(groups, bits), decisions)
    kept = {k.path for k in keeps}
    removed = {s.remove.path for s in steps}
    for members in groups:
        paths = {f"/img/{i}.jpg" for i in members}
        assert paths & kept, "a group keeps nothing"
        assert paths <= kept | removed
    for step in steps:
        assert step.keep.path in kept and step.remove.path not in kept
        mine, theirs = (int(p.split("/")[-1][:-4]) for p in (step.remove.path, step.keep.path))
        planned_pair = any(m[0] == theirs and mine in m for m in groups)
        assert planned_pair or abs(bits[mine] - bits[theirs]) <= 6  # within the threshold


# --- Kills at any moment ------------------------------------------------------------------

def _library(root: Path, count: int) -> None:
    root.mkdir()
    for seed in range(count // 3):
        picture = photo(5000 + seed, size=(64, 48))
        picture.save(root / f"p{seed:03d}.png")
        picture.save(root / f"p{seed:03d}_q80.jpg", quality=80)
        picture.resize((48, 36)).save(root / f"p{seed:03d}_small.jpg", quality=90)


def _kill_during_run(images: Path, output: Path, moment: float, journal_lines: int = 0) -> None:
    """SIGKILL a real run `moment` seconds after its start, or, with `journal_lines`, as
    soon as its journal holds that many lines (a kill among the moves whatever the
    machine's speed)."""
    env = os.environ | {"PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "dedup_cli", "delete", "--images-path", str(images),
                                "--output-path", str(output), "--safe-deletion", "n", "--no-cache",
                                "--no-progress"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while journal_lines and process.poll() is None and time.monotonic() < deadline:
        journals = list(output.glob("delete-*/journal.jsonl"))
        if journals and journals[0].read_bytes().count(b"\n") >= journal_lines:
            break
        time.sleep(0.001)
    time.sleep(moment)
    process.send_signal(signal.SIGKILL)
    process.wait()


def _interrupted(folder: Path) -> bool:
    """True when the run was killed between its first and its last action."""
    journal = folder / "journal.jsonl"
    if not journal.exists():
        return False
    lines = journal.read_text().splitlines()
    return 0 < sum('"done"' in line for line in lines) < 200


@pytest.mark.slow
def test_kills_at_random_moments_lose_nothing_and_undo_restores_everything(tmp_path):
    source = tmp_path / "source"
    _library(source, 300)  # 100 pictures in 3 copies: 200 moves per run
    original = tree_digest(source)
    contents = set(original.values())
    rng = random.Random(11)
    interrupted = 0
    for trial in range(20):
        images = tmp_path / f"images-{trial}"
        shutil.copytree(source, images)
        output = tmp_path / f"out-{trial}"
        if trial % 2:  # every other kill lands among the moves
            _kill_during_run(images, output, 0.0, journal_lines=rng.randint(1, 398))
        else:
            _kill_during_run(images, output, rng.uniform(0.2, 3.0))
        folders = list(output.glob("delete-*")) if output.exists() else []
        found = set(tree_digest(images).values())
        for folder in folders:
            if (folder / "remove").exists():
                found |= set(tree_digest(folder / "remove").values())
        assert contents <= found, f"trial {trial}: a picture's bytes are gone"
        for folder in folders:
            interrupted += _interrupted(folder)
            if (folder / "journal.jsonl").exists():
                result = run("undo", folder)
                assert result.exit_code == 0, result.output
        assert tree_digest(images) == original, f"trial {trial}: undo did not restore the folder"
    assert interrupted >= 5, "too few kills landed among the moves to test them"


@pytest.mark.slow
def test_apply_finishes_a_killed_run(tmp_path):
    images = tmp_path / "images"
    _library(images, 300)
    output = tmp_path / "out"
    for attempt in range(10):
        _kill_during_run(images, output, 0.0, journal_lines=100 + 20 * attempt)
        (folder,) = list(output.glob("delete-*"))
        if _interrupted(folder):
            break
        run("undo", folder)
        shutil.rmtree(folder)
    else:
        pytest.fail("no kill landed among the moves")
    result = run("apply", folder)
    assert result.exit_code == 0, result.output
    kept, removed = planned(folder)
    assert all(Path(p).exists() for p in kept) and not any(Path(p).exists() for p in removed)
    assert len(list(images.rglob("*.*"))) == 100


def test_a_move_killed_between_its_link_and_its_unlink_is_finished_by_apply(small_library, tmp_path):
    folder = dry_run(small_library, tmp_path / "out")
    _, removed = planned(folder)
    victim = sorted(removed)[0]
    backup = folder / "remove" / Path(victim).relative_to(small_library)
    backup.parent.mkdir(parents=True)
    os.link(victim, backup)  # what a kill leaves: the bytes under both names
    result = run("apply", folder)
    assert result.exit_code == 0 and "Removed 6 files; 0 skipped" in result.output, result.output
    assert not Path(victim).exists() and backup.exists()
