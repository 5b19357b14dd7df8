"""The CNN method (--method cnn) against the hash method: speed, accuracy, colour, scale.

    python benchmarks/bench_cnn.py [--generated bench-output/generated] [--emoji bench-output/emoji]
                                   [--flags ../shared/bench/flags] [--vectors 100000] [--skip PART ...]

Run no other benchmark at the same time. Parts:
  speed     images/s and peak RSS of embedding every file of --generated and N camera-like
            9 MP JPEGs, cold (no cache), 2 worker processes with one onnxruntime thread each,
            reduced-size JPEG decoding; and with full decoding, for comparison
  accuracy  what `dedup evaluate` measures, on --generated with --method hash and cnn at their
            defaults: pair precision/recall, and per kind of edit the copies linked to their
            original and those grouped with one of their own, side by side; then the CNN's
            linked precision/recall over a range of cosine thresholds
  colour    false pairs among the flags and the emoji skin tones (hard negatives), hash vs cnn,
            and the cnn with the colour checks off
  search    the blocked cosine pair search on --vectors random unit 1280-d vectors at 0.80,
            in a fresh process: time, pairs, peak RSS

--generated comes from `python benchmarks/make_transforms.py bench-output/generated --from-bench`,
--emoji from `python benchmarks/make_emoji.py bench-output/emoji`. Needs onnxruntime and the
model (`make model`).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from common import DEFAULT_BENCH, REPO, own_peak_rss_mb

sys.path.insert(0, str(REPO))

from dedup_cli.evaluate import read_truth, score  # noqa: E402
from dedup_cli.media.scan import scan_images  # noqa: E402
from dedup_cli.pipeline import CollectionOptions, collect  # noqa: E402
from dedup_cli.plan.cnn_match import max_units  # noqa: E402
from dedup_cli.plan.grouping import make_plan  # noqa: E402

WORKERS = 2
THRESHOLDS = (0.70, 0.75, 0.78, 0.80, 0.82, 0.85, 0.88, 0.90, 0.93)


def options(folder: Path, method: str, **changes) -> CollectionOptions:
    return replace(CollectionOptions(images_path=folder, workers=WORKERS, cache_path=None, method=method), **changes)


def speed(folder: Path, camera_jpegs: int) -> None:
    from bench_hashing import make_camera_jpegs

    from dedup_cli.fingerprint import embedding

    files = [str(p) for p in scan_images(folder).files]
    settings = embedding.open_model()
    with tempfile.TemporaryDirectory() as scratch:
        sets = [(f"{len(files)} generated files (at most 1024 px)", files)]
        if camera_jpegs:
            originals = [p for p in files if p.endswith("_original.jpg")]
            sets.append((f"{camera_jpegs} camera-like 9 MP JPEGs",
                         make_camera_jpegs(originals, camera_jpegs, Path(scratch) / "camera")))
        for name, paths in sets:
            for label, decode_side in (("reduced-size decoding", embedding.INPUT_SIDE), ("full decoding", 0)):
                embedding.DECODE_SIDE = decode_side  # the workers are forked: they see it
                start = time.perf_counter()
                records = embedding.embed_many(paths, settings, workers=WORKERS)
                elapsed = time.perf_counter() - start
                failed = sum(r.vector is None for r in records)
                print(f"embedding {name}, {label}: {elapsed:.1f} s = {len(paths) / elapsed:.1f} images/s "
                      f"({failed} failed), {WORKERS} processes")
    embedding.DECODE_SIDE = embedding.INPUT_SIDE
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS: main process {own_peak_rss_mb():.0f} MB, largest worker {children:.0f} MB")


def accuracy(folder: Path) -> None:
    truth, kinds = read_truth(folder / "truth.csv", folder)
    results, linked = {}, {}
    for method in ("hash", "cnn"):
        start = time.perf_counter()
        chosen = options(folder, method)
        collection = collect(chosen, only=set(truth))
        results[method], links = _linked_scores(collection, chosen, truth, kinds)
        results[method]["seconds"] = time.perf_counter() - start
        linked[method] = _linked_with_original(collection.hashed.paths, links, truth, kinds)
    print(f"\n`dedup evaluate` on {folder} ({results['hash']['files']} files), defaults, colour checks on:")
    print("| | hash (pHash 8, 14 bits) | cnn (cosine >= 0.80) |\n|---|---|---|")
    for key in ("linked_precision", "linked_recall", "pair_precision", "pair_recall", "removal_precision",
                "removal_recall", "linked_false_pairs"):
        print(f"| {key.replace('_', ' ')} | {results['hash'][key]} | {results['cnn'][key]} |")
    print(f"| wrongly removed | {len(results['hash']['wrongly_removed'])} | {len(results['cnn']['wrongly_removed'])} |")
    print(f"| time (cold, s) | {results['hash']['seconds']:.1f} | {results['cnn']['seconds']:.1f} |")
    print("\nper kind of edit: copies linked to their original (pairs called duplicates), and copies grouped "
          "with one of their own in the delete plan:")
    print("| edit | hash linked | cnn linked | hash grouped | cnn grouped |\n|---|---|---|---|---|")
    for kind, counts in results["cnn"]["recall_by_kind"].items():
        hashed = results["hash"]["recall_by_kind"].get(kind, {"found": 0, "files": 0})
        print(f"| {kind} | {linked['hash'].get(kind, '-')} | {linked['cnn'].get(kind, '-')} | "
              f"{hashed['found']}/{hashed['files']} | {counts['found']}/{counts['files']} |")
    sweep(folder)


def _linked_with_original(paths, links, truth, kinds) -> dict[str, str]:
    """Per kind of edit: 'found/copies', a copy found when it is linked to its group's original."""
    originals = {truth[p]: p for p in paths if kinds.get(p) == "original"}
    pairs = {frozenset((paths[i], paths[j])) for i, j in zip(*links)}  # noqa: B905
    totals, found = {}, {}
    for path in paths:
        kind = kinds.get(path)
        if kind in (None, "original") or truth.get(path) not in originals:
            continue
        totals[kind] = totals.get(kind, 0) + 1
        found[kind] = found.get(kind, 0) + (frozenset((path, originals[truth[path]])) in pairs)
    return {kind: f"{found[kind]}/{totals[kind]}" for kind in totals}


