"""Exact Hamming pair search over packed hashes: multi-index hashing (MIH) and brute force,
compiled with numba and run on every core.

Pure: packed uint8 hash rows in (np.packbits of the bits, any number of bytes; padding
bits are zero in every row, so they never count), pairs out as (first, second, distance)
int32 arrays, chunk by chunk. Nothing here knows about files.

Multi-index hashing: the bits are cut into m blocks of at most 16 bits, block b probed to
a radius r_b with the r_b + 1 adding up to max_bits + 1. Two hashes within max_bits of each
other are then within r_b of each other in at least one block (pigeonhole: were every
block r_b + 1 or more bits apart, the total would exceed max_bits). Per block the rows
are counting-sorted by block value; each query row looks up the buckets of the values
within r_b of its own (all flip masks, or the distinct values when fewer) and verifies
their rows by a full popcount. A pair is reported only by the first block that admits it,
so it comes out exactly once without a set of pairs seen. When nearly every pair is a
candidate anyway, a brute-force popcount scan does less work; choose_strategy weighs the
two with a cost model.

The work runs in tasks (a block and a range of query rows, taken in the order of their
value in that block) on worker threads, the kernels releasing the GIL. Pairs come out task
by task in a fixed order (not sorted: pairs_within and cross_pairs sort); memory stays
proportional to the rows plus the pairs of the tasks in flight.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

from dedup_cli.cpus import available_cpus

MAX_BLOCK_BITS = 16  # a block's lookup table has 2**width + 1 entries (256 KB at 16 bits)
COPY_BUDGET_BYTES = 512 * 2**20  # per-block sorted copies of the hashes are made within this
TILE_ROWS = 32  # query rows with one block value that probe its buckets together
EARLY_EXIT_SHARE = 0.2  # pairs are dropped on their first word when fewer than this pass it
# Costs for choosing a strategy, in brute-force comparisons of one word (about a nanosecond
# each here): the further words of a pair whose first word is within the threshold; a
# candidate verified through a table, and its further words; a bucket probed (shared by
# the rows of a tile); a distinct value scanned; a table entry built; a row sorted into a
# table; a word copied; a pair found (through a table it is verified in several blocks).
BRUTE_COST, BRUTE_WORD_COST, CANDIDATE_COST, CANDIDATE_WORD_COST = 1.0, 0.25, 0.4, 1.0
PROBE_COST, SCAN_COST, TABLE_COST, ROW_COST, WORD_COST = 5.0, 0.5, 20.0, 100.0, 10.0
BRUTE_PAIR_COST, TABLE_PAIR_COST = 10.0, 60.0


class Pairs(NamedTuple):
    """Row pairs and their Hamming distances (int32 arrays of one length)."""

    first: np.ndarray
    second: np.ndarray
    distances: np.ndarray


@dataclass(frozen=True)
class Block:
    """Bits [start, start + width) of a hash (in hash_words' layout), probed to `radius`
    differing bits; radius -1: not probed."""

    start: int
    width: int
    radius: int

    def within(self) -> int:
        """How many block values lie within `radius` of a given one."""
        return _values_within(self.width, self.radius)


@functools.lru_cache(maxsize=1024)
def _values_within(width: int, radius: int) -> int:
    return sum(math.comb(width, k) for k in range(min(radius, width) + 1))


@dataclass(frozen=True)
class MultiIndex:
    """Multi-index hashing with these blocks (which must cover every bit once and whose
    radius + 1 must add up to max_bits + 1)."""

    blocks: tuple[Block, ...]

    @classmethod
    def split(cls, n_bits: int, max_bits: int, n_blocks: int) -> MultiIndex:
        """n_bits cut into n_blocks blocks as even as possible, wider ones first; the
        max_bits + 1 differences the pigeonhole rule needs shared out as evenly, wider
        blocks first. Raises ValueError when a block would exceed MAX_BLOCK_BITS."""
        if not 1 <= n_blocks <= n_bits or -(-n_bits // n_blocks) > MAX_BLOCK_BITS:
            raise ValueError(f"cannot cut {n_bits} bits into {n_blocks} blocks of 1..{MAX_BLOCK_BITS} bits")
        width, wider = divmod(n_bits, n_blocks)
        share, extra = divmod(max_bits + 1, n_blocks)
        blocks, start = [], 0
        for number in range(n_blocks):
            block_width = width + (number < wider)
            blocks.append(Block(start, block_width, share - 1 + (number < extra)))
            start += block_width
        return cls(tuple(blocks))

    @classmethod
    def splits(cls, n_bits: int, max_bits: int) -> list[MultiIndex]:
        """Every split worth considering: blocks of 4 to MAX_BLOCK_BITS bits."""
        fewest = -(-n_bits // MAX_BLOCK_BITS)
        return [cls.split(n_bits, max_bits, count) for count in range(fewest, max(fewest, n_bits // 4) + 1)]

    @classmethod
    def cheapest(cls, n_bits: int, max_bits: int, n_rows: int, n_queries: int | None = None) -> MultiIndex:
        """The split with the least expected work (see cost)."""
        return min(cls.splits(n_bits, max_bits), key=lambda option: option.cost(n_rows, n_queries))

    def cost(self, n_rows: int, n_queries: int | None = None) -> float:
        """Expected work of searching n_queries rows (default: n_rows) against n_rows rows,
        in BRUTE_COST units, for hashes whose bits look uniformly random."""
        n_queries = n_rows if n_queries is None else n_queries
        n_bits = sum(block.width for block in self.blocks)
        max_bits = sum(block.radius + 1 for block in self.blocks) - 1
        total = TABLE_PAIR_COST * _expected_pairs(n_bits, max_bits, n_rows, n_queries)
        for block in self.blocks:
            if block.radius < 0:
                continue
            size, within = 2**block.width, block.within()
            sharing = min(TILE_ROWS, max(1.0, n_queries / size))  # query rows per tile
            lookups = min(within * PROBE_COST, min(size, n_rows) * SCAN_COST) / sharing
            verify = CANDIDATE_COST + CANDIDATE_WORD_COST * _further_words(n_bits, max_bits)
            total += n_queries * (lookups + verify * n_rows * within / size)
            total += size * TABLE_COST + n_rows * (ROW_COST + -(-n_bits // 64) * WORD_COST)
        return total


@dataclass(frozen=True)
class BruteForce:
    """Compare every pair by popcount."""

    @staticmethod
    def cost(n_bits: int, max_bits: int, n_rows: int, n_queries: int | None = None) -> float:
        """Expected work, in the units of MultiIndex.cost."""
        n_queries = n_rows if n_queries is None else n_queries
        return (n_rows * n_queries * (BRUTE_COST + BRUTE_WORD_COST * _further_words(n_bits, max_bits))
                + BRUTE_PAIR_COST * _expected_pairs(n_bits, max_bits, n_rows, n_queries))


@functools.lru_cache(maxsize=256)
def _first_word_within(max_bits: int) -> float:
    """Share of random pairs whose first words differ in at most max_bits bits."""
    return sum(math.comb(64, k) for k in range(min(max_bits, 64) + 1)) / 2**64


def _further_words(n_bits: int, max_bits: int) -> float:
    """Words after the first read per pair of random hashes (see _first_limit)."""
    share = _first_word_within(max_bits)
    return (share if share < EARLY_EXIT_SHARE else 1.0) * (-(-n_bits // 64) - 1)


def _expected_pairs(n_bits: int, max_bits: int, n_rows: int, n_queries: int) -> float:
    """Pairs within max_bits among random hashes."""
    return n_rows * n_queries * _share_within(n_bits, max_bits)


@functools.lru_cache(maxsize=256)
def _share_within(n_bits: int, max_bits: int) -> float:
    """Share of pairs of random hashes within max_bits (exact integers: 2**n_bits is huge)."""
    return sum(math.comb(n_bits, k) for k in range(min(max_bits, n_bits) + 1)) / 2**n_bits


def choose_strategy(n_bits: int, max_bits: int, n_rows: int, n_queries: int | None = None) -> MultiIndex | BruteForce:
    """Multi-index hashing unless brute force is expected to do less work (large
    thresholds, few rows)."""
    if max_bits >= n_bits or n_rows < 2:
        return BruteForce()
    index = MultiIndex.cheapest(n_bits, max_bits, n_rows, n_queries)
    brute_force_cost = BruteForce.cost(n_bits, max_bits, n_rows, n_queries)
    return index if index.cost(n_rows, n_queries) < brute_force_cost else BruteForce()


def hash_words(packed: np.ndarray) -> np.ndarray:
    """Packed uint8 rows as C-contiguous uint64 words, zero padded to whole words."""
    packed = np.asarray(packed, dtype=np.uint8)
    n_words = max(1, -(-packed.shape[1] // 8))
    padded = np.zeros((len(packed), n_words * 8), dtype=np.uint8)
    padded[:, : packed.shape[1]] = packed
    return padded.view(np.uint64)


def block_values(words: np.ndarray, block: Block) -> np.ndarray:
    """The value of `block` in every row of `words` (uint32; a block may straddle two words)."""
    word, shift = divmod(block.start, 64)
    values = words[:, word] >> np.uint64(shift)
    if shift + block.width > 64:
        values |= words[:, word + 1] << np.uint64(64 - shift)
    return (values & np.uint64((1 << block.width) - 1)).astype(np.uint32)


def iter_pairs_within(packed: np.ndarray, max_bits: int, strategy: MultiIndex | BruteForce | None = None,
                      workers: int | None = None, chunk_rows: int | None = None,
                      chunk_pairs: int = 1 << 18) -> Iterator[Pairs]:
    """Every pair of rows i < j of `packed` at most `max_bits` bits apart, exactly once,
    in chunks (in a fixed order, but not sorted). `strategy` None chooses one (see
    choose_strategy); the others tune the work: query rows per task and the first output
    buffer of a task, in pairs."""
    yield from _iter_pairs(packed, packed, max_bits, True, strategy, workers, chunk_rows, chunk_pairs)


def iter_cross_pairs(queries: np.ndarray, packed: np.ndarray, max_bits: int,
                     strategy: MultiIndex | BruteForce | None = None, workers: int | None = None,
                     chunk_rows: int | None = None, chunk_pairs: int = 1 << 18) -> Iterator[Pairs]:
    """Every (query row, row of `packed`) at most `max_bits` bits apart, exactly once, in
    chunks (see iter_pairs_within). Both arrays need the same number of bytes per row."""
    yield from _iter_pairs(queries, packed, max_bits, False, strategy, workers, chunk_rows, chunk_pairs)


def pairs_within(packed: np.ndarray, max_bits: int, **options) -> Pairs:
    """All of iter_pairs_within at once, sorted by first, then second row."""
    return _sorted(_concatenate(iter_pairs_within(packed, max_bits, **options)), len(packed))


def cross_pairs(queries: np.ndarray, packed: np.ndarray, max_bits: int, **options) -> Pairs:
    """All of iter_cross_pairs at once, sorted by query row, then row."""
    return _sorted(_concatenate(iter_cross_pairs(queries, packed, max_bits, **options)), len(packed))


def _concatenate(chunks) -> Pairs:
    parts = list(chunks)
    if not parts:
        empty = np.zeros(0, dtype=np.int32)
        return Pairs(empty, empty, empty)
    return Pairs(*(np.concatenate(column) for column in zip(*parts)))


def _sorted(pairs: Pairs, n_rows: int) -> Pairs:
    order = np.argsort(pairs.first.astype(np.int64) * n_rows + pairs.second)
    return Pairs(pairs.first[order], pairs.second[order], pairs.distances[order])


def _iter_pairs(queries, packed, max_bits, own, strategy, workers, chunk_rows, chunk_pairs) -> Iterator[Pairs]:
    queries, packed = np.asarray(queries, dtype=np.uint8), np.asarray(packed, dtype=np.uint8)
    if queries.ndim != 2 or packed.ndim != 2 or queries.shape[1] != packed.shape[1]:
        raise ValueError(f"hash rows must have one length: {queries.shape} and {packed.shape}")
    if max_bits < 0 or not len(queries) or not len(packed):
        return
    strategy = strategy or choose_strategy(8 * packed.shape[1], max_bits, len(packed), len(queries))
    set_words = hash_words(packed)
    query_words = set_words if own else hash_words(queries)
    if isinstance(strategy, BruteForce):
        runner = _BruteRunner(query_words, set_words, own, max_bits)
    else:
        runner = _TableIndex(strategy, set_words).runner(query_words, own, max_bits)
    workers = workers or available_cpus()
    tasks = len(runner.units) * len(queries)
    chunk_rows = chunk_rows or max(64, min(16384, -(-tasks // (16 * workers))))
    yield from _stream(runner, len(queries), workers, chunk_rows, chunk_pairs)


def _first_limit(words: np.ndarray, max_bits: int) -> int:
    """The bits in which the first words of a pair may differ before the kernels drop it
    without reading the others: max_bits when that drops most pairs, else 64 (never):
    an exit taken about half the time mispredicts, and reading the other words costs less
    (measured 2x at 256 bits, threshold 31)."""
    return max_bits if words.shape[1] == 1 or _first_word_within(max_bits) < EARLY_EXIT_SHARE else 64




def _stream(runner, n_queries: int, workers: int, chunk_rows: int, chunk_pairs: int) -> Iterator[Pairs]:
    """Run `runner` over each of its units and the query rows in tasks of chunk_rows, on
    `workers` threads, and yield each task's pairs in task order. A task that fills its
    buffer stops after its last complete query row; the rest of its rows run next (with a
    4x larger buffer if not even one row fitted), before any later task's pairs are
    yielded. At most 2 * workers tasks are in flight, so memory follows the buffers, not
    the number of pairs."""

    def task(unit, start, stop, capacity):
        pairs = Pairs(*(np.empty(capacity, dtype=np.int32) for _ in range(3)))
        count, done = runner(unit, start, stop, *pairs)
        return Pairs(*(column[:count].copy() for column in pairs)), done

    with ThreadPoolExecutor(max_workers=workers) as pool:
        waiting = deque((unit, start, min(start + chunk_rows, n_queries))
                        for unit in runner.units for start in range(0, n_queries, chunk_rows))
        running = deque()
        while waiting or running:
            while waiting and len(running) < 2 * workers:
                unit, start, stop = waiting.popleft()
                running.append((unit, start, stop, chunk_pairs, pool.submit(task, unit, start, stop, chunk_pairs)))
            unit, start, stop, capacity, future = running.popleft()
            pairs, done = future.result()
            if len(pairs.first):
                yield pairs
            if done < stop:
                capacity = capacity * 4 if done == start else capacity
                running.appendleft((unit, done, stop, capacity, pool.submit(task, unit, done, stop, capacity)))


class _BruteRunner:
    """Brute force as one unit of work over the query rows."""

    units = (0,)

    def __init__(self, query_words, set_words, own, max_bits):
        self.query_words, self.set_words, self.own, self.max_bits = query_words, set_words, own, max_bits

    def __call__(self, unit, start, stop, first, second, distances):
        return _brute_rows(start, stop, self.own, self.max_bits, _first_limit(self.query_words, self.max_bits),
                           self.query_words, self.set_words, first, second, distances)


class _BlockTable:
    """One probed block: the rows counting-sorted by block value (`rows`, with `bounds`
    into it per value; equal values keep their rows ascending), the hashes to verify
    against (`candidates`: in that order when `copied`, so verification reads memory in
    sequence; else the set's own rows), and what to probe (`probes`): the flip masks
    within the block's radius or, when that is cheaper (`scan`), its distinct values."""

    def __init__(self, block: Block, set_words: np.ndarray, copied: bool):
        values = block_values(set_words, block)
        self.rows = np.argsort(values, kind="stable").astype(np.int32)
        counts = np.bincount(values, minlength=2**block.width)
        self.bounds = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=self.bounds[1:])
        self.copied = copied
        self.candidates = set_words[self.rows] if copied else set_words
        masks = _flip_masks(block.width, block.radius)
        distinct = np.flatnonzero(counts).astype(np.uint64)
        self.scan = len(distinct) * SCAN_COST < len(masks) * PROBE_COST
        self.probes = distinct if self.scan else masks


@functools.lru_cache(maxsize=64)
def _flip_masks(width: int, radius: int) -> np.ndarray:
    """The values of `width` bits with at most `radius` bits set."""
    masks = np.arange(2**width, dtype=np.uint64)
    return masks[np.bitwise_count(masks) <= radius]


class _TableIndex:
    """A MultiIndex built over a set of hashes: where each block lies, and a _BlockTable
    per probed block (with sorted copies of the hashes while they fit COPY_BUDGET_BYTES)."""

    def __init__(self, strategy: MultiIndex, set_words: np.ndarray):
        blocks = strategy.blocks
        self.blocks, self.set_words = blocks, set_words
        starts = np.array([b.start for b in blocks], dtype=np.int64)
        self.widths = np.array([b.width for b in blocks], dtype=np.int64)
        self.radii = np.array([b.radius for b in blocks], dtype=np.int64)
        self.shifts = starts % 64
        # The word each block starts in and the one it reaches into (the same if none).
        self.block_words = np.stack([starts // 64, starts // 64 + (self.shifts + self.widths > 64)], axis=1)
        probed = [number for number, block in enumerate(blocks) if block.radius >= 0]
        copied = len(probed) * set_words.nbytes <= COPY_BUDGET_BYTES
        self.tables = {number: _BlockTable(blocks[number], set_words, copied) for number in probed}

    def runner(self, query_words: np.ndarray, own: bool, max_bits: int) -> _MihRunner:
        return _MihRunner(self, query_words, own, max_bits)


class _MihRunner:
    """Multi-index hashing, one unit of work per probed block. Within a unit the query
    rows run in the order of their value in that block, so rows with one value follow
    each other and share the buckets they probe (see _mih_rows)."""

    def __init__(self, index: _TableIndex, query_words: np.ndarray, own: bool, max_bits: int):
        self.index, self.query_words, self.own, self.max_bits = index, query_words, own, max_bits
        self.units = tuple(index.tables)
        if own:
            self.query_order = {number: table.rows for number, table in index.tables.items()}
        else:
            self.query_order = {number: np.argsort(block_values(query_words, index.blocks[number]),
                                                   kind="stable").astype(np.int32) for number in self.units}

    def __call__(self, unit, start, stop, first, second, distances):
        index, table = self.index, self.index.tables[unit]
        return _mih_rows(unit, start, stop, self.query_order[unit], self.own, self.max_bits,
                         _first_limit(self.query_words, self.max_bits), self.query_words,
                         index.block_words, index.shifts, index.widths, index.radii, table.rows, table.bounds,
                         table.candidates, table.copied, table.probes, table.scan, first, second, distances)


# ---- compiled kernels ---------------------------------------------------------------
# They release the GIL (one thread per task) and are cached on disk, so only the first run
# after an install pays for compiling. The candidate loop is written out in one function on
# purpose: a call that passes arrays costs numba reference counting and array views, which
# made that loop 4-10x slower when split into functions per bucket or per candidate.


@intrinsic
def _popcount(typingctx, value):
    """LLVM's ctpop: one instruction on CPUs that have it."""
    signature = types.int64(types.uint64)

    def codegen(context, builder, sig, args):
        return builder.ctpop(args[0])

    return signature, codegen


@njit(cache=True, nogil=True)
def _bits(low, high, shift, width):
    """Bits [shift, shift + width) of the 128-bit number high:low (shift < 64)."""
    value = low >> np.uint64(shift)
    if shift + width > 64:
        value |= high << np.uint64(64 - shift)
    return value & ((np.uint64(1) << np.uint64(width)) - np.uint64(1))


@njit(cache=True, nogil=True)
def _brute_rows(start, stop, own, max_bits, first_limit, query_words, set_words, first, second, distances):
    """Pairs of query rows [start, stop) by comparing every row (own: only the rows after
    it), written to first, second, distances. Returns (pairs written, first row not
    done): it stops after the last row whose pairs all fitted. Pairs whose first words
    differ in more than first_limit bits are dropped at once (see _first_limit)."""
    count, n_words = 0, query_words.shape[1]
    for i in range(start, stop):
        row_start = count
        for j in range(i + 1 if own else 0, set_words.shape[0]):
            distance = _popcount(query_words[i, 0] ^ set_words[j, 0])
            if distance > first_limit:
                continue
            for word in range(1, n_words):
                distance += _popcount(query_words[i, word] ^ set_words[j, word])
            if distance <= max_bits:
                if count == len(first):
                    return row_start, i
                first[count], second[count], distances[count] = i, j, distance
                count += 1
    return count, stop


@njit(cache=True, nogil=True)
def _mih_rows(block, start, stop, query_order, own, max_bits, first_limit, query_words, block_words, shifts, widths,
              radii, rows, bounds, candidates, copied, probes, scan, first, second, distances):
    """Pairs that `block` admits first, for the query rows query_order[start:stop], by
    multi-index hashing over the block's _BlockTable (rows, bounds, candidates, copied,
    probes, scan); same contract as _brute_rows (the position returned is into
    query_order). The rows go in tiles of up to TILE_ROWS rows with one block value,
    which share every bucket they probe: each bucket is read once per tile, not per row."""
    count = 0
    tile_keys = np.empty((TILE_ROWS, block + 1), dtype=np.uint64)
    tile_rows, tile_heads = np.empty(TILE_ROWS, dtype=np.int64), np.empty(TILE_ROWS, dtype=np.uint64)
    tile_start = start
    while tile_start < stop:
        tile_size = _tile(tile_start, stop, query_order, query_words, block, block_words, shifts, widths,
                          tile_rows, tile_heads, tile_keys)
        tile_count = _tile_pairs(block, tile_start, tile_size, tile_rows, tile_heads, tile_keys, own, max_bits,
                                 first_limit, query_words, block_words, shifts, widths, radii, rows, bounds,
                                 candidates, copied, probes, scan, first, second, distances, count)
        if tile_count < 0:
            return count, tile_start
        count = tile_count
        tile_start += tile_size
    return count, stop


@njit(cache=True, nogil=True)
def _tile(start, stop, query_order, query_words, block, block_words, shifts, widths, tile_rows, tile_heads,
          tile_keys):
    """Fill tile_rows, tile_heads (their first words) and tile_keys (their values in blocks
    0..block) with the query rows from query_order[start] on that share its value in
    `block` (at most TILE_ROWS, not past stop); return how many."""
    size = 0
    while size < TILE_ROWS and start + size < stop:
        i = query_order[start + size]
        for number in range(block + 1):
            tile_keys[size, number] = _bits(query_words[i, block_words[number, 0]],
                                            query_words[i, block_words[number, 1]], shifts[number], widths[number])
        if size and tile_keys[size, block] != tile_keys[0, block]:
            break
        tile_rows[size], tile_heads[size] = i, query_words[i, 0]
        size += 1
    return size


@njit(cache=True, nogil=True)
def _tile_pairs(block, tile_start, tile_size, tile_rows, tile_heads, tile_keys, own, max_bits, first_limit,
                query_words, block_words, shifts, widths, radii, rows, bounds, candidates, copied, probes, scan, first,
                second, distances, count):
    """Write the pairs of one tile (see _mih_rows) from `count` on; return the new count,
    or -1 when they do not all fit. With own, each pair is looked at from one side only:
    from the row with the smaller block value, or for equal values from the row earlier
    in the bucket (the tile's rows sit in that bucket from tile_start on)."""
    key, n_words = tile_keys[0, block], query_words.shape[1]
    for probe in range(len(probes)):
        value = probes[probe]
        if not scan:
            value ^= key  # a flip mask
        elif _popcount(value ^ key) > radii[block]:
            continue  # a distinct value out of reach
        if own and value < key:
            continue
        same_bucket = own and value == key
        begin, end = bounds[np.int64(value)], bounds[np.int64(value) + 1]
        if same_bucket:
            begin = tile_start + 1
        for at in range(begin, end):
            row = at if copied else rows[at]
            head = candidates[row, 0]
            for member in range(min(tile_size, at - tile_start) if same_bucket else tile_size):
                distance = _popcount(tile_heads[member] ^ head)
                if distance > first_limit:
                    continue
                i = tile_rows[member]
                for word in range(1, n_words):
                    distance += _popcount(query_words[i, word] ^ candidates[row, word])
                if distance > max_bits:
                    continue
                # Reported in the first block that admits the pair only: exactly once.
                admitted_before = False
                for earlier in range(block):
                    if radii[earlier] >= 0 and _popcount(tile_keys[member, earlier] ^ _bits(
                            candidates[row, block_words[earlier, 0]], candidates[row, block_words[earlier, 1]],
                            shifts[earlier], widths[earlier])) <= radii[earlier]:
                        admitted_before = True
                        break
                if admitted_before:
                    continue
                if count == len(first):
                    return -1
                j = rows[at]
                first[count], second[count] = (min(i, j), max(i, j)) if own else (i, j)
                distances[count] = distance
                count += 1
    return count
