"""Time `dedup show` (hashing, t-SNE, thumbnails, pictures) on N synthetic images.

    python benchmarks/bench_show.py [--count 3000] [FOLDER]

Without FOLDER, writes N small JPEGs (as bench_memory.py does) into a scratch folder.
"""

from __future__ import annotations

import argparse
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.folder
        if folder is None:
            folder = Path(scratch) / "pictures"
            make_pictures(folder, args.count)
        command = [sys.executable, "-m", "dedup_cli", "show", "--images-path", str(folder),
                   "--output-path", str(Path(scratch) / "out"), "--no-cache", "--no-progress"]
        start = time.perf_counter()
        completed = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        print(completed.stdout.strip())
        if completed.returncode:
            print(completed.stderr)
            return completed.returncode
        print(f"dedup show on {folder}: {seconds:.1f} s (no cache)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