def _linked_scores(collection, chosen: CollectionOptions, truth, kinds) -> tuple[dict, tuple]:
    matcher = collection.matcher(chosen)
    links = matcher.pairs()[:2]
    plan = make_plan(collection.hashed, chosen.match_settings, chosen.index_settings, "resolution", matcher)
    return score(plan, collection.hashed, truth, kinds, links), links


def sweep(folder: Path) -> None:
    truth, kinds = read_truth(folder / "truth.csv", folder)
    base = options(folder, "cnn")
    collection = collect(base, only=set(truth))
    print("\ncnn threshold sweep (colour checks on): cosine, linked precision, linked recall, false pairs, "
          "wrong removals")
    for threshold in THRESHOLDS:
        found, _ = _linked_scores(collection, replace(base, threshold=threshold), truth, kinds)
        print(f"  {threshold:.2f} ({max_units(threshold)} units)  {found['linked_precision']:.4f}  "
              f"{found['linked_recall']:.4f}  {found['linked_false_pairs']}  {len(found['wrongly_removed'])}")


def colour(flags: Path, emoji: Path) -> None:
    print("\nfalse linked pairs on hard negatives (each file its own picture; true duplicates where labelled):")
    print("| set | files | hash | cnn | cnn, --colour n |\n|---|---|---|---|---|")
    for name, folder in (("flags", flags), ("emoji skin tones", emoji)):
        if not (folder / "truth.csv").is_file():
            print(f"| {name} | skipped: {folder / 'truth.csv'} is absent | | | |")
            continue
        truth, kinds = read_truth(folder / "truth.csv", folder)
        row = []
        for method, colour_check in (("hash", True), ("cnn", True), ("cnn", False)):
            chosen = options(folder, method, colour_check=colour_check)
            collection = collect(chosen, only=set(truth))
            found, _ = _linked_scores(collection, chosen, truth, kinds)
            row.append(f"{found['linked_false_pairs']} (recall {found['linked_recall']:.3f})")
        print(f"| {name} | {len(truth)} | {' | '.join(row)} |")


def search(count: int) -> None:
    code = f"""
import time, sys, numpy as np
sys.path.insert(0, {str(REPO)!r}); sys.path.insert(0, {str(REPO / 'benchmarks')!r})
from common import own_peak_rss_mb
from dedup_cli.search.cosine import pairs_above
rng = np.random.default_rng(0)
vectors = np.empty(({count}, 1280), dtype=np.float16)
for start in range(0, {count}, 10000):
    block = rng.standard_normal((min(10000, {count} - start), 1280)).astype(np.float32)
    vectors[start:start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
copies = min(1000, {count} // 2)  # a few near copies, so that the search has pairs to find
noisy = vectors[:copies].astype(np.float32) + rng.normal(0, 0.02, (copies, 1280)).astype(np.float32)
vectors[-copies:] = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
start = time.perf_counter()
found = pairs_above(vectors, 0.80)
elapsed = time.perf_counter() - start
print(f"{{elapsed:.1f}} {{len(found.first)}} {{own_peak_rss_mb():.0f}}")
"""
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    elapsed, pairs, peak = completed.stdout.split()
    print(f"\nblocked cosine search: {count:,} random unit 1280-d vectors (float16; {min(1000, count // 2)} planted "
          f"near copies), cosine >= 0.80: {elapsed} s, {int(pairs):,} pairs, peak RSS {peak} MB "
          "(targets: 60 s, 2048 MB)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generated", type=Path, default=REPO / "bench-output" / "generated")
    parser.add_argument("--emoji", type=Path, default=REPO / "bench-output" / "emoji")
    parser.add_argument("--flags", type=Path, default=DEFAULT_BENCH / "flags")
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--camera-jpegs", type=int, default=100, metavar="N",
                        help="also time N camera-like 9 MP JPEGs made from the generated originals (0: not)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["speed", "accuracy", "colour", "search"])
    args = parser.parse_args()
    print(json.dumps({"workers": WORKERS, "load_average": Path("/proc/loadavg").read_text().split()[:3]}))
    generated_ok = (args.generated / "truth.csv").is_file()
    if not generated_ok:
        print(f"skipped speed and accuracy: {args.generated / 'truth.csv'} is absent "
              "(python benchmarks/make_transforms.py bench-output/generated --from-bench)")
    if generated_ok and "speed" not in args.skip:
        speed(args.generated, args.camera_jpegs)
    if generated_ok and "accuracy" not in args.skip:
        accuracy(args.generated)
    if "colour" not in args.skip:
        colour(args.flags, args.emoji)
    if "search" not in args.skip:
        search(args.vectors)
    return 0


if __name__ == "__main__":
    sys.exit(main())
