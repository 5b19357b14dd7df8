"""dedup on a Dask LocalCluster against the same work done locally, in one run:

    python benchmarks/bench_dask.py --rounds 5 --shared-folder bench-output/shared
    python benchmarks/bench_dask.py --pictures 0 --hashes 1000000 10000000
    python benchmarks/bench_dask.py --hashes --malloc 0 --undo malloc

1. Hashing --pictures small JPEGs (benchmarks/bench_memory.py make_pictures, kept in
   bench-output/pictures/nCOUNT and reused): hash_many over 2 local processes, then over
   the LocalCluster of `--scheduler local:2` (2 single-threaded worker processes, started
   and warmed up beforehand, as a standing cluster would be), --rounds times in turn; the
   overhead is Dask's time over the local time, minus 1 (the median is the figure, as the
   machine is shared). Each line also gives the CPU time the workers spent (the pool's
   processes, or the Dask workers) and this process's own (with Dask, the scheduler's).
   The records must be equal. `--undo malloc batch` hashes on Dask without
   those fixes (README, Running on a Dask cluster), to measure what each one is worth.
   With --delete, a whole `delete` dry run on the pictures, locally and with --scheduler
   (hashing and candidate pairs on the cluster): times, and whether the plans are equal.
   Then --malloc of the pictures are hashed one by one in three fresh processes: as
   normal, with the nanny's MALLOC_TRIM_THRESHOLD_=65536, and with it and then
   distributed.prepare_worker_process (CPU a file and page faults).
2. The exact pair search on --hashes random 64-bit hashes (a tenth of them near copies of
   others) at --bits on a fresh 2-worker LocalCluster: wall time, the pairs, each worker's
   peak RSS, and exactness on --sample rows, each compared by brute force with every hash.
   Up to --local-up-to hashes the local engine runs too and its pairs must be the same.
   Each line says how many bytes of hashes the client put in the tasks; with
   --shared-folder the search runs again with its blocks written there once and read by
   the workers (dedup match --shared-folder), and says what it sent then.

Needs the extra dask (pip install 'dedup-cli[dask]'). The machine is shared: run it under
the benchmark lock, and read timings taken under load as pessimistic.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from bench_memory import make_pictures
from common import REPO

sys.path.insert(0, str(REPO))

from dedup_cli import distributed as dedup_distributed  # noqa: E402
from dedup_cli.fingerprint import hashing  # noqa: E402
from dedup_cli.search import engine, index  # noqa: E402


def peak_rss_mb() -> float:
    """This process's peak resident memory (run on each worker through client.run)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds(who=resource.RUSAGE_SELF) -> float:
    """User and system CPU time of this process (run on each worker through client.run),
    or of its waited-for children."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def started_cluster(workers: int):
    """A client of the LocalCluster `--scheduler local:N` starts (distributed.local_cluster)."""
    from distributed import Client

    with dedup_distributed.local_cluster(workers) as cluster, Client(cluster) as client:
        yield client


def undo(fixes: list[str]) -> None:
    """Run the Dask hashing as it was before the fixes named (to measure each): 'malloc'
    (tasks leave the nanny's malloc setting), 'batch' (tasks of --batch-size files)."""
    if "malloc" in fixes:
        def map_unprepared(pool, function, iterable, chunksize=1):
            return dedup_distributed._results_in_order([pool.client.submit(function, batch, pure=False)
                                                        for batch in iterable])

        dedup_distributed.DaskPool.map = map_unprepared
    if "batch" in fixes:
        dedup_distributed.DaskPool.min_batch_size = 1


def serial_hashing(folder: str, count: int, prepare: bool) -> None:
    """Run in a fresh process: the CPU time and page faults of hash_file on `count` of the
    pictures in `folder`, one after the other, after prepare_worker_process when `prepare`."""
    if prepare:
        dedup_distributed.prepare_worker_process()
    paths = sorted(str(path) for path in Path(folder).rglob("*.jpg"))[:count]
    settings = hashing.HashSettings()
    hashing.hash_file(paths[0], settings)
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.thread_time()
    for path in paths:
        hashing.hash_file(path, settings)
    seconds, after = time.thread_time() - start, resource.getrusage(resource.RUSAGE_SELF)
    print(f"  MALLOC_TRIM_THRESHOLD_={os.environ.get('MALLOC_TRIM_THRESHOLD_', 'unset')}"
          f"{', prepare_worker_process' if prepare else ''}: {1000 * seconds / len(paths):.2f} ms CPU a file, "
          f"{after.ru_minflt - before.ru_minflt} page faults; load average {os.getloadavg()[0]:.2f}", flush=True)


def bench_malloc(folder: Path, count: int) -> None:
    """serial_hashing in three fresh processes: as a local pool's worker, as a Dask worker
    (the nanny's MALLOC_TRIM_THRESHOLD_), and as a Dask worker after prepare_worker_process."""
    print(f"hashing {count} of the JPEGs in one process, one after the other:", flush=True)
    for variable, prepare in ((None, False), ("65536", False), ("65536", True)):
        environment = {key: value for key, value in os.environ.items() if key != "MALLOC_TRIM_THRESHOLD_"}
        if variable:
            environment["MALLOC_TRIM_THRESHOLD_"] = variable
        code = f"import bench_dask; bench_dask.serial_hashing({str(folder)!r}, {count}, {prepare})"
        subprocess.run([sys.executable, "-c", code], env=environment, cwd=Path(__file__).parent, check=True)


def bench_delete(count: int, workers: int) -> None:
    """A whole `delete` dry run on the pictures (no cache), locally and with --scheduler
    on a LocalCluster (hashing and the candidate pairs there): time, and the same plan."""
    from dedup_cli.pipeline import CollectionOptions, DeleteOptions, run_delete

    folder = picture_folder(count)
    with started_cluster(workers) as client, tempfile.TemporaryDirectory() as output:
        client.run(hashing.hash_file, str(next(folder.rglob("*.jpg"))), hashing.HashSettings())
        results = {}
        for name, scheduler in (("local", None), ("Dask", client.scheduler.address)):
            load = os.getloadavg()[0]
            start = time.perf_counter()
            options = CollectionOptions(folder, workers=workers, scheduler=scheduler)
            results[name] = run_delete(options, DeleteOptions(Path(output) / name, review=False)).plan
            print(f"delete dry run on {count} JPEGs, {name}: {time.perf_counter() - start:.1f} s, "
                  f"{len(results[name].groups)} groups, {len(results[name].removals)} removals; "
                  f"load average {load:.2f}", flush=True)
    print(f"  the same plan: {results['local'] == results['Dask']}")


def picture_folder(count: int) -> Path:
    """bench-output/pictures/nCOUNT, made the first time."""
    folder = REPO / "bench-output" / "pictures" / f"n{count}"
    if not (folder / f"{(count - 1) // 1000:03d}" / f"{count - 1:06d}.jpg").exists():
        make_pictures(folder, count)
    return folder


def bench_hashing(count: int, workers: int, rounds: int) -> None:
    folder = picture_folder(count)
    paths = sorted(str(path) for path in folder.rglob("*.jpg"))
    settings = hashing.HashSettings()
    start = time.perf_counter()
    with started_cluster(workers) as client:
        client.run(hashing.hash_file, paths[0], settings)  # imports on every worker, as on a standing cluster
        print(f"hashing {len(paths)} JPEGs on {workers} processes, local pool then Dask, {rounds} round(s) "
              f"(cluster start and warm-up {time.perf_counter() - start:.1f} s, not counted):", flush=True)
        overheads, pool = [], dedup_distributed.DaskPool(client)
        for _ in range(rounds):
            load = os.getloadavg()[0]
            local_seconds, local_cpu, local = timed(lambda: hashing.hash_many(paths, settings, workers=workers),
                                                    lambda: cpu_seconds(resource.RUSAGE_CHILDREN))
            dask_seconds, dask_cpu, remote = timed(lambda: hashing.hash_many(paths, settings, pool=pool),
                                                   lambda: sum(client.run(cpu_seconds).values()))
            same = [(r.path, r.packed_bits, r.colour, r.error) for r in local] == \
                   [(r.path, r.packed_bits, r.colour, r.error) for r in remote]
            overheads.append(dask_seconds / local_seconds - 1)
            print(f"  local {local_seconds:.1f} s ({len(paths) / local_seconds:.0f}/s, CPU {local_cpu[0]:.1f} s in "
                  f"the workers, {local_cpu[1]:.1f} s here), Dask {dask_seconds:.1f} s "
                  f"({len(paths) / dask_seconds:.0f}/s, CPU {dask_cpu[0]:.1f} s in the workers, {dask_cpu[1]:.1f} s "
                  f"here with the scheduler): overhead {100 * overheads[-1]:+.1f}%; records identical: {same}; "
                  f"load average {load:.2f} -> {os.getloadavg()[0]:.2f}", flush=True)
    print(f"  median overhead {100 * statistics.median(overheads):+.1f}%")


def timed(work, workers_cpu):
    """(wall seconds, (CPU seconds of the workers, of this process), result) of work()."""
    workers_before, own_before = workers_cpu(), cpu_seconds()
    start = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - start
    return seconds, (workers_cpu() - workers_before, cpu_seconds() - own_before), result


def synthetic_hashes(count: int, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    packed = rng.integers(0, 256, size=(count, 8), dtype=np.uint8)
    copies = rng.choice(count, size=count // 10, replace=False)
    flips = np.zeros((len(copies), 64), dtype=np.uint8)
    for _ in range(6):  # up to 6 random bit positions flipped (some may coincide)
        flips[np.arange(len(copies)), rng.integers(0, 64, size=len(copies))] = 1
    packed[copies] = packed[rng.integers(0, count, size=len(copies))] ^ np.packbits(flips, axis=1)
    return packed


def sampled_rows_exact(packed: np.ndarray, first, second, max_bits: int, samples: int) -> bool:
    """The pairs of `samples` random rows are exactly those brute force finds for them."""
    rng = np.random.default_rng(1)
    words = packed.view(np.uint64).ravel()
    for row in rng.choice(len(packed), size=samples, replace=False).tolist():
        distances = np.bitwise_count(words ^ words[row])
        expected = set(np.flatnonzero(distances <= max_bits).tolist()) - {row}
        found = set(second[first == row].tolist()) | set(first[second == row].tolist())
        if found != expected:
            return False
    return True


def bench_match(count: int, max_bits: int, workers: int, samples: int, local_up_to: int, shared_folder) -> None:
    packed = synthetic_hashes(count)
    with started_cluster(workers) as client:
        sent = counted_submissions(client)
        start = time.perf_counter()
        first, second, distances = index.pairs_within(packed, 64, max_bits, index.IndexSettings(
            cluster=dedup_distributed.ClusterSearch(client)))
        seconds = time.perf_counter() - start
        worker_mb = sorted(client.run(peak_rss_mb).values())
        blocks = len(dedup_distributed.block_bounds(count, dedup_distributed.worker_threads(client)))
        in_tasks = sent["bytes"]
        if shared_folder is not None:
            sent["bytes"] = 0
            start = time.perf_counter()
            shared = index.pairs_within(packed, 64, max_bits, index.IndexSettings(
                cluster=dedup_distributed.ClusterSearch(client, str(shared_folder))))
            shared_seconds = time.perf_counter() - start
    line = (f"match {count} 64-bit hashes at {max_bits} bits on {workers} Dask workers ({blocks} blocks, "
            f"{blocks * (blocks + 1) // 2} tasks): {seconds:.1f} s, {len(first)} pairs, peak RSS per worker "
            f"{', '.join(f'{mb:.0f}' for mb in worker_mb)} MB, client {peak_rss_mb():.0f} MB, "
            f"{in_tasks / 1e6:.1f} MB of hashes sent in the tasks ({packed.nbytes / 1e6:.1f} MB in all); "
            f"exact on {samples} sampled rows: {sampled_rows_exact(packed, first, second, max_bits, samples)}")
    if shared_folder is not None:
        same = all(np.array_equal(a, b) for a, b in zip(shared, (first, second, distances), strict=True))
        line += (f"; blocks in a shared folder: {shared_seconds:.1f} s, {packed.nbytes / 1e6:.1f} MB written there "
                 f"once, {sent['bytes'] / 1e3:.1f} kB of paths sent in the tasks, same pairs: {same}")
    if count <= local_up_to:
        start = time.perf_counter()
        local = engine.pairs_within(packed, max_bits, workers=workers)
        local_seconds = time.perf_counter() - start
        same = all(np.array_equal(a, b) for a, b in zip(local, (first, second, distances), strict=True))
        line += f"; local engine {local_seconds:.1f} s on {workers} threads, identical: {same}"
    print(line + f"; load average {os.getloadavg()[0]:.2f}", flush=True)


def counted_submissions(client) -> dict:
    """{"bytes": ...}, adding up the bytes of the arrays and paths `client` puts in the
    tasks it submits from now on (what it sends of the hashes)."""
    sent, submit = {"bytes": 0}, client.submit

    def submit_counted(*args, **kwargs):
        sent["bytes"] += sum(value.nbytes if isinstance(value, np.ndarray) else len(value)
                             for value in args if isinstance(value, np.ndarray | str))
        return submit(*args, **kwargs)

    client.submit = submit_counted
    return sent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pictures", type=int, default=10_000, help="JPEGs to hash (0: skip)")
    parser.add_argument("--rounds", type=int, default=3, help="hashing rounds (local, then Dask, each)")
    parser.add_argument("--undo", nargs="*", default=[], choices=("malloc", "batch"),
                        help="hash on Dask without these fixes, to measure each")
    parser.add_argument("--malloc", type=int, default=3000,
                        help="pictures hashed one by one in a fresh process with and without the nanny's "
                             "MALLOC_TRIM_THRESHOLD_ (0: skip)")
    parser.add_argument("--delete", action="store_true", help="also time a delete dry run, local and on Dask")
    parser.add_argument("--hashes", type=int, nargs="*", default=[1_000_000], help="hash counts for match")
    parser.add_argument("--bits", type=int, default=10, help="match threshold in bits")
    parser.add_argument("--workers", type=int, default=2, help="local processes and Dask workers")
    parser.add_argument("--sample", type=int, default=200, help="rows checked by brute force")
    parser.add_argument("--shared-folder", type=Path, default=None,
                        help="also run match with its blocks written to this folder (match --shared-folder)")
    parser.add_argument("--local-up-to", type=int, default=2_000_000, help="also run the local engine up to this")
    args = parser.parse_args()
    print(f"load average before: {', '.join(f'{value:.2f}' for value in os.getloadavg())} on "
          f"{hashing.default_workers()} CPUs", flush=True)
    if args.shared_folder is not None:
        args.shared_folder.mkdir(parents=True, exist_ok=True)
    if args.pictures:
        undo(args.undo)
        bench_hashing(args.pictures, args.workers, args.rounds)
    if args.pictures and args.delete:
        bench_delete(args.pictures, args.workers)
    if args.pictures and args.malloc:
        bench_malloc(picture_folder(args.pictures), min(args.malloc, args.pictures))
    for count in args.hashes:
        bench_match(count, args.bits, args.workers, args.sample, args.local_up_to, args.shared_folder)
    print(f"load average after: {', '.join(f'{value:.2f}' for value in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
