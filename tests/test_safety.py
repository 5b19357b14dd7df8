"""Regression tests for the data-loss defects of the issue "Deletion you can trust":
each one reproduces a way a user could lose or mislay a picture, on real files."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import REPO, photo, tree_digest
from PIL import Image

from dedup_cli.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def run_folder(output: Path) -> Path:
    (folder,) = [p for p in output.iterdir() if p.is_dir()]
    return folder


def groups_of_three(root: Path, count: int) -> list[list[Path]]:
    """`count` distinct pictures, each as three copies with distinct mtimes."""
    groups = []
    for seed in range(count):
        picture = photo(1000 + seed, size=(96, 72))
        paths = []
        for copy, quality in enumerate((95, 85, 75)):
            path = root / f"g{seed:03d}_{copy}.jpg"
            picture.save(path, quality=quality)
            os.utime(path, ns=(10**18 + copy * 10**12, 10**18 + copy * 10**12))
            paths.append(path)
        groups.append(paths)
    return groups


# --- Two runs at once -----------------------------------------------------------------

@pytest.mark.slow
def test_two_concurrent_real_runs_with_opposite_keep_policies_lose_no_group(tmp_path):
    # Each run's plan keeps the file the other removes; with --backup-duplicate n the old
    # code emptied groups for good (283 of 900 in 3 trials of this size, where the two
    # runs' actions overlap). Now one run holds the folder and the other stops.
    root = tmp_path / "library"
    root.mkdir()
    groups = groups_of_three(root, 300)
    env = os.environ | {"PYTHONPATH": str(REPO)}
    commands = [[sys.executable, "-m", "dedup_cli", "delete", "--images-path", str(root), "--output-path",
                 str(tmp_path / f"out-{policy}"), "--safe-deletion", "n", "--backup-duplicate", "n",
                 "--keep", policy, "--no-cache", "--no-progress", "--parallel", "n"]
                for policy in ("oldest", "newest")]
    processes = [subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for c in commands]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert all(sum(path.exists() for path in group) >= 1 for group in groups)
    codes = sorted(p.returncode for p in processes)
    messages = b"".join(err for _, err in outputs).decode()
    # Either the runs did not overlap (both finished), or the second was refused.
    assert codes == [0, 0] or (codes == [0, 1] and "Another dedup run" in messages), messages


def test_a_real_run_stops_while_another_holds_the_folder_or_one_above_it(small_library, tmp_path):
    from dedup_cli.act.lock import FolderLock

    before = tree_digest(small_library)
    with FolderLock(small_library.parent, "test"):
        result = run("delete", "--images-path", small_library, "--output-path", tmp_path / "out",
                     "--safe-deletion", "n")
        assert result.exit_code == 1 and "Another dedup run" in result.output
        dry = run("delete", "--images-path", small_library, "--output-path", tmp_path / "dry")
        assert dry.exit_code == 0  # a dry run changes nothing and needs no lock
    assert tree_digest(small_library) == before
    assert run("delete", "--images-path", small_library, "--output-path", tmp_path / "out",
               "--safe-deletion", "n").exit_code == 0


def test_a_removal_is_skipped_when_its_kept_file_went_away_after_planning(small_library, tmp_path):
    from dedup_cli.act import actions
    from dedup_cli.pipeline import CollectionOptions, collect
    from dedup_cli.plan.grouping import make_plan

    options = CollectionOptions(small_library, workers=1)
    hashed = collect(options).hashed
    plan = make_plan(hashed, options.match_settings, options.index_settings)
    group = plan.groups[0]
    kept = Path(hashed.paths[group.keep[0]])
    shutil.move(kept, tmp_path / "elsewhere.png")  # another program took the kept file
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    steps, keeps = actions.plan_steps(plan, hashed)
    outcomes = actions.carry_out(steps, keeps, small_library, run_dir, actions.ActionSettings("delete"))
    for removal in group.remove:
        assert Path(hashed.paths[removal.row]).exists()
    skipped = [o for o in outcomes if o.status == "skipped"]
    assert len(skipped) == len(group.remove) and all("kept file" in o.reason for o in skipped)


# --- Strict booleans ------------------------------------------------------------------

@pytest.mark.parametrize("spelling", ["", "on", "t", "nope"])
def test_an_empty_or_unknown_boolean_is_a_usage_error_and_moves_nothing(small_library, tmp_path, spelling):
    before = tree_digest(small_library)
    result = run("delete", "--images-path", small_library, "--output-path", tmp_path / "out",
                 "--safe-deletion", spelling)
    assert result.exit_code == 2 and "y/n" in result.output
    assert tree_digest(small_library) == before and not (tmp_path / "out").exists()


# --- The keep policy keeps the better copy --------------------------------------------

def test_the_colour_original_is_kept_over_grey_palette_cmyk_and_16_bit_copies(tmp_path):
    root = tmp_path / "library"
    root.mkdir()
    original = photo(7, size=(320, 240))
    original.save(root / "original.jpg", quality=80)
    original.convert("L").save(root / "grey.png")
    Image.fromarray(np.asarray(original.convert("L"), dtype=np.uint16) * 257).save(root / "grey16.png")
    original.convert("P", palette=Image.Palette.ADAPTIVE, colors=64).save(root / "palette.png")
    original.convert("CMYK").save(root / "cmyk.jpg", quality=98)
    sizes = {p.name: p.stat().st_size for p in root.iterdir()}
    assert all(sizes[name] > sizes["original.jpg"] for name in ("grey16.png", "palette.png", "cmyk.jpg"))
    result = run("delete", "--images-path", root, "--output-path", tmp_path / "out")
    assert result.exit_code == 0, result.output
    report = json.loads((run_folder(tmp_path / "out") / "report.json").read_text())
    kept = [Path(k["path"]).name for g in report["groups"] for k in g["keep"]]
    removed = {Path(r["path"]).name for g in report["groups"] for r in g["remove"]}
    assert kept == ["original.jpg"]
    assert removed == {"grey.png", "grey16.png", "palette.png", "cmyk.jpg"}


def test_a_lossless_copy_is_kept_over_a_larger_jpeg_of_the_same_size():
    from dedup_cli.fingerprint.hashing import HashedFiles, HashSettings
    from dedup_cli.plan.grouping import keep_order

    hashed = HashedFiles(settings=HashSettings(colour=False), paths=["/a.jpg", "/b.png"],
                         packed=np.zeros((2, 8), dtype=np.uint8), width=np.array([10, 10]),
                         height=np.array([10, 10]), size=np.array([900, 500]), mtime_ns=np.array([0, 0]),
                         facts=np.array([[0, 8, 0, 1], [0, 8, 1, 1]], dtype=np.int32))
    assert keep_order([0, 1], hashed, "resolution") == [1, 0]
    assert keep_order([0, 1], hashed, "size") == [0, 1]  # asked for the largest file: it wins


def test_an_animated_gif_is_never_removed_because_of_its_first_frame(tmp_path):
    root = tmp_path / "library"
    root.mkdir()
    first, second = photo(3, size=(160, 120)), photo(3, size=(160, 120)).transpose(Image.Transpose.ROTATE_180)
    first.save(root / "animation.gif", save_all=True, append_images=[second], duration=200)
    first.resize((320, 240)).save(root / "still.png")  # the still even has more pixels
    result = run("delete", "--images-path", root, "--output-path", tmp_path / "out", "--safe-deletion", "n")
    assert result.exit_code == 0, result.output
    assert (root / "animation.gif").exists() and (root / "still.png").exists()
    assert Image.open(root / "animation.gif").n_frames == 2


def test_files_in_a_reference_folder_are_kept_first_and_never_removed(small_library, tmp_path):
    reference = tmp_path / "reference"
    reference.mkdir()
    photo(0).resize((100, 75)).save(reference / "pic0_thumb.jpg", quality=60)  # worse than the library's
    result = run("delete", "--images-path", small_library, "--reference", reference, "--output-path",
                 tmp_path / "out", "--safe-deletion", "n")
    assert result.exit_code == 0, result.output
    assert (reference / "pic0_thumb.jpg").exists()
    report = json.loads((run_folder(tmp_path / "out") / "report.json").read_text())
    kept = {k["path"] for g in report["groups"] for k in g["keep"]}
    assert str(reference / "pic0_thumb.jpg") in kept
    assert not (small_library / "pic0.png").exists()  # removed because of the reference
    assert not any(str(reference) in r["path"] for g in report["groups"] for r in g["remove"])


# --- Names that are not UTF-8 -----------------------------------------------------------

@pytest.mark.skipif(sys.platform == "darwin", reason="macOS file systems refuse names that are not UTF-8")
def test_a_name_that_is_not_utf8_round_trips_through_a_real_run(tmp_path):
    root = tmp_path / "library"
    root.mkdir()
    odd = os.fsdecode(b"caf\xe9 \xff.png")
    picture = photo(5)
    picture.save(root / "plain.jpg", quality=70)
    picture.save(root / odd)
    result = run("delete", "--images-path", root, "--output-path", tmp_path / "out", "--safe-deletion", "n")
    assert result.exit_code == 0, result.output
    folder = run_folder(tmp_path / "out")
    report = json.loads((folder / "report.json").read_text())
    (kept,) = [k["path"] for g in report["groups"] for k in g["keep"]]
    assert os.fsencode(kept) == os.fsencode(str(root)) + b"/caf\xe9 \xff.png"
    assert (root / odd).exists() and not (root / "plain.jpg").exists()
    assert b"caf\xe9 \xff.png" in next(folder.glob("duplicates_keep_*.csv")).read_bytes()
    # and the hash cache took it: the second run reads it from there
    assert "(1 from cache)" in run("delete", "--images-path", root, "--output-path", tmp_path / "again").output


# --- Folders that cannot be read, a home that cannot be written ---------------------------

def test_a_folder_that_cannot_be_listed_is_reported_and_the_rest_goes_on(small_library, tmp_path, monkeypatch):
    # Tests run as root here, whom permissions do not stop: the refusal is simulated.
    locked = small_library / "sub" / "deeper"
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = run("delete", "--images-path", small_library, "--output-path", tmp_path / "out")
    assert result.exit_code == 0, result.output
    report = json.loads((run_folder(tmp_path / "out") / "report.json").read_text())
    assert {"path": str(locked), "reason": "cannot list folder: permission denied"} in report["skipped"]
    assert report["summary"]["scanned"] == 7


def test_a_folder_that_cannot_be_entered_is_reported_not_fatal(small_library, tmp_path, monkeypatch):
    locked = small_library / "sub"
    real_exists = Path.exists

    def exists(self, *args, **kwargs):
        if locked in self.parents:
            raise PermissionError(13, "Permission denied", str(self))
        return real_exists(self, *args, **kwargs)

    monkeypatch.setattr(Path, "exists", exists)
    result = run("delete", "--images-path", small_library, "--output-path", tmp_path / "out")
    assert result.exit_code == 0, result.output
    report = json.loads((run_folder(tmp_path / "out") / "report.json").read_text())
    assert {"path": str(locked), "reason": "cannot enter folder: permission denied"} in report["skipped"]


def test_an_unusable_home_gives_a_warning_not_a_failed_run(small_library, tmp_path):
    not_a_folder = tmp_path / "home-file"
    not_a_folder.write_text("a file where the home folder should be")
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")} | {
        "HOME": str(not_a_folder), "PYTHONPATH": str(REPO)}
    completed = subprocess.run([sys.executable, "-m", "dedup_cli", "delete", "--images-path", str(small_library),
                                "--output-path", str(tmp_path / "out"), "--safe-deletion", "n"],
                               env=env, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert "hash cache folder" in completed.stderr and "in-memory" in completed.stderr
    assert "Removed 6 files" in completed.stdout  # the lock folder fell back too


# --- Output folders -------------------------------------------------------------------

@pytest.mark.parametrize("where", ["same", "parent"])
def test_an_output_folder_at_or_above_the_images_is_refused_up_front(small_library, where):
    output = small_library if where == "same" else small_library.parent
    before = tree_digest(small_library)
    for command in (["delete"], ["show"], ["search", "--query", small_library / "pic0.png"]):
        result = run(*command, "--images-path", small_library, "--output-path", output)
        assert result.exit_code == 1 and "--output-path" in result.output, result.output
    assert tree_digest(small_library) == before
    assert not (output / ".dedup-output").exists()
    assert run("delete", "--images-path", small_library, "--output-path", small_library / "runs").exit_code == 0


# --- Files that changed, moves that failed --------------------------------------------------

def test_a_file_replaced_with_the_same_size_and_mtime_is_not_moved(tmp_path):
    from dedup_cli.act import actions
    from dedup_cli.pipeline import CollectionOptions, collect
    from dedup_cli.plan.grouping import make_plan

    root = tmp_path / "library"
    root.mkdir()
    photo(1).save(root / "a.png")
    photo(1).save(root / "b.bmp")
    options = CollectionOptions(root, workers=1)
    hashed = collect(options).hashed
    plan = make_plan(hashed, options.match_settings, options.index_settings)
    (removal,) = plan.removals
    victim = Path(hashed.paths[removal.row])
    info = victim.stat()
    data = bytearray(victim.read_bytes())
    data[-1] ^= 0xFF  # another picture, byte for byte the same length
    victim.write_bytes(bytes(data))
    os.utime(victim, ns=(info.st_atime_ns, info.st_mtime_ns))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (outcome,) = actions.carry_out(*actions.plan_steps(plan, hashed), root, run_dir, actions.ActionSettings())
    assert outcome.status == "skipped" and "content changed" in outcome.reason
    assert victim.read_bytes() == bytes(data) and not (run_dir / "remove").exists()


def test_a_move_that_fails_leaves_no_stray_link_in_the_backup(tmp_path, monkeypatch):
    from dedup_cli.act import actions

    source = tmp_path / "images" / "a.png"
    source.parent.mkdir()
    photo(2).save(source)
    destination = tmp_path / "run" / "remove" / "a.png"
    real_unlink = os.unlink

    def unlink(path, *args, **kwargs):
        if Path(path) == source:  # a read-only folder, as root cannot have one
            raise PermissionError(13, "Permission denied", str(path))
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink)
    with pytest.raises(PermissionError):
        actions.move_file(str(source), destination)
    assert source.exists() and not destination.exists()


# --- Worker processes die with their run ------------------------------------------------

def _children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.update(int(child) for child in text)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_hashing_workers_exit_when_their_run_is_killed(tmp_path):
    root = tmp_path / "library"
    root.mkdir()
    picture = photo(4, size=(1200, 900))
    for number in range(40):
        picture.save(root / f"{number:03d}.png", compress_level=1)
    env = os.environ | {"PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "dedup_cli", "delete", "--images-path", str(root),
                                "--output-path", str(tmp_path / "out"), "--no-cache", "--workers", "2",
                                "--batch-size", "1", "--full-decode"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    workers: set[int] = set()
    while time.monotonic() < deadline and len(workers) < 2:
        if process.poll() is not None:
            pytest.fail("the run ended before its workers could be seen")
        workers = _children(process.pid)
        time.sleep(0.05)
    assert len(workers) >= 2
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)


# --- Formats ----------------------------------------------------------------------------

def test_heic_and_avif_copies_are_read_and_unsupported_pictures_are_listed(tmp_path):
    root = tmp_path / "library"
    root.mkdir()
    picture = photo(6)
    picture.save(root / "original.png")
    picture.save(root / "phone.heic", quality=70)
    picture.save(root / "web.avif", quality=60)
    (root / "camera.cr2").write_bytes(b"II*\x00raw data")
    (root / "broken.heic").write_bytes(b"not a heic file at all")
    result = run("delete", "--images-path", root, "--output-path", tmp_path / "out")
    assert result.exit_code == 0, result.output
    report = json.loads((run_folder(tmp_path / "out") / "report.json").read_text())
    grouped = {Path(f["path"]).name for g in report["groups"] for f in [*g["keep"], *g["remove"]]}
    assert grouped == {"original.png", "phone.heic", "web.avif"}
    assert {Path(u["path"]).name for u in report["unreadable"]} == {"broken.heic"}
    assert any(Path(s["path"]).name == "camera.cr2" and "raw" in s["reason"] for s in report["skipped"])


# --- The console ----------------------------------------------------------------------------

def test_a_closed_pipe_ends_quietly(small_library):
    env = os.environ | {"PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "dedup_cli", "search", "--images-path", str(small_library),
                                "--query", str(small_library / "pic0.png"), "--format", "csv"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # the reader is gone before dedup writes (| head -0)
    errors = process.stderr.read().decode()
    process.wait(timeout=60)
    assert "Error" not in errors and "Traceback" not in errors


def test_progress_frames_go_to_a_terminal_only(small_library, tmp_path):
    result = run("delete", "--images-path", small_library, "--output-path", tmp_path / "out", "--progress")
    assert result.exit_code == 0 and "hashing" not in result.stderr and "img/s" not in result.stderr
