"""Time the colour checks per candidate pair, and pin their verdicts across a change.

    python benchmarks/bench_colour.py [--bench ../shared/bench] [--work bench-output] [--repeat 5]
                                      [--save verdicts.npz | --compare verdicts.npz]

Pair sets (each built deterministically; the real ones only where their files exist):
  - random: two unrelated smooth random pictures (a few pure noise signatures);
  - perturbed: a smooth random picture against itself after grid edits (brightness,
    contrast, offset, clipping, noise, grey, a small shift; some with a local colour
    change or swapped chroma, which are other pictures);
  - demo: every pair of datasets/demo;
  - flags: every pair of bench/flags/iso-320x240 (mostly distinct designs);
  - bench: the candidate pairs (pHash-8 within the default threshold, in any
    orientation, grids turned to match) among the bench photos and their edits, as
    calibrate.py builds them into WORK/generated: mostly true duplicates, which run every check.
Prints microseconds per pair of similarity.vetoed (median and fastest of --repeat runs,
in CPU time and in wall time: other jobs on the machine inflate the wall time) and the
verdict counts; then the time Matcher.pairs() takes on the bench photos with and without
the colour checks (the pairs as the pipeline judges them, a few hundred per call).
--save keeps the verdicts and the distances (colour, local, edit) of every pair;
--compare reports how far the current code's differ from them. A verdict may differ
only on a synthetic pair whose distance lies within 1e-4 (relative) of its threshold,
where float summation order decides.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DEFAULT_BENCH, REPO  # noqa: E402

sys.path.insert(0, str(REPO))

from dedup_cli.fingerprint.hashing import HashedFiles, HashSettings, default_workers, hash_collection  # noqa: E402
from dedup_cli.fingerprint.signature import GRID_SIDES, SIGNATURE_BYTES, colour_signature  # noqa: E402
from dedup_cli.media.scan import scan_images  # noqa: E402
from dedup_cli.plan.similarity import (  # noqa: E402
    DEFAULT_COLOUR_THRESHOLD,
    EDIT_FACTOR,
    LOCAL_FACTOR,
    Matcher,
    MatchSettings,
    _distinct_pairs,
    colour_distance,
    edit_distance,
    flat_mismatch,
    local_distance,
    turn_grids,
    vetoed,
)
from dedup_cli.search.index import IndexSettings, cross_pairs  # noqa: E402
from dedup_cli.search.thresholds import default_threshold_bits  # noqa: E402

SETTINGS = MatchSettings(max_bits=0)  # vetoed() does not look at the bits
THRESHOLDS = {"colour": DEFAULT_COLOUR_THRESHOLD, "local": LOCAL_FACTOR * DEFAULT_COLOUR_THRESHOLD,
              "edit": EDIT_FACTOR * DEFAULT_COLOUR_THRESHOLD}
SYNTHETIC = ("random", "perturbed")


def smooth_picture(rng: np.random.Generator):
    """A 64x64 RGB picture interpolated from a few random colours (a photo's coarse look)."""
    from PIL import Image

    side = int(rng.integers(2, 7))
    coarse = rng.integers(0, 256, size=(side, side, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize((64, 64), Image.Resampling.BICUBIC)


def random_pairs(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Unrelated pictures; every 20th pair is pure noise against a picture."""
    first = np.stack([np.frombuffer(colour_signature(smooth_picture(rng)), np.uint8) for _ in range(count)])
    second = np.stack([np.frombuffer(colour_signature(smooth_picture(rng)), np.uint8) for _ in range(count)])
    second[::20] = rng.integers(0, 256, size=(len(second[::20]), SIGNATURE_BYTES), dtype=np.uint8)
    return first, second


def _edited(signature: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The signature after a random global edit of its grids (YCbCr per cell)."""
    cells = signature.reshape(-1, 3).astype(np.float64)
    luma, chroma = cells[:, 0], cells[:, 1:] - 128.0
    kind = rng.integers(0, 5)
    scale = rng.uniform(0.6, 1.5)
    if kind == 0:  # brightness: everything scaled about black
        luma, chroma = luma * scale, chroma * scale
    elif kind == 1:  # contrast: about the mean grey
        luma, chroma = luma.mean() + scale * (luma - luma.mean()), chroma * scale
    elif kind == 2:  # offset
        luma = luma + rng.uniform(-30, 30)
    elif kind == 3:  # strong brightness: clips the light cells
        luma, chroma = luma * 1.6, chroma * 1.2
    else:  # grey copy
        chroma = chroma * 0.0
    cells = np.column_stack([luma, chroma + 128.0]) + rng.normal(0.0, rng.uniform(0.0, 3.0), size=cells.shape)
    return np.clip(np.rint(cells), 0, 255).astype(np.uint8).reshape(-1)


def _other_picture(signature: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The signature with one corner block recoloured, or with Cb and Cr swapped."""
    changed = signature.copy()
    if rng.random() < 0.5:
        cells = changed.reshape(-1, 3)
        cells[:, [1, 2]] = cells[:, [2, 1]]
        return changed
    start = 0
    colour = rng.integers(0, 256, size=3)
    for side in GRID_SIDES:
        grid = changed[start:start + side * side * 3].reshape(side, side, 3)
        block = side // 4
        grid[side // 4:side // 4 + block, side // 2:side // 2 + block] = colour
        start += side * side * 3
    return changed


def perturbed_pairs(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """A picture against an edit of itself (every 10th: shifted by 2 of 64 pixels first;
    every 4th: another picture)."""
    first, second = [], []
    for number in range(count):
        picture = smooth_picture(rng)
        original = np.frombuffer(colour_signature(picture), np.uint8)
        copy = original
        if number % 10 == 3:
            copy = np.frombuffer(colour_signature(picture.crop((2, 2, 64, 64)).resize((64, 64))), np.uint8)
        copy = _edited(copy, rng)
        if number % 4 == 1:
            copy = _other_picture(copy, rng)
        first.append(original)
        second.append(copy)
    return np.stack(first), np.stack(second)


def all_pairs(colour: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    first, second = np.triu_indices(len(colour), k=1)
    return colour[first], colour[second]


def hashed_folder(folder: Path, settings: HashSettings = HashSettings()):
    return hash_collection(scan_images(folder).files, settings, workers=default_workers())


def candidate_pairs(hashed) -> tuple[np.ndarray, np.ndarray]:
    """The pairs Matcher would check with --isometric: pHash-8 within the default
    threshold in the best orientation, the first file's grids turned into it."""
    max_bits = default_threshold_bits(hashed.settings)
    matcher = Matcher(hashed, MatchSettings(max_bits))
    queries = matcher._orientations(np.arange(len(hashed.paths)))
    owner, second, bits = cross_pairs(hashed.packed, hashed.settings.n_bits, queries.reshape(-1, queries.shape[-1]),
                                      max_bits, IndexSettings())
    first, orientation = np.divmod(owner, queries.shape[1])
    first, second, _, orientation = _distinct_pairs(first, second, bits, orientation)
    return turn_grids(hashed.colour[first], orientation), hashed.colour[second]


def bench_photos(bench: Path, work: Path):
    """The bench photos and their edits, as calibrate.py generates them, hashed with
    --isometric (kept in WORK/colour-hashed.npz: hashing takes a while)."""
    stored = work / "colour-hashed.npz"
    settings = HashSettings(isometric=True)
    if stored.exists():
        with np.load(stored) as data:
            return HashedFiles(settings, paths=[str(row) for row in range(len(data["packed"]))],
                               packed=data["packed"], colour=data["colour"], variants=data["variants"])
    generated = work / "generated"
    if not (generated / "truth.csv").exists():
        from make_transforms import bench_originals

        from dedup_cli.benchmark import make_benchmark
        make_benchmark(bench_originals(bench), generated)
    hashed = hashed_folder(generated, settings)
    work.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(stored, packed=hashed.packed, colour=hashed.colour, variants=hashed.variants)
    return hashed


def build_pair_sets(bench: Path, work: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(2024)
    sets = {"random": random_pairs(rng, 3000), "perturbed": perturbed_pairs(rng, 3000),
            "demo": all_pairs(hashed_folder(REPO / "datasets" / "demo").colour)}
    if bench.is_dir():
        sets["flags"] = all_pairs(hashed_folder(bench / "flags" / "iso-320x240").colour)
        sets["bench"] = candidate_pairs(bench_photos(bench, work))
    return sets


def load_pair_sets(bench: Path, work: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The pair sets, built once and kept in WORK/colour-pairs.npz (hashing takes a while)."""
    stored = work / "colour-pairs.npz"
    if stored.exists():
        with np.load(stored) as data:
            names = sorted({key.rsplit("_", 1)[0] for key in data.files})
            return {name: (data[f"{name}_a"], data[f"{name}_b"]) for name in names}
    sets = build_pair_sets(bench, work)
    work.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(stored, **{f"{name}_{side}": pair[index] for name, pair in sets.items()
                                   for index, side in enumerate("ab")})
    return sets


def timed(run, repeat: int) -> tuple[list[float], list[float], object]:
    """CPU and wall seconds of each of `repeat` runs of run(), and its last result."""
    cpu, wall = [], []
    for _ in range(repeat):
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        result = run()
        cpu.append(time.process_time() - cpu_start)
        wall.append(time.perf_counter() - wall_start)
    return cpu, wall, result


def matcher_seconds(hashed, colour_check: bool, repeat: int) -> tuple[float, int]:
    """Median CPU seconds of Matcher.pairs() on `hashed` (pHash-8, isometric, default
    threshold), and the number of candidate pairs it judges."""
    settings = MatchSettings(default_threshold_bits(hashed.settings), colour_check=colour_check)
    cpu, _, _ = timed(lambda: Matcher(hashed, settings).pairs(), repeat)
    return statistics.median(cpu), len(candidate_pairs(hashed)[0])


def distances(colour_a: np.ndarray, colour_b: np.ndarray) -> dict[str, np.ndarray]:
    return {"colour": colour_distance(colour_a, colour_b), "local": local_distance(colour_a, colour_b),
            "edit": edit_distance(colour_a, colour_b), "flat": flat_mismatch(colour_a, colour_b)}


def near_threshold(old: dict[str, np.ndarray], rows: np.ndarray) -> np.ndarray:
    """True for rows where some distance lies within 1e-4 (relative) of its threshold."""
    near = np.zeros(len(rows), dtype=bool)
    for name, threshold in THRESHOLDS.items():
        near |= np.abs(old[name][rows] - threshold) <= 1e-4 * threshold
    return near


def compare(name: str, verdicts: np.ndarray, now: dict[str, np.ndarray], old: dict[str, np.ndarray]) -> bool:
    """Print how the verdicts and distances differ from the saved ones; False if a
    difference is not explained by a distance at its threshold (or any, on real pictures)."""
    differ = np.flatnonzero(verdicts != old["vetoed"])
    explained = near_threshold(old, differ)
    gaps = []
    for key in ("colour", "local", "edit"):
        finite = np.isfinite(old[key]) & np.isfinite(now[key])
        gap = np.abs(now[key][finite] - old[key][finite]).max(initial=0.0)
        same_infinite = np.array_equal(np.isfinite(old[key]), np.isfinite(now[key]))
        gaps.append(f"{key} {gap:.2e}{'' if same_infinite else ' (inf differs!)'}")
    flat_differ = int((now["flat"] != old["flat"]).sum())
    print(f"  {name}: {len(differ)} verdicts differ ({int(explained.sum())} at a threshold); "
          f"flat differs {flat_differ}; max |distance change|: {', '.join(gaps)}")
    if name not in SYNTHETIC:
        return not len(differ) and not flat_differ
    return bool(explained.all()) and not flat_differ


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", type=Path, default=DEFAULT_BENCH)
    parser.add_argument("--work", type=Path, default=REPO / "bench-output")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--save", type=Path, help="keep the verdicts and distances here")
    parser.add_argument("--compare", type=Path, help="compare with verdicts kept by --save")
    args = parser.parse_args()
    sets = load_pair_sets(args.bench, args.work)
    kept, comparisons = {}, []
    old = np.load(args.compare) if args.compare else None
    print("| pairs | count | vetoed | CPU us/pair (median) | (fastest) | wall us/pair (median) |")
    print("|---|---|---|---|---|---|")
    for name, (colour_a, colour_b) in sets.items():
        cpu, wall, verdicts = timed(partial(vetoed, colour_a, colour_b, SETTINGS), args.repeat)
        per_pair = 1e6 / len(colour_a)
        print(f"| {name} | {len(colour_a)} | {int(verdicts.sum())} | {statistics.median(cpu) * per_pair:.2f} | "
              f"{min(cpu) * per_pair:.2f} | {statistics.median(wall) * per_pair:.2f} |")
        if args.save or old is not None:
            now = distances(colour_a, colour_b)
            kept.update({f"{name}_{key}": value for key, value in now.items()})
            kept[f"{name}_vetoed"] = verdicts
            if old is not None:
                comparisons.append((name, verdicts, now, {key: old[f"{name}_{key}"] for key in (*now, "vetoed")}))
    if args.bench.is_dir():
        hashed = bench_photos(args.bench, args.work)
        with_colour, candidates = matcher_seconds(hashed, True, args.repeat)
        without, _ = matcher_seconds(hashed, False, args.repeat)
        print(f"\nMatcher.pairs() on the bench photos ({candidates} candidate pairs), CPU median: "
              f"{with_colour:.3f} s with the colour checks, {without:.3f} s without: "
              f"{(with_colour - without) / candidates * 1e6:.2f} us per candidate pair")
    if args.save:
        np.savez_compressed(args.save, **kept)
    same = all([compare(*comparison) for comparison in comparisons])
    if old is not None:
        print("verdicts: same (up to float order at a threshold)" if same else "verdicts: CHANGED")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
