"""The hash algorithms (a registry over imagehash) and hashing many files in parallel batches."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice

import numpy as np
from PIL.Image import Transpose

from dedup_cli.cpus import available_cpus
from dedup_cli.errors import UnreadableImage
from dedup_cli.fingerprint.signature import SIGNATURE_BYTES, colour_signature, colour_signatures
from dedup_cli.fingerprint.views import VIEW_NAMES, crop_boxes, trim_box
from dedup_cli.media.loading import (
    DECODER_VERSION,
    DIGEST_BYTES,
    ImageFacts,
    content_digest,
    describe_error,
    load_image,
    reduce_to,
)

# Bumped when the colour signature's layout changes (part of the cache key).
SIGNATURE_VERSION = 2
# The dihedral group without the identity, in a fixed order (the cache stores hashes in it).
OTHER_ORIENTATIONS = (
    Transpose.FLIP_LEFT_RIGHT,
    Transpose.FLIP_TOP_BOTTOM,
    Transpose.ROTATE_90,
    Transpose.ROTATE_180,
    Transpose.ROTATE_270,
    Transpose.TRANSPOSE,
    Transpose.TRANSVERSE,
)
ORIENTATION_NAMES = ("mirrored", "flipped", "rotated 90", "rotated 180", "rotated 270", "transposed", "transversed")
# The decoded image keeps this many times the pixels the hash's own resize step asks for,
# so that Lanczos still has real detail to average over after DCT-scaled decoding.
DECODE_MARGIN = 4
# The views are hashed from the decoded picture box-reduced by up to this factor more: a
# view's hash and signature need no more detail than the whole picture's, and reducing
# first makes the four crops' resizes cheap.
VIEW_REDUCTION = 2


@dataclass(frozen=True)
class HashAlgorithm:
    """One perceptual hash: its imagehash function and the pixels its resize step needs."""

    name: str  # also the imagehash function's name
    resize_side: Callable[[int], int]

    def decode_side(self, hash_size: int) -> int:
        """Shorter side to decode to before hashing (0 would mean full size)."""
        return DECODE_MARGIN * self.resize_side(hash_size)

    def bits(self, image, hash_size: int) -> np.ndarray:
        """The hash of a PIL image as a flat boolean array of hash_size**2 bits."""
        import imagehash

        function = getattr(imagehash, self.name)
        return np.asarray(function(image, hash_size=hash_size).hash, dtype=bool).ravel()


ALGORITHMS: dict[str, HashAlgorithm] = {
    "average_hash": HashAlgorithm("average_hash", lambda size: 4 * size),
    "dhash": HashAlgorithm("dhash", lambda size: 4 * (size + 1)),
    "phash": HashAlgorithm("phash", lambda size: 4 * size),
    "whash": HashAlgorithm("whash", lambda size: 8 * size),  # its scale follows the image
}


@dataclass(frozen=True)
class HashSettings:
    """Which hash to compute; part of every cache key and report."""

    algorithm: str = "phash"
    hash_size: int = 8
    full_decode: bool = False  # True: decode every pixel, as imagehash on the whole image does
    isometric: bool = False  # also hash the 7 other rotations/flips of each image
    colour: bool = True  # decode colour for the colour signature (False: luminance only, faster)
    views: bool = False  # also hash views.VIEW_NAMES: the trimmed picture and centre crops

    @property
    def n_bits(self) -> int:
        return self.hash_size * self.hash_size

    @property
    def decoder_id(self) -> str:
        """Identifies the decoding path and signature layout in cache keys: hashes differ
        between paths."""
        return (f"{DECODER_VERSION}.{SIGNATURE_VERSION}-{'full' if self.full_decode else 'reduced'}"
                f"{'-iso2' if self.isometric else ''}{'' if self.colour else '-grey'}"
                f"{'-views2' if self.views else ''}")


@dataclass(frozen=True)
class FileStat:
    """Size and modification time of a file at scan time (used to detect later changes)."""

    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class HashRecord:
    """What a worker sends back for one file: compact, cheap to pickle."""

    path: str
    packed_bits: bytes | None
    width: int = 0
    height: int = 0
    error: str = ""
    colour: bytes | None = None  # signature.colour_signature
    variants: bytes | None = None  # isometric: the hashes of the 7 other orientations
    views: bytes | None = None  # settings.views: the hash of each view (views.VIEW_NAMES)
    view_colour: bytes | None = None  # and its colour signature, one after the other
    content_share: float = 1.0  # the share of the pixels left once uniform borders are trimmed
    digest: bytes | None = None  # loading.content_digest of the bytes hashed
    facts: ImageFacts = ImageFacts()


@dataclass
class HashedFiles:
    """The hashes of a collection: row i of every array describes `paths[i]`."""

    settings: HashSettings
    paths: list[str] = field(default_factory=list)
    packed: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.uint8))
    width: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    height: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    size: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    mtime_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    colour: np.ndarray = field(default_factory=lambda: np.zeros((0, SIGNATURE_BYTES), dtype=np.uint8))
    variants: np.ndarray | None = None  # (n, 7, hash bytes) when settings.isometric
    views: np.ndarray | None = None  # (n, len(VIEW_NAMES), hash bytes) when settings.views
    view_colour: np.ndarray | None = None  # (n, len(VIEW_NAMES), SIGNATURE_BYTES) likewise
    digest: np.ndarray = field(default_factory=lambda: np.zeros((0, DIGEST_BYTES), dtype=np.uint8))
    # loading.ImageFacts per file: (grey_mode, depth, lossless, frames)
    facts: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), dtype=np.int32))
    # Per file, the share of its pixels left once uniform borders are trimmed (1 without
    # --views): the keep policy ranks a padded copy by its picture, not its padding.
    content_share: np.ndarray | None = None
    failures: list[tuple[str, str]] = field(default_factory=list)
    from_cache: int = 0

    def __post_init__(self):
        # Hand-made collections (tests, hash lists) may leave out the file facts: no digest
        # and an 8-bit colour single-frame image, which ranks no file above another.
        count = len(self.paths)
        if len(self.digest) != count:
            self.digest = np.zeros((count, DIGEST_BYTES), dtype=np.uint8)
        if len(self.facts) != count:
            self.facts = np.tile(np.array([0, 8, 0, 1], dtype=np.int32), (count, 1))
        if self.content_share is None or len(self.content_share) != count:
            self.content_share = np.ones(count)

    @property
    def bits(self) -> np.ndarray:
        """Unpacked 0/1 matrix, one row per file and one column per hash bit."""
        return np.unpackbits(self.packed, axis=1)[:, : self.settings.n_bits]

    def hex(self, row: int) -> str:
        return bytes(self.packed[row]).hex()

    def digest_hex(self, row: int) -> str:
        return bytes(self.digest[row]).hex()

    @property
    def frames(self) -> np.ndarray:
        return self.facts[:, 3]

    def subset(self, rows) -> HashedFiles:
        """The files at `rows`, in that order (failures are not carried over)."""
        rows = np.asarray(rows, dtype=np.int64)
        return HashedFiles(
            settings=self.settings,
            paths=[self.paths[row] for row in rows],
            packed=self.packed[rows],
            width=self.width[rows],
            height=self.height[rows],
            size=self.size[rows],
            mtime_ns=self.mtime_ns[rows],
            colour=self.colour[rows],
            variants=None if self.variants is None else self.variants[rows],
            views=None if self.views is None else self.views[rows],
            view_colour=None if self.view_colour is None else self.view_colour[rows],
            digest=self.digest[rows],
            facts=self.facts[rows],
            content_share=self.content_share[rows],
        )

    def identity_keys(self) -> np.ndarray:
        """One 16-byte row per file, a digest of everything matching looks at: files with
        equal rows are interchangeable for grouping. (A digest, not the bytes themselves,
        so that sorting them costs little memory.)"""
        keys = np.empty((len(self.packed), 16), dtype=np.uint8)
        for row in range(len(self.packed)):
            digest = hashlib.blake2b(self.packed[row].tobytes(), digest_size=16)
            digest.update(self.colour[row].tobytes())
            for extra in (self.variants, self.views, self.view_colour):
                if extra is not None:
                    digest.update(extra[row].tobytes())
            keys[row] = np.frombuffer(digest.digest(), dtype=np.uint8)
        return keys


def join_hashed(first: HashedFiles, second: HashedFiles) -> HashedFiles:
    """The rows of `first`, then those of `second` (narrower hashes zero-padded to the
    wider ones); failures and cache counts added up. For reports and actions on a plan
    made on each part: the orientation variants and the views are left out."""
    width = max(first.packed.shape[1], second.packed.shape[1])

    def padded(packed):
        return np.pad(packed, ((0, 0), (0, width - packed.shape[1])))

    return HashedFiles(
        settings=first.settings,
        paths=first.paths + second.paths,
        packed=np.concatenate([padded(first.packed), padded(second.packed)]),
        width=np.concatenate([first.width, second.width]),
        height=np.concatenate([first.height, second.height]),
        size=np.concatenate([first.size, second.size]),
        mtime_ns=np.concatenate([first.mtime_ns, second.mtime_ns]),
        colour=np.concatenate([first.colour, second.colour]),
        digest=np.concatenate([first.digest, second.digest]),
        facts=np.concatenate([first.facts, second.facts]),
        content_share=np.concatenate([first.content_share, second.content_share]),
        failures=sorted(first.failures + second.failures),
        from_cache=first.from_cache + second.from_cache,
    )


def stack_hashed(parts: list[HashedFiles]) -> HashedFiles:
    """The rows of `parts` (hashed with one HashSettings) one after the other, with their
    orientations and views: one collection for a Matcher over files of several (a
    search's queries and the library files they may match). Failures are left out."""
    first = parts[0]
    if any(part.settings != first.settings for part in parts):
        raise ValueError("stack_hashed: the parts were hashed with different settings")
    arrays = {name: np.concatenate([getattr(part, name) for part in parts])
              for name in ("packed", "width", "height", "size", "mtime_ns", "colour", "digest", "facts",
                           "content_share")}
    for name in ("variants", "views", "view_colour"):
        if getattr(first, name) is not None:
            arrays[name] = np.concatenate([getattr(part, name) for part in parts])
    return HashedFiles(settings=first.settings, paths=[path for part in parts for path in part.paths], **arrays)


def default_workers() -> int:
    """Worker processes: the CPUs this process may run on."""
    return available_cpus()


# How each of OTHER_ORIENTATIONS moves a picture's DCT coefficients (rows: vertical
# frequency, columns: horizontal): (transposed, every odd row negated, every odd column
# negated). A mirror image's cosine basis is the same with odd frequencies reversed in
# sign, and a transposed picture has the transposed coefficients.
_DCT_ORIENTATIONS = ((False, False, True), (False, True, False), (True, True, False), (False, True, True),
                     (True, False, True), (True, False, False), (True, True, True))


def phash_orientations(grey, hash_size: int) -> tuple[bytes, bytes]:
    """The pHash of a greyscale PIL image as imagehash.phash computes it, and those of its
    7 other orientations (OTHER_ORIENTATIONS order) from the same resize and DCT: turning
    the 32x32 picture turns its coefficients (_DCT_ORIENTATIONS), so each other hash costs
    a median of 64 numbers instead of a resize and a DCT of its own (--isometric took
    1.33 times the hashing CPU of a plain run, mostly in those 7 resizes). The turned
    hashes agree with hashing the turned picture except where resizing rounds unevenly."""
    low = _low_frequencies(grey, hash_size)[0]
    odd = (-1.0) ** np.arange(hash_size)
    hashes = [low]
    for transposed, rows, columns in _DCT_ORIENTATIONS:
        turned = low.T if transposed else low
        hashes.append(turned * (odd[:, None] if rows else 1.0) * (odd[None, :] if columns else 1.0))
    packed = _median_bits(np.stack(hashes))
    return packed[0].tobytes(), packed[1:].tobytes()


def _low_frequencies(grey, hash_size: int, boxes: Sequence = (None,)) -> np.ndarray:
    """(boxes, hash_size, hash_size): the low-frequency DCT coefficients pHash thresholds,
    of each part `box` of a greyscale PIL image (None: all of it), computed as
    imagehash.phash does (Lanczos resize to 4 x hash_size, DCT down then across)."""
    import scipy.fftpack
    from PIL import Image

    side = ALGORITHMS["phash"].resize_side(hash_size)
    # Cropped first: resizing with box= would let the filter reach past the box (into the
    # border a trimmed view leaves out).
    parts = (grey if box is None else grey.crop(box) for box in boxes)
    pixels = np.stack([np.asarray(part.resize((side, side), Image.Resampling.LANCZOS)) for part in parts])
    return scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=1), axis=2)[:, :hash_size, :hash_size]


