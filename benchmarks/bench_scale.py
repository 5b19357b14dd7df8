"""Pair search at scale: time, peak memory and exactness of each engine, and whole
`dedup match` runs, on synthetic hashes.

    python benchmarks/bench_scale.py [--sizes 10000 100000 1000000] [--limit 600]

Hashes (fixed seeds): `uniform` random bits, and `clustered` copies of 3,000 random centres
with 3-20 bits flipped; both with 10% planted copies of other rows with 1-8 bits flipped
(for 256 bits, four times as many flips). For each kind, size and threshold (10 and 14
bits; a 256-bit case at 100,000 and 31 bits) every engine runs in a process of its own,
so peak RSS is its own: mih (multi-index hashing, engine.py), KDTree and cKDTree (trees over
block values, block_trees.py) and a numpy brute-force popcount. Times cover the search
only (imports and the compiled code's loading happen before). An engine is skipped at the
size where its time at the size before, grown as N**2, predicts more than --limit seconds.
Exactness: an order-independent digest of all pairs against numpy's where numpy ran, and
every pair of 300 sampled rows against a popcount of those rows. Then whole `dedup match`
processes on CSV files in bench-output/scale (gitignored; the pair files are deleted after
each run), the cost of compiling the kernels, and the ratios to the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import REPO, own_peak_rss_mb, timed_process

OUT = REPO / "bench-output" / "scale"
METHODS = ("mih", "KDTree", "cKDTree", "numpy")
CENTRES = 3000
SAMPLE_ROWS = 300
# (threshold, hashes, bits, tree type) -> target seconds of a whole `dedup match` process.
MATCH_TARGETS = {(10, 1_000_000, 64, "mih"): 20.0, (14, 1_000_000, 64, "mih"): 60.0,
                 (31, 100_000, 256, "mih"): 10.0, (10, 100_000, 64, "KDTree"): 60.0,
                 (10, 100_000, 64, "cKDTree"): 60.0}
PEAK_TARGET_MB = 1536.0
SEARCH_TARGETS = {("KDTree", 100_000, 10): 60.0, ("cKDTree", 100_000, 10): 60.0}


# ---- synthetic hashes ------------------------------------------------------------------


def synthetic(kind: str, count: int, n_bits: int, seed: int = 1) -> np.ndarray:
    """Packed hashes of `kind` (see the module docstring), rows shuffled."""
    rng = np.random.default_rng(seed)
    scale = n_bits // 64
    planted = count // 10
    if kind == "uniform":
        bits = rng.integers(0, 2, size=(count - planted, n_bits), dtype=np.uint8)
    else:
        centres = rng.integers(0, 2, size=(CENTRES, n_bits), dtype=np.uint8)
        bits = _flip(centres[rng.integers(0, CENTRES, count - planted)], 3 * scale, 20 * scale, rng)
    copies = _flip(bits[rng.integers(0, len(bits), planted)], scale, 8 * scale, rng)
    packed = np.packbits(np.concatenate([bits, copies]), axis=1)
    return packed[rng.permutation(count)]


def _flip(bits: np.ndarray, fewest: int, most: int, rng) -> np.ndarray:
    """Each row with between fewest and most distinct bits flipped."""
    bits = bits.copy()
    rows_per_step = max(1, 2**22 // bits.shape[1])
    for start in range(0, len(bits), rows_per_step):
        part = bits[start : start + rows_per_step]
        ranks = rng.random(part.shape).argsort(axis=1).argsort(axis=1)  # a random order of the bits per row
        part ^= (ranks < rng.integers(fewest, most + 1, size=(len(part), 1))).astype(np.uint8)
    return bits


def data_file(kind: str, count: int, n_bits: int) -> Path:
    path = OUT / f"{kind}-{count}-{n_bits}.npy"
    if not path.exists():
        np.save(path, synthetic(kind, count, n_bits))
    return path


# ---- one engine in a process of its own ----------------------------------------------------


def measure(spec: dict) -> dict:
    """Run in a fresh process: one engine over one data file; the pairs are streamed
    through a digest and a sample, never kept."""
    sys.path.insert(0, str(REPO))
    packed = np.load(spec["data"])
    method, max_bits = spec["method"], spec["max_bits"]
    for _ in _pairs(method, packed[:200], max_bits):  # imports and compiled code loaded before timing
        pass
    sample = np.random.default_rng(7).choice(len(packed), size=min(SAMPLE_ROWS, len(packed)), replace=False)
    in_sample = np.zeros(len(packed), dtype=bool)
    in_sample[sample] = True
    digest, count, sampled = np.uint64(0), 0, []
    start = time.perf_counter()
    for first, second, distances in _pairs(method, packed, max_bits):
        digest += _digest(first, second, distances)
        count += len(first)
        keep = in_sample[first] | in_sample[second]
        sampled.append(np.stack([first[keep], second[keep], distances[keep]], axis=1).astype(np.int64))
    seconds = time.perf_counter() - start
    peak = own_peak_rss_mb()
    found = {tuple(row) for row in np.concatenate(sampled).tolist()} if sampled else set()
    return {"seconds": seconds, "peak_mb": peak, "pairs": count, "digest": str(digest),
            "sample_exact": found == _sample_truth(packed, sample, max_bits)}


def _pairs(method: str, packed: np.ndarray, max_bits: int):
    if method == "mih":
        from dedup_cli.search.engine import iter_pairs_within

        return iter_pairs_within(packed, max_bits)
    if method == "numpy":
        return _numpy_pairs(packed, max_bits)
    from dedup_cli.search.block_trees import iter_tree_pairs

    return iter_tree_pairs(packed, None, max_bits, method)


def _numpy_pairs(packed: np.ndarray, max_bits: int):
    """Brute force with numpy: each block of rows against the rows after it."""
    words = np.ascontiguousarray(np.pad(packed, ((0, 0), (0, -packed.shape[1] % 8)))).view(np.uint64)
    rows_per_block = max(1, 2**24 // (len(words) * words.shape[1]))
    for start in range(0, len(words), rows_per_block):
        stop = min(start + rows_per_block, len(words))
        distances = np.zeros((stop - start, len(words) - start), dtype=np.uint16)
        for word in range(words.shape[1]):
            distances += np.bitwise_count(words[start:stop, word, None] ^ words[None, start:, word])
        first, second = np.nonzero(distances <= max_bits)
        keep = second > first
        first, second = first[keep], second[keep]
        yield first + start, second + start, distances[first, second].astype(np.int32)


def _digest(first, second, distances) -> np.uint64:
    """Order-independent digest of pairs: the sum of a mix of each (first, second, distance)."""
    with np.errstate(over="ignore"):
        mixed = (first.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + second.astype(np.uint64)) \
            * np.uint64(0xBF58476D1CE4E5B9) + distances.astype(np.uint64)
        mixed ^= mixed >> np.uint64(29)
        return mixed.sum(dtype=np.uint64)


def _sample_truth(packed: np.ndarray, sample: np.ndarray, max_bits: int) -> set:
    truth = set()
    for row in sample.tolist():
        distances = np.bitwise_count(packed ^ packed[row]).sum(axis=1)
        for other in np.flatnonzero(distances <= max_bits).tolist():
            if other != row:
                truth.add((min(row, other), max(row, other), int(distances[other])))
    return truth


def run_child(spec: dict) -> dict:
    completed = subprocess.run([sys.executable, __file__, "--measure", json.dumps(spec)], capture_output=True,
                               text=True, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


# ---- the tables ------------------------------------------------------------------------


def search_table(sizes: list[int], limit: float) -> None:
    print("Pair search (search only; peak RSS of the engine's own process)")
    print(f"{'hashes':<22}{'bits':>5}  {'engine':<8}{'seconds':>9}{'peak MB':>9}{'pairs':>12}"
          f"{'vs numpy':>10}  exact")
    cases = [(kind, count, 64, max_bits) for kind in ("uniform", "clustered") for max_bits in (10, 14)
             for count in sizes]
    cases.append(("clustered", 100_000, 256, 31))
    history: dict[tuple, list[tuple[int, float]]] = {}
    for kind, count, n_bits, max_bits in sorted(cases, key=lambda case: (case[2], case[0], case[3], case[1])):
        results = {}
        for method in METHODS:
            seen = history.setdefault((method, kind, n_bits, max_bits), [])
            estimate = _estimate(seen, count)
            if estimate > limit:
                results[method] = {"skipped": estimate}
                continue
            results[method] = run_child({"data": str(data_file(kind, count, n_bits)), "method": method,
                                         "max_bits": max_bits})
            seen.append((count, results[method]["seconds"]))
        _print_rows(kind, count, n_bits, max_bits, results)


def _estimate(seen: list[tuple[int, float]], count: int) -> float:
    """Seconds at `count` rows from the last size measured, grown as N**2: the candidate
    pairs of brute force and of blocks of a fixed width grow so (for the trees, whose
    time is mostly verifying candidates, this over-estimates by a factor of 2 or 3)."""
    if not seen:
        return 0.0
    return seen[-1][1] * (count / seen[-1][0]) ** 2


def _print_rows(kind: str, count: int, n_bits: int, max_bits: int, results: dict) -> None:
    reference = results.get("numpy", {})
    brute_seconds = reference.get("seconds", reference.get("skipped"))
    name = f"{kind} {count:,} @{max_bits}"
    for method, result in results.items():
        if "skipped" in result:
            print(f"{name:<22}{n_bits:>5}  {method:<8}  skipped: ~{result['skipped']:.0f} s estimated from the "
                  "smaller sizes")
            continue
        ratio = ("~" if "skipped" in reference else "") + f"{result['seconds'] / brute_seconds:.4f}x"
        print(f"{name:<22}{n_bits:>5}  {method:<8}{result['seconds']:>9.2f}{result['peak_mb']:>9.0f}"
              f"{result['pairs']:>12,}{ratio:>10}  {_exactness(result, reference, results)}")
        target = SEARCH_TARGETS.get((method, count, max_bits)) if n_bits == 64 else None
        if target:
            print(f"{'':<29}target {target:.0f} s: {result['seconds'] / target:.2f} of it")


def _exactness(result: dict, reference: dict, results: dict) -> str:
    sample = f"{SAMPLE_ROWS} sampled rows {'exact' if result['sample_exact'] else 'WRONG'}"
    if "digest" in reference:
        same = result["digest"] == reference["digest"] and result["pairs"] == reference["pairs"]
        return f"all pairs {'= numpy' if same else 'DIFFER from numpy'}; {sample}"
    others = {other["digest"] for other in results.values() if "digest" in other}
    return f"{sample}; engines {'agree' if len(others) == 1 else 'DISAGREE'} on all pairs"


def match_table() -> None:
    print("\nWhole `dedup match` processes (reading the CSV, searching, writing the pairs CSV)")
    print(f"{'run':<52}{'seconds':>9}{'peak MB':>9}{'pairs':>12}  target")
    for (max_bits, count, n_bits, tree_type), target in MATCH_TARGETS.items():
        hashes = _csv_file(count, n_bits)
        output = OUT / "pairs.csv"
        output.unlink(missing_ok=True)
        command = [sys.executable, "-m", "dedup_cli", "match", "--hashes", str(hashes), "--threshold",
                   str(max_bits), "--tree-type", tree_type, "--output", str(output)]
        seconds, peak_mb, stderr = _timed(command)
        pairs = int(stderr.split()[0]) if stderr.split() and stderr.split()[0].isdigit() else -1
        output.unlink(missing_ok=True)
        label = f"{count:,} x {n_bits}-bit --threshold {max_bits} --tree-type {tree_type}"
        verdict = "met" if seconds < target and peak_mb < PEAK_TARGET_MB else "MISSED"
        print(f"{label:<52}{seconds:>9.2f}{peak_mb:>9.0f}{pairs:>12,}  {target:.0f} s: "
              f"{seconds / target:.2f} of it, peak {peak_mb / PEAK_TARGET_MB:.2f} of 1.5 GB ({verdict})")


def _csv_file(count: int, n_bits: int) -> Path:
    path = OUT / f"hashes-{count}-{n_bits}.csv"
    if not path.exists():
        packed = np.load(data_file("clustered", count, n_bits))
        digits = packed.shape[1] * 2
        text = packed.tobytes().hex()
        path.write_text("id,hash\n" + "".join(f"img/{row:07d}.jpg,{text[row * digits:(row + 1) * digits]}\n"
                                              for row in range(count)))
    return path


def _timed(command: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) and stderr of a process."""
    seconds, _, peak_mb, text = timed_process(command, env)
    return seconds, peak_mb, text


