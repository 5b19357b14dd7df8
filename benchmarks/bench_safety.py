"""Safety under attack, in numbers: files lost across kill/undo cycles and concurrent runs,
and what the content digest costs a cold run.

    python benchmarks/bench_safety.py [--cycles 100] [--concurrent 20] [--digest-folder DIR]

1. Kill/undo: a real `delete` over 300 files (100 pictures in 3 copies) is SIGKILLed at a
   random moment (half of them among the moves); every original's bytes must then exist in
   place or in the run's backup, and `undo` must give back the folder byte for byte.
2. Concurrent runs: two real runs with opposite keep policies (oldest, newest) and
   --backup-duplicate n on --groups groups of 3 copies, started together; a group with no
   file left is a loss.
3. The digest: cold dry runs (--no-cache) over DIR with the content digest as shipped and
   with it replaced by a constant, alternating, median of 3 each.
Target for 1 and 2: 0 files lost; for 3: under 10% slower.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import DEFAULT_BENCH, REPO
from PIL import Image

ENV = os.environ | {"PYTHONPATH": str(REPO)}
DEDUP = [sys.executable, "-m", "dedup_cli"]


def picture(seed: int, size=(64, 48)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)).resize(size, Image.Resampling.BICUBIC)


def digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def make_library(root: Path, pictures: int) -> None:
    root.mkdir(parents=True)
    for seed in range(pictures):
        image = picture(7000 + seed)
        image.save(root / f"p{seed:03d}.png")
        image.save(root / f"p{seed:03d}_q80.jpg", quality=80)
        image.resize((48, 36)).save(root / f"p{seed:03d}_small.jpg", quality=90)


def kill_cycle(source: Path, work: Path, rng: random.Random, in_actions: bool) -> tuple[int, int, bool]:
    """(originals whose bytes are nowhere after the kill, files not restored by undo,
    whether the kill landed among the moves)."""
    images, output = work / "images", work / "out"
    shutil.copytree(source, images)
    original = digests(images)
    process = subprocess.Popen([*DEDUP, "delete", "--images-path", str(images), "--output-path", str(output),
                                "--safe-deletion", "n", "--no-cache", "--no-progress"], env=ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Among the moves: as soon as the journal holds a random number of lines (200 moves
    # write 400), whatever the machine's speed; otherwise at a random moment of the run.
    lines = rng.randint(1, 398) if in_actions else 0
    while lines and process.poll() is None:
        journals = list(output.glob("delete-*/journal.jsonl"))
        if journals and journals[0].read_bytes().count(b"\n") >= lines:
            break
        time.sleep(0.001)
    time.sleep(0.0 if in_actions else rng.uniform(0.2, 3.0))
    process.send_signal(signal.SIGKILL)
    process.wait()
    found = set(digests(images).values())
    folders = list(output.glob("delete-*"))
    for folder in folders:
        if (folder / "remove").exists():
            found |= set(digests(folder / "remove").values())
    lost = sum(1 for value in original.values() if value not in found)
    landed = False
    for folder in folders:
        journal = folder / "journal.jsonl"
        if journal.exists():
            done = journal.read_text().count('"done"')
            landed = landed or 0 < done < 200
            subprocess.run([*DEDUP, "undo", str(folder)], env=ENV, capture_output=True)
    after = digests(images)
    unrestored = sum(1 for name, value in original.items() if after.get(name) != value)
    shutil.rmtree(work)
    return lost, unrestored, landed


def concurrent_trial(work: Path, group_count: int) -> int:
    """Groups left with no file after two opposite real runs at once."""
    images = work / "images"
    images.mkdir(parents=True)
    groups = []
    for seed in range(group_count):
        image = picture(9000 + seed, size=(96, 72))
        paths = []
        for copy, quality in enumerate((95, 85, 75)):
            path = images / f"g{seed:03d}_{copy}.jpg"
            image.save(path, quality=quality)
            os.utime(path, ns=(10**18 + copy * 10**12,) * 2)
            paths.append(path)
        groups.append(paths)
    processes = [subprocess.Popen([*DEDUP, "delete", "--images-path", str(images), "--output-path",
                                   str(work / f"out-{policy}"), "--safe-deletion", "n", "--backup-duplicate", "n",
                                   "--keep", policy, "--no-cache", "--no-progress", "--parallel", "n"],
                                  env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for policy in ("oldest", "newest")]
    for process in processes:
        process.wait()
    emptied = sum(1 for paths in groups if not any(p.exists() for p in paths))
    shutil.rmtree(work)
    return emptied


DIGEST_OFF = ("import sys; import dedup_cli.fingerprint.hashing as h; h.content_digest = lambda path: bytes(16); "
              "from dedup_cli.cli import main; sys.argv[0] = 'dedup'; main()")


def cold_run_seconds(folder: Path, digest: bool) -> float:
    launcher = [*DEDUP] if digest else [sys.executable, "-c", DIGEST_OFF]
    with tempfile.TemporaryDirectory() as output:
        start = time.perf_counter()
        subprocess.run([*launcher, "delete", "--images-path", str(folder), "--output-path", output,
                        "--no-cache", "--no-progress"], env=ENV, capture_output=True, check=True)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--concurrent", type=int, default=20)
    parser.add_argument("--groups", type=int, default=300,
                        help="groups of 3 per concurrent trial (enough that the two runs' actions overlap)")
    parser.add_argument("--digest-folder", type=Path, default=None,
                        help="folder for the digest cost (default: ../shared/bench/wallpapers if present)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        source = scratch / "source"
        make_library(source, 100)
        rng = random.Random(2026)
        lost = unrestored = landed = 0
        for cycle in range(args.cycles):
            a, b, c = kill_cycle(source, scratch / f"cycle-{cycle}", rng, in_actions=cycle % 2 == 1)
            lost, unrestored, landed = lost + a, unrestored + b, landed + c
        print(f"kill/undo cycles: {args.cycles} (300 files each, {landed} killed among the moves): "
              f"{lost} files lost after the kills, {unrestored} not restored by undo (target 0)")
        emptied = sum(concurrent_trial(scratch / f"concurrent-{t}", args.groups) for t in range(args.concurrent))
        print(f"concurrent opposite runs: {args.concurrent} trials of {args.groups} groups: {emptied} groups lost "
              "(target 0)")

    folder = args.digest_folder or DEFAULT_BENCH / "wallpapers"
    if not folder.is_dir():
        print(f"digest cost: skipped ({folder} not found; pass --digest-folder)")
        return
    timings = {True: [], False: []}
    for _ in range(args.repeats):
        for digest in (False, True):
            timings[digest].append(cold_run_seconds(folder, digest))
    with_digest, without = statistics.median(timings[True]), statistics.median(timings[False])
    files = sum(1 for p in folder.rglob("*") if p.is_file())
    print(f"digest cost on {folder} ({files} files), cold dry run, median of {args.repeats}: "
          f"{with_digest:.2f} s with the digest, {without:.2f} s without: {100 * (with_digest / without - 1):+.1f}% "
          "(target under +10%)")


if __name__ == "__main__":
    main()