def _median_bits(coefficients: np.ndarray) -> np.ndarray:
    """(n, bytes): each hash's bits (coefficient above its hash's median), packed."""
    flat = coefficients.reshape(len(coefficients), -1)
    return np.packbits(flat > np.median(flat, axis=1, keepdims=True), axis=1)


def hash_boxes(grey, settings: HashSettings, boxes: Sequence) -> bytes:
    """The packed hash of each part `box` of a greyscale PIL image, one after the other
    (pHash: every part resized, then one DCT and one median for all of them)."""
    if settings.algorithm == "phash":
        return _median_bits(_low_frequencies(grey, settings.hash_size, boxes)).tobytes()
    return b"".join(hash_image(grey if box is None else grey.crop(box), settings) for box in boxes)


def hash_image(image, settings: HashSettings) -> bytes:
    """Packed hash bits of an already decoded PIL image."""
    bits = ALGORITHMS[settings.algorithm].bits(image, settings.hash_size)
    return np.packbits(bits).tobytes()


def hash_file(path: str, settings: HashSettings) -> HashRecord:
    """Decode one file at reduced size, hash it and take its colour signature; failures
    come back as values."""
    algorithm = ALGORITHMS[settings.algorithm]
    try:
        digest = content_digest(path)
    except OSError as exc:
        return HashRecord(path, None, error=describe_error(exc))
    try:
        min_side = 0 if settings.full_decode else algorithm.decode_side(settings.hash_size)
        loaded = load_image(path, min_side=min_side, mode="colour" if settings.colour else "L")
        image = loaded.image
        grey = image.getchannel(0) if image.mode == "YCbCr" else image.convert("L")
        variants = None
        if settings.isometric and settings.algorithm == "phash":
            packed, variants = phash_orientations(grey, settings.hash_size)
        else:
            packed = hash_boxes(grey, settings, (None,))
            if settings.isometric:
                variants = b"".join(hash_image(grey.transpose(t), settings) for t in OTHER_ORIENTATIONS)
        colour = colour_signature(image)
        views = view_colour = None
        content_share = 1.0
        if settings.views:
            views, view_colour, content_share = _hash_views(image, grey, settings, packed, colour)
    except UnreadableImage as exc:
        return HashRecord(path, None, error=exc.reason)
    except Exception as exc:  # a hash that fails on odd pixels is still one file's failure
        return HashRecord(path, None, error=f"hashing failed: {type(exc).__name__}: {exc}")
    return HashRecord(path, packed, loaded.width, loaded.height, colour=colour, variants=variants,
                      views=views, view_colour=view_colour, content_share=content_share, digest=digest,
                      facts=loaded.facts)