def jit_cost() -> None:
    """First call of the engine with an empty numba cache (compiling) and with the cache
    it left (loading)."""
    code = ("import time, numpy as np; start = time.perf_counter(); from dedup_cli.search import engine; "
            "imported = time.perf_counter(); hashes = np.zeros((50, 8), np.uint8); "
            "engine.pairs_within(hashes, 3, strategy=engine.MultiIndex.split(64, 3, 4)); "
            "engine.pairs_within(hashes, 3, strategy=engine.BruteForce()); "
            "print(imported - start, time.perf_counter() - imported)")
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        timings = []
        for _ in range(2):
            completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                                       cwd=REPO, check=True)
            timings.append([float(value) for value in completed.stdout.split()])
    print(f"\nCompiled kernels (both engines): import {timings[0][0]:.2f} s; first calls {timings[0][1]:.2f} s with "
          f"an empty cache (compiling), {timings[1][1]:.2f} s with the cache they wrote (loading)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--limit", type=float, default=600.0, help="skip runs estimated to take longer (seconds)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(json.loads(args.measure))))
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} CPUs; mih runs a worker thread per CPU, cKDTree queries too\n")
    jit_cost()
    print()
    search_table(sorted(args.sizes), args.limit)
    match_table()
    return 0


if __name__ == "__main__":
    sys.exit(main())
