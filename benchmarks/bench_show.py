"""Time `dedup show` (hashing, t-SNE, thumbnails, pictures, tsne.html) on N synthetic images.

    python benchmarks/bench_show.py [--count 3000] [--repeat 1] [FOLDER]

Without FOLDER, writes N small JPEGs (as bench_memory.py does) into a scratch folder.
Prints the wall time and the CPU time of the run and its workers (which other jobs on the
machine inflate much less than the wall time), and the load average.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_memory import make_pictures  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", type=Path)
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.folder
        if folder is None:
            folder = Path(scratch) / "pictures"
            make_pictures(folder, args.count)
        for number in range(args.repeat):
            command = [sys.executable, "-m", "dedup_cli", "show", "--images-path", str(folder),
                       "--output-path", str(Path(scratch) / f"out{number}"), "--no-cache", "--no-progress"]
            load = os.getloadavg()[0]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            completed = subprocess.run(command, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            if completed.returncode:
                print(completed.stderr)
                return completed.returncode
            if number == 0:
                print(completed.stdout.strip())
            print(f"dedup show on {folder}: {seconds:.1f} s (no cache), {cpu:.1f} s CPU "
                  f"(load average {load:.1f} before)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
