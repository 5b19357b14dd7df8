"""Dask: the same exact pair engine and the same hashing, scheduled on a cluster.

Only the scheduling is new. The pair search cuts the rows into blocks and runs the local
engine on every block pair (i <= j: block i with itself, or block i as queries against
block j), so each pair within the threshold is found by exactly one task; the client
merges the tasks of one block row, sorted by (first, second), before the next, as the
local pairs_within and cross_pairs are. Hashing sends batches of paths to the workers,
which read the files at the same paths (shared storage) and send back HashRecords; the
client alone writes the cache. Every task is a pure function of its arguments, which
travel with the task, so Dask may run it again on another worker when one dies.

The pair search is reached through index.iter_pairs, whose IndexSettings carries a
ClusterSearch (`cluster`): `match`, and the candidate pairs of delete, search and
evaluate (plan/similarity.py's Matcher), whose colour checks stay on the client.

`distributed` is an optional dependency (the extra `dask`): it is imported only here,
only when a scheduler is asked for.
"""

from __future__ import annotations

import ctypes
import shutil
import tempfile
import warnings
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dedup_cli.errors import DedupError, MissingDependency

INSTALL_HINT = "--scheduler needs Dask's distributed package: pip install 'dedup-cli[dask]'"
BLOCK_ROWS = 1 << 20  # hashes per block at most: a task holds two blocks and their tables (~250 MB at 1M)
TASKS_PER_THREAD = 4  # at least this many block pairs per worker thread, so that all are busy
CONNECT_SECONDS = 30
# glibc's own limits when no setting fixes them: below MMAP_THRESHOLD an allocation comes
# from the heap, and up to TRIM_THRESHOLD of free heap stays with the process (see
# prepare_worker_process).
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 64 << 20
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters (malloc.h)


class DaskMissing(MissingDependency):
    """--scheduler was given but `distributed` cannot be imported (exit 2, as any missing
    optional package)."""


class SchedulerUnreachable(DedupError):
    """No Dask scheduler answered at the address given."""


class SharedFolderUnreadable(DedupError):
    """A worker cannot read a block the client wrote into the shared folder."""


def require():
    """The `distributed` module; DaskMissing (saying what to install) without it."""
    try:
        import distributed
    except ImportError as exc:
        raise DaskMissing(INSTALL_HINT) from exc
    return distributed


def local_workers(address: str) -> int | None:
    """N of `local:N` (or the CPUs for `local`), or None for a scheduler address."""
    if address == "local":
        from dedup_cli.cpus import available_cpus

        return available_cpus()
    if address.startswith("local:"):
        count = address.removeprefix("local:")
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"'{address}': local:N needs a number of workers N >= 1")
        return int(count)
    return None


@contextmanager
def connect(address: str):
    """A Client of the scheduler at `address` (tcp://host:port), or of
    a new LocalCluster of one single-threaded worker process per CPU for `local` (N for
    `local:N`) on this machine only, closed on exit."""
    distributed = require()
    workers = local_workers(address)
    if workers is not None:
        with local_cluster(workers, dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
            yield client
        return
    try:
        client = distributed.Client(address, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError, ValueError) as exc:
        raise SchedulerUnreachable(f"no Dask scheduler answered at '{address}': {exc}") from exc
    with client:
        yield client


@contextmanager
def local_cluster(workers: int, dashboard_address: str | None = None):
    """The LocalCluster of `--scheduler local:N`: `workers` single-threaded worker
    processes on localhost."""
    import distributed

    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=dashboard_address) as cluster:
        yield cluster


def worker_threads(client) -> int:
    """Threads over all the cluster's workers (at least 1)."""
    return max(1, sum(client.nthreads().values()))


_prepared = False


def prepare_worker_process() -> None:
    """Once per worker process, before its first dedup task: give malloc back the limits
    a process started without Dask has.

    A Dask nanny starts its workers with MALLOC_TRIM_THRESHOLD_=65536 (so that freed memory
    goes back to the system at once), and any such setting turns off glibc's dynamic mmap
    threshold: every allocation above 128 KB, such as each decoded image, is then mapped
    and unmapped, and its pages faulted in again, every time. Hashing small JPEGs in one
    process with that variable took 30% more CPU and 250,000 page faults instead of 21
    for 3,000 files; this brings both back (bench_dask.py, README: Running on a Dask
    cluster). Not Linux/glibc: nothing to do."""
    global _prepared
    if _prepared:
        return
    _prepared = True
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)


