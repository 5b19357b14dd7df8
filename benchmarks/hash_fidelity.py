"""How far dedup's reduced-size decoding moves hashes from imagehash's full-size hashes,
and whether duplicate detection on the labelled bench sets changes because of it.

    python benchmarks/hash_fidelity.py [BENCH] [--sizes 8 16]

BENCH defaults to ../shared/bench (skipped with a message when absent). The reference is
imagehash on the full image after EXIF orientation (dedup applies it too).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from common import DEFAULT_BENCH, REPO

sys.path.insert(0, str(REPO))

from make_transforms import PHOTO_SETS  # noqa: E402

from dedup_cli.evaluate import read_truth, score  # noqa: E402
from dedup_cli.fingerprint.hashing import ALGORITHMS, HashSettings, hash_collection, hash_file, hash_image  # noqa: E402
from dedup_cli.media.scan import scan_images  # noqa: E402
from dedup_cli.plan.grouping import make_plan  # noqa: E402
from dedup_cli.plan.similarity import MatchSettings  # noqa: E402
from dedup_cli.search.index import IndexSettings, hamming  # noqa: E402
from dedup_cli.search.thresholds import default_threshold_bits  # noqa: E402

TRUTH_SETS = ["wallpapers", "pdq-testdata", "exif-orientation", "imagededup-testdata",
              "perception-testdata", "seed-datasets/caltech_101_rand_resize", "flags"]


def reference_hash(path: str, settings: HashSettings, imagehash_exactly: bool) -> bytes | None:
    """imagehash's hash of the whole upright image: as imagehash reads it (alpha dropped),
    or as dedup's --full-decode reads it (transparency flattened), isolating the decoder."""
    from PIL import Image, ImageOps

    if not imagehash_exactly:
        full = HashSettings(settings.algorithm, settings.hash_size, full_decode=True)
        return hash_file(path, full).packed_bits
    try:
        with Image.open(path) as image:
            return hash_image(ImageOps.exif_transpose(image), settings)
    except Exception:  # unreadable files are skipped by both paths
        return None


def bit_differences(paths, settings: HashSettings, imagehash_exactly: bool) -> np.ndarray:
    fast = hash_collection(paths, settings, workers=2)
    differences = []
    for row, path in enumerate(fast.paths):
        reference = reference_hash(path, settings, imagehash_exactly)
        if reference is not None:
            differences.append(int(hamming(fast.packed[row], np.frombuffer(reference, dtype=np.uint8))))
    return np.array(differences)


def detection(folder: Path, settings: HashSettings) -> dict:
    truth, kinds = read_truth(folder / "truth.csv", folder)
    paths = [p for p in scan_images(folder).files if str(p) in truth]
    hashed = hash_collection(paths, settings, workers=2)
    plan = make_plan(hashed, MatchSettings(default_threshold_bits(settings)), IndexSettings())
    return score(plan, hashed, truth, kinds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bench", nargs="?", type=Path, default=DEFAULT_BENCH)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16])
    args = parser.parse_args()
    if not args.bench.is_dir():
        print(f"skipped: {args.bench} is absent")
        return 0
    paths = [p for name in PHOTO_SETS for p in scan_images(args.bench / name).files]
    for exactly, title in ((False, "imagehash on the full upright image, transparency flattened as dedup does"),
                           (True, "imagehash exactly (alpha dropped)")):
        print(f"Bit differences, reduced-size decode vs {title} ({len(paths)} files)")
        print(f"{'algorithm':14}{'size':>5}{'files':>7}{'=0':>7}{'mean':>7}{'median':>7}{'p95':>6}{'max':>6}")
        for size in args.sizes:
            for name in ALGORITHMS:
                diff = bit_differences(paths, HashSettings(name, size), exactly)
                print(f"{name:14}{size:>5}{len(diff):>7}{np.mean(diff == 0):>7.0%}{diff.mean():>7.2f}"
                      f"{np.median(diff):>7.0f}{np.percentile(diff, 95):>6.0f}{diff.max():>6}")
    print("\nDetection at the default threshold, reduced vs full decode (pair precision / recall)")
    for name in ALGORITHMS:
        for folder in TRUTH_SETS:
            cells = []
            for full in (False, True):
                result = detection(args.bench / folder, HashSettings(name, 8, full))
                cells.append(f"{result['pair_precision']:.3f} / {result['pair_recall']:.3f}")
            print(f"{name:14}{folder:40} reduced {cells[0]}   full {cells[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
