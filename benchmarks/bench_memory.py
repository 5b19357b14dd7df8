"""Peak memory of a full `dedup delete` dry run as the library grows: it should stay flat.

    python benchmarks/bench_memory.py [--counts 1000 10000]
    python benchmarks/bench_memory.py --counts 100000 --folder bench-output/pictures --warm 3

With --folder the pictures are kept there (and reused when the folder holds them); --warm N
also times N runs from the cache the cold run filled and prints their median.

Writes the given numbers of small synthetic JPEGs (smooth random pictures, every tenth one
a resized copy of another) into a scratch folder, then runs the dry run in a subprocess per
count and prints its peak RSS (the main process, and its largest worker), time and images/s.
Needs nothing outside the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import REPO, own_peak_rss_mb
from PIL import Image


def make_pictures(folder: Path, count: int) -> None:
    """`count` 320x240 JPEGs in subfolders of 1000; deterministic."""
    rng = np.random.default_rng(0)
    for number in range(count):
        sub = folder / f"{number // 1000:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        if number % 10 == 9:  # a near-duplicate of the previous picture
            previous = Image.open(sub / f"{number - 1:06d}.jpg")
            previous.resize((256, 192)).save(sub / f"{number:06d}.jpg", quality=70)
            continue
        coarse = rng.integers(0, 256, size=(5, 6, 3), dtype=np.uint8)
        Image.fromarray(coarse).resize((320, 240), Image.Resampling.BICUBIC).save(sub / f"{number:06d}.jpg")


def measure(folder: str, cache: str | None) -> dict:
    """Run in a fresh process: a full delete dry run (with the hash cache in `cache`, or none)."""
    sys.path.insert(0, str(REPO))
    from dedup_cli.pipeline import CollectionOptions, DeleteOptions, run_delete

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as output:
        options = CollectionOptions(Path(folder), cache_path=Path(cache) if cache else None)
        result = run_delete(options, DeleteOptions(Path(output)))
    seconds = time.perf_counter() - start
    return {"files": result.report.summary["hashed"], "groups": result.report.summary["groups"],
            "seconds": seconds, "main_mb": own_peak_rss_mb(),
            "worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--folder", type=Path, help="keep the pictures here (reused when present)")
    parser.add_argument("--warm", type=int, default=0, metavar="N", help="also N runs from the filled cache")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.cache)))
        return 0
    print(f"{'files':>7}{'groups':>8}{'run':>6}{'seconds':>9}{'images/s':>10}{'main MB':>9}{'worker MB':>11}")
    with tempfile.TemporaryDirectory() as scratch:
        for count in args.counts:
            folder = (args.folder or Path(scratch)) / f"n{count}"
            if not (folder / f"{(count - 1) // 1000:03d}" / f"{count - 1:06d}.jpg").exists():
                make_pictures(folder, count)
            cache = os.path.join(scratch, f"cache-{count}.sqlite")
            runs = [("cold", run_once(folder, cache))]
            warm = sorted((run_once(folder, cache) for _ in range(args.warm)), key=lambda r: r["seconds"])
            if warm:
                runs.append((f"warm{len(warm)}", warm[len(warm) // 2]))
            for name, r in runs:
                print(f"{r['files']:>7}{r['groups']:>8}{name:>6}{r['seconds']:>9.1f}{r['files'] / r['seconds']:>10.0f}"
                      f"{r['main_mb']:>9.0f}{r['worker_mb']:>11.0f}")
    return 0


def run_once(folder: Path, cache: str) -> dict:
    completed = subprocess.run([sys.executable, __file__, "--measure", str(folder), "--cache", cache], check=True,
                               capture_output=True, text=True, env=os.environ | {"PYTHONPATH": str(REPO)})
    return json.loads(completed.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    sys.exit(main())