def _hash_views(image, grey, settings: HashSettings, packed: bytes, colour: bytes) -> tuple[bytes, bytes, float]:
    """The hash and colour signature of each view (views.VIEW_NAMES) of a decoded picture
    (`grey`: its luma) whose whole hash and signature are `packed` and `colour`, and the
    share of its pixels left once uniform borders are trimmed.

    The trimmed view is cut from the picture as decoded, so that it lines up with the
    whole picture of an unpadded copy to the pixel; a picture with nothing to trim (most)
    keeps its whole hash and signature there, and is not indexed twice. The centre crops
    never line up exactly with a cropped copy, so they are cut from a copy box-reduced by
    up to VIEW_REDUCTION, which makes their resizes cheap."""
    full = image if image.mode in ("YCbCr", "L") else image.convert("YCbCr")
    trimmed = trim_box(full)
    share = 1.0
    if trimmed is None:
        trimmed_hash, trimmed_colour = packed, colour
    else:
        left, top, right, bottom = trimmed
        share = (right - left) * (bottom - top) / (full.width * full.height)
        trimmed_hash, trimmed_colour = hash_boxes(grey, settings, [trimmed]), colour_signatures(full, [trimmed])
    small = reduce_to(full, ALGORITHMS[settings.algorithm].decode_side(settings.hash_size) // VIEW_REDUCTION)
    small_grey = small.getchannel(0) if small.mode == "YCbCr" else small
    boxes = crop_boxes(small.width, small.height)
    return (trimmed_hash + hash_boxes(small_grey, settings, boxes),
            trimmed_colour + colour_signatures(small, boxes), share)


def _hash_batch(batch: tuple[list[str], HashSettings]) -> list[HashRecord]:
    paths, settings = batch
    return [hash_file(path, settings) for path in paths]


def stat_files(paths: Iterable[str]) -> tuple[list[FileStat], list[tuple[str, str]]]:
    """Size and mtime of each file; files that vanished or cannot be read are failures."""
    stats, failures = [], []
    for path in paths:
        try:
            info = os.stat(path)
        except OSError as exc:
            failures.append((str(path), (exc.strerror or str(exc)).lower()))
            continue
        stats.append(FileStat(str(path), info.st_size, info.st_mtime_ns))
    return stats, failures


def hash_many(
    paths: Sequence[str],
    settings: HashSettings,
    workers: int = 1,
    batch_size: int = 64,
    on_progress: Callable[[int], None] | None = None,
    pool=None,
) -> list[HashRecord]:
    """Hash `paths` in batches over `workers` processes, or over `pool` (a pool with
    `map` in order, `workers()` and `min_batch_size`, such as distributed.DaskPool) when
    given; results in the order of `paths`.

    Serial and parallel runs give the same records. `on_progress(n)` is called as each
    batch of n files completes.
    """
    return gather_batches(iter_hashed(paths, settings, workers, batch_size, pool), [], on_progress)


def iter_hashed(paths: Sequence[str], settings: HashSettings, workers: int = 1, batch_size: int = 64,
                pool=None) -> Iterator[list[HashRecord]]:
    """hash_many's batches of records, in order, each as soon as it is done."""
    if pool is not None:
        workers, batch_size = pool.workers(), max(batch_size, pool.min_batch_size)
    # Small jobs get smaller batches, so that every worker has a share of the files.
    batch_size = max(1, min(batch_size, -(-len(paths) // (8 * max(1, workers)))))
    batches = [(list(paths[i : i + batch_size]), settings) for i in range(0, len(paths), batch_size)]
    if pool is not None:
        yield from pool.map(_hash_batch, batches)
    elif workers <= 1 or len(batches) <= 1:
        yield from map(_hash_batch, batches)
    else:
        with worker_pool(min(workers, len(batches))) as executor:
            yield from executor.map(_hash_batch, batches)


class InlinePool:
    """The pool of a run with one worker: submitted work runs at once, in this process."""

    def submit(self, function, *args) -> Future:
        future: Future = Future()
        try:
            future.set_result(function(*args))
        except Exception as exc:  # delivered by result(), as a process pool would
            future.set_exception(exc)
        return future

    def map(self, function, iterable, chunksize: int = 1):
        return map(function, iterable)


@contextmanager
def worker_pool(workers: int, initializer: Callable | None = None, initargs: tuple = ()):
    """A ProcessPoolExecutor of `workers` processes that die with this one (see
    die_with_parent) and then run `initializer(*initargs)`, or an InlinePool for one
    (which runs no initializer): hashing, thumbnails, embeddings and maps share it."""
    if workers <= 1:
        yield InlinePool()
        return
    from concurrent.futures import ProcessPoolExecutor  # not on a warm run's path (multiprocessing)

    with ProcessPoolExecutor(max_workers=workers, initializer=_start_worker,
                             initargs=(os.getpid(), initializer, initargs)) as pool:
        yield pool


def _start_worker(parent_pid: int, initializer: Callable | None, initargs: tuple) -> None:
    die_with_parent(parent_pid)
    if initializer is not None:
        initializer(*initargs)


def die_with_parent(parent_pid: int) -> None:
    """Worker start-up: ask Linux to kill this worker when the run that started it dies.

    A run killed with SIGKILL cannot shut its pool down; without this its workers, adopted
    by init, would wait on their queue for good.
    """
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the pool's own shutdown is all there is
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def gather_batches(results, records: list, on_progress) -> list:
    """Extend `records` with each batch of `results` as it arrives, reporting progress."""
    for batch_records in results:
        records.extend(batch_records)
        if on_progress:
            on_progress(len(batch_records))
    return records


def hash_collection(
    paths: Sequence[str | os.PathLike],
    settings: HashSettings,
    workers: int = 1,
    batch_size: int = 64,
    cache=None,
    on_progress: Callable[[int], None] | None = None,
    pool=None,
) -> HashedFiles:
    """Hash every file (from `cache` when size and mtime match) into a HashedFiles; the
    files not cached are hashed over `pool` when given (see hash_many). Only this process
    writes the cache.

    Cached records go into the arrays a chunk at a time as they are read, so a warm run
    never holds every file's record (Python bytes) beside the arrays."""
    stats, failures = stat_files(str(p) for p in paths)
    table = _Rows(stats, settings)
    if cache is not None:
        read = iter(cache.iter_lookup(stats, settings))
        while chunk := list(islice(read, _ASSEMBLE_CHUNK)):
            table.fill([table.row_of[stat.path] for stat, _ in chunk], [record for _, record in chunk])
        if cache.read_failed:
            table.filled[:] = False  # hashed again, all of them (see HashCache.iter_lookup)
    cached = int(table.filled.sum())
    if on_progress and cached:
        on_progress(cached)
    to_hash = [stat.path for stat, filled in zip(stats, table.filled.tolist(), strict=True) if not filled]
    pending: list[HashRecord] = []

    def settle() -> None:
        """Store (failures are not kept: a fixed permission changes neither size nor
        mtime) and place the records hashed since the last call."""
        hashed = [record for record in pending if record.packed_bits is not None]
        if cache is not None:
            cache.store([(stats[table.row_of[record.path]], record) for record in hashed], settings)
        failures.extend((record.path, record.error) for record in pending if record.packed_bits is None)
        table.fill([table.row_of[record.path] for record in hashed], hashed)
        pending.clear()

    # Settled a chunk at a time as the batches come in: a cold run never holds every
    # file's record beside the arrays either.
    for batch in iter_hashed(to_hash, settings, workers, batch_size, pool):
        pending.extend(batch)
        if on_progress:
            on_progress(len(batch))
        if len(pending) >= _ASSEMBLE_CHUNK:
            settle()
    settle()
    return table.result(failures, cached)


_ASSEMBLE_CHUNK = 8192


class _Rows:
    """The arrays of a HashedFiles with a row for each of `stats`, filled a chunk of
    records at a time (the bytes of a chunk joined, then read as one array: joining them
    all first would hold every signature twice)."""

    def __init__(self, stats: list[FileStat], settings: HashSettings):
        self.stats, self.settings = stats, settings
        self.row_of = {stat.path: row for row, stat in enumerate(stats)}
        self.filled = np.zeros(len(stats), dtype=bool)
        count, n_bytes = len(stats), (settings.n_bits + 7) // 8
        self.n_bytes = n_bytes
        self.arrays = {
            "packed": np.empty((count, n_bytes), dtype=np.uint8),
            "colour": np.empty((count, SIGNATURE_BYTES), dtype=np.uint8),
            "digest": np.empty((count, DIGEST_BYTES), dtype=np.uint8),
            "facts": np.empty((count, 4), dtype=np.int32),
            "meta": np.empty((count, 4), dtype=np.int64),
            "content_share": np.empty(count),
        }
        if settings.isometric:
            self.arrays["variants"] = np.empty((count, len(OTHER_ORIENTATIONS), n_bytes), dtype=np.uint8)
        if settings.views:
            self.arrays["views"] = np.empty((count, len(VIEW_NAMES), n_bytes), dtype=np.uint8)
            self.arrays["view_colour"] = np.empty((count, len(VIEW_NAMES), SIGNATURE_BYTES), dtype=np.uint8)

    def fill(self, rows: list[int], records: list[HashRecord]) -> None:
        if not rows:
            return
        arrays, at = self.arrays, np.asarray(rows, dtype=np.int64)

        def joined(name: str, shape: tuple[int, ...]) -> np.ndarray:
            values = b"".join([getattr(record, name) for record in records])
            return np.frombuffer(values, dtype=np.uint8).reshape(len(records), *shape)

        arrays["packed"][at] = joined("packed_bits", (self.n_bytes,))
        arrays["colour"][at] = joined("colour", (SIGNATURE_BYTES,))
        arrays["digest"][at] = joined("digest", (DIGEST_BYTES,))
        if "variants" in arrays:
            arrays["variants"][at] = joined("variants", (len(OTHER_ORIENTATIONS), self.n_bytes))
        if "views" in arrays:
            arrays["views"][at] = joined("views", (len(VIEW_NAMES), self.n_bytes))
            arrays["view_colour"][at] = joined("view_colour", (len(VIEW_NAMES), SIGNATURE_BYTES))
        arrays["facts"][at] = [(r.facts.grey_mode, r.facts.depth, r.facts.lossless, r.facts.frames) for r in records]
        arrays["meta"][at] = [(record.width, record.height, self.stats[row].size, self.stats[row].mtime_ns)
                              for row, record in zip(rows, records)]  # noqa: B905
        arrays["content_share"][at] = [record.content_share for record in records]
        self.filled[at] = True

    def result(self, failures: list[tuple[str, str]], from_cache: int) -> HashedFiles:
        """The HashedFiles of the filled rows, in the order of `stats`."""
        kept = np.flatnonzero(self.filled)
        arrays = self.arrays
        if len(kept) < len(self.stats):  # moved down in place, a chunk at a time (kept[i] >= i)
            for name, values in arrays.items():
                for start in range(0, len(kept), _ASSEMBLE_CHUNK):
                    part = kept[start:start + _ASSEMBLE_CHUNK]
                    values[start:start + len(part)] = values[part]
                arrays[name] = values[:len(kept)]
        width, height, size, mtime_ns = arrays["meta"].T.copy()
        return HashedFiles(
            settings=self.settings, paths=[self.stats[row].path for row in kept.tolist()],
            packed=arrays["packed"], width=width, height=height, size=size, mtime_ns=mtime_ns,
            colour=arrays["colour"], variants=arrays.get("variants"), views=arrays.get("views"),
            view_colour=arrays.get("view_colour"), digest=arrays["digest"], facts=arrays["facts"],
            content_share=arrays["content_share"], failures=sorted(failures), from_cache=from_cache)
