"""Build a labelled near-duplicate benchmark from originals (see dedup_cli/benchmark.py).

    python benchmarks/make_transforms.py OUT --originals DIR      # every image in DIR
    python benchmarks/make_transforms.py OUT --from-bench [BENCH]  # one photo per group of the
                                                                  # bench photo sets (default)
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

from common import DEFAULT_BENCH, REPO

sys.path.insert(0, str(REPO))

from dedup_cli.benchmark import DEFAULT_KINDS, TRANSFORMS, make_benchmark  # noqa: E402
from dedup_cli.media.scan import scan_images  # noqa: E402

PHOTO_SETS = ["wallpapers", "pdq-testdata", "perception-testdata", "imagededup-testdata",
              "seed-datasets/caltech_101_rand_resize", "exif-orientation", "imagehash-testdata"]


def bench_originals(bench: Path) -> list[Path]:
    """The largest readable file of each truth group of the bench photo sets (of the
    wallpapers, only the JPEG photos)."""
    from PIL import Image

    chosen = []
    for name in PHOTO_SETS:
        folder = bench / name
        truth = folder / "truth.csv"
        if not truth.exists():  # imagehash-testdata has no groups: every image is an original
            chosen.extend(scan_images(folder).files)
            continue
        members = defaultdict(list)
        with open(truth, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if name == "wallpapers" and not row["file"].lower().endswith(".jpg"):
                    continue  # the PNG wallpapers are logos and flat artwork, not photos
                members[row["group"]].append(folder / row["file"])
        for files in members.values():
            sizes = []
            for path in files:
                try:
                    with Image.open(path) as image:
                        sizes.append((image.width * image.height, str(path)))
                except Exception:
                    continue
            if sizes:
                chosen.append(Path(max(sizes)[1]))
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--originals", type=Path)
    parser.add_argument("--from-bench", type=Path, nargs="?", const=DEFAULT_BENCH)
    parser.add_argument("--max-side", type=int, default=1024)
    parser.add_argument("--kinds", nargs="+", default=list(DEFAULT_KINDS), choices=list(TRANSFORMS),
                        help="edits to make (default: all but "
                        + ", ".join(name for name, transform in TRANSFORMS.items() if not transform.default)
                        + ", which are made only when named)")
    args = parser.parse_args()
    if args.originals:
        originals = scan_images(args.originals).files
    else:
        bench = args.from_bench or DEFAULT_BENCH
        if not bench.is_dir():
            print(f"skipped: {bench} is absent; pass --originals DIR")
            return 0
        originals = bench_originals(bench)
    rows = make_benchmark(originals, args.out, tuple(args.kinds), args.max_side)
    print(f"{len(rows)} files from {len(originals)} originals in {args.out} (truth: {args.out / 'truth.csv'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