def on_worker(function, *args):
    """Run `function(*args)` in a prepared worker process (the tasks' entry point)."""
    prepare_worker_process()
    return function(*args)


# ---------------------------------------------------------------------------------------
# The exact pair search


def block_bounds(n_rows: int, threads: int, block_rows: int = BLOCK_ROWS) -> list[tuple[int, int]]:
    """Row ranges of the blocks: at most block_rows each, and enough of them for about
    TASKS_PER_THREAD block pairs per thread (blocks of equal size, the last shorter)."""
    if n_rows == 0:
        return []
    blocks = max(-(-n_rows // block_rows), 1)
    while blocks * (blocks + 1) // 2 < TASKS_PER_THREAD * threads and blocks < n_rows:
        blocks += 1
    size = -(-n_rows // blocks)
    return [(start, min(start + size, n_rows)) for start in range(0, n_rows, size)]


def block_pair_task(queries: np.ndarray | str | None, packed: np.ndarray | str, max_bits: int, tree_type: str,
                    leaf_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One task: the pairs of `packed` among themselves (queries None) or of `queries`
    against `packed`, as block-local int32 rows and uint8 distances sorted by (first,
    second); a block is its rows, or the path of the .npy file that holds them (see
    shared_blocks). Runs on a worker; the engine's threads share the worker's CPUs with
    the worker's other tasks."""
    from dedup_cli.search.index import IndexSettings, iter_pairs

    queries, packed = (None if queries is None else _block_rows(queries)), _block_rows(packed)
    chunks = list(iter_pairs(packed, 8 * packed.shape[1], queries, max_bits, IndexSettings(tree_type, leaf_size),
                             threads=_threads_per_task()))
    if not chunks:
        empty = np.zeros(0, dtype=np.int32)
        return empty, empty, np.zeros(0, dtype=np.uint8)
    first, second, distances = _merged(chunks)
    return first.astype(np.int32), second.astype(np.int32), distances.astype(np.uint8 if max_bits < 256 else np.int32)


def _threads_per_task() -> int | None:
    """The CPUs of this machine over the worker's task threads (None: not on a worker)."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return None
    from dedup_cli.cpus import available_cpus

    return max(1, available_cpus() // max(1, worker.state.nthreads))


@dataclass(frozen=True)
class ClusterSearch:
    """What IndexSettings.cluster holds with --scheduler: index.iter_pairs hands its
    search to `iter_pairs` here, on the cluster of `client`, the hash blocks written into
    `shared_folder` for the workers to read when one is given (match --shared-folder).
    The index never imports this module: the search comes to it in its settings."""

    client: object
    shared_folder: str | None = None

    def iter_pairs(self, packed: np.ndarray, queries: np.ndarray | None, max_bits: int, tree_type: str = "mih",
                   leaf_size: int = 40) -> Iterator[tuple[np.ndarray, ...]]:
        return iter_pairs(self.client, packed, queries, max_bits, tree_type, leaf_size, self.shared_folder)


def iter_pairs(client, packed: np.ndarray, queries: np.ndarray | None, max_bits: int, tree_type: str = "mih",
               leaf_size: int = 40, shared_folder=None) -> Iterator[tuple[np.ndarray, ...]]:
    """The pairs of index.iter_pairs(packed, n_bits, queries, max_bits), computed on the
    cluster of `client` (through ClusterSearch, when index.iter_pairs's settings have one):
    chunks of int64 (first, second, distances), in order of first, then second (queries
    None: first < second, both rows of `packed`). At most a few tasks per worker thread
    are in flight, and the client holds the pairs of one block row of queries at a time.
    Blocks of at most BLOCK_ROWS rows, sent in the tasks, or written once into
    `shared_folder` for the workers to read (shared_blocks)."""
    own = queries is None
    query_rows = packed if own else queries
    threads = worker_threads(client)
    query_blocks = block_bounds(len(query_rows), threads, BLOCK_ROWS)
    set_blocks = query_blocks if own else block_bounds(len(packed), threads, BLOCK_ROWS)
    tasks = [(row, column) for row in range(len(query_blocks)) for column in range(len(set_blocks))
             if not own or column >= row]
    parts = [(packed, set_blocks)] if own else [(packed, set_blocks), (query_rows, query_blocks)]
    with shared_blocks(shared_folder, parts) as (set_block, *query_block):
        query_block = query_block[0] if query_block else set_block
        results = _run_in_order(client, tasks, lambda row, column: _submit_block_pair(
            client, None if own and row == column else query_block(row), set_block(column), max_bits, tree_type,
            leaf_size), in_flight=2 * threads + 2)
        pending, current = [], 0
        for (row, column), (first, second, distances) in results:
            if row != current:
                yield _merged(pending)
                pending, current = [], row
            pending.append((first.astype(np.int64) + query_blocks[row][0],
                            second.astype(np.int64) + set_blocks[column][0], distances.astype(np.int64)))
        if pending:
            yield _merged(pending)


@contextmanager
def shared_blocks(folder, parts: list[tuple[np.ndarray, list[tuple[int, int]]]]):
    """Per (rows, block bounds) of `parts`, a function of a block's number that gives what
    a task receives of it: its rows (folder None: they travel inside the task), or the
    path of a .npy file of them, written once into a new subfolder of `folder` (which
    every worker must see at the same path: shared storage) and removed on exit. (Writes
    to disk.) A task then carries a path instead of its blocks: the client sends each
    block once to the storage instead of once per task it is in."""
    if folder is None:
        yield [lambda number, rows=rows, bounds=bounds: np.ascontiguousarray(rows[slice(*bounds[number])])
               for rows, bounds in parts]
        return
    subfolder = Path(tempfile.mkdtemp(prefix="dedup-blocks-", dir=folder))
    try:
        paths = []
        for part, (rows, bounds) in enumerate(parts):
            paths.append([str(subfolder / f"{part}-{number}.npy") for number in range(len(bounds))])
            for path, (start, end) in zip(paths[-1], bounds, strict=True):
                np.save(path, rows[start:end])
        yield [part_paths.__getitem__ for part_paths in paths]
    finally:
        shutil.rmtree(subfolder, ignore_errors=True)


def _block_rows(block: np.ndarray | str) -> np.ndarray:
    """A block's rows, read from its .npy file when the task got its path."""
    if not isinstance(block, str):
        return block
    try:
        return np.load(block)
    except OSError as exc:
        raise SharedFolderUnreadable(f"a Dask worker cannot read '{block}' ({exc.strerror or exc}): the shared "
                                     "folder must be on storage every worker sees at the same path") from exc


def _submit_block_pair(client, queries, packed, max_bits, tree_type, leaf_size):
    with warnings.catch_warnings():
        # Without a shared folder the blocks travel inside the task on purpose (Dask warns
        # above 10 MB): the scheduler keeps them, so a task lost with its worker can run
        # again elsewhere, which scattered data lost with that worker would not allow.
        warnings.filterwarnings("ignore", message="Sending large graph", category=UserWarning)
        return client.submit(on_worker, block_pair_task, queries, packed, max_bits, tree_type, leaf_size, pure=False)


def _run_in_order(client, keys, submit, in_flight: int):
    """(key, result) of submit(*key) for each key, in the order of `keys`, with at most
    `in_flight` tasks submitted and not yet read."""
    waiting, running = deque(keys), deque()
    while waiting or running:
        while waiting and len(running) < in_flight:
            key = waiting.popleft()
            running.append((key, submit(*key)))
        key, future = running.popleft()
        yield key, future.result()
        future.release()


def _merged(parts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One block row's pairs (first rows within one block), sorted by first, then second."""
    first, second, distances = (np.concatenate(column) for column in zip(*parts))
    order = np.lexsort((second, first))
    return first[order], second[order], distances[order]


# ---------------------------------------------------------------------------------------
# Hashing


class DaskPool:
    """What hash_many needs of a pool (`map`, results in order, `workers()` and
    `min_batch_size`), run as Dask tasks. Every batch is submitted at once, as
    ProcessPoolExecutor.map does: the scheduler hands them out as workers free up (a batch
    is a list of paths, its result a few KB a file), and a batch lost with its worker is
    run again by Dask."""

    # A task costs the client, the scheduler and the worker some milliseconds of CPU
    # whatever its size: 64 small JPEGs a task took 1.3 to 1.7 s of the client's CPU for
    # 10,000 files, 256 a task 0.6 to 0.9 s (bench_dask.py --undo batch).
    min_batch_size = 256

    def __init__(self, client):
        self.client = client

    def map(self, function, iterable, chunksize: int = 1):
        futures = [self.client.submit(on_worker, function, batch, pure=False) for batch in iterable]
        return _results_in_order(futures)

    def workers(self) -> int:
        return worker_threads(self.client)


def _results_in_order(futures):
    for future in futures:
        yield future.result()
        future.release()
