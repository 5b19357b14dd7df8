"""A persistent hash cache in SQLite, so an unchanged library is never decoded twice.

Keyed by absolute path, algorithm, hash size and decoder version; an entry is used only
while the file's size and mtime (ns) still match. A path that is not valid UTF-8 (SQLite
text must be) is keyed by its bytes in hex behind a NUL, which no real path contains.
WAL mode and a busy timeout let two runs share the file. A corrupt or locked cache (or an
unusable cache folder) gives a warning and a fresh cache, never a failed run. The table's
name carries the record's layout (hashes_v4 added the views' hashes and colours), so an
older dedup sharing the file keeps writing its own table and never misreads this one.
"""

from __future__ import annotations

import os
import sqlite3
import time
import zipfile
from pathlib import Path

import numpy as np

from dedup_cli.fingerprint.hashing import FileStat, HashRecord, HashSettings
from dedup_cli.media.loading import ImageFacts

_SCHEMA = """
CREATE TABLE IF NOT EXISTS hashes_v4 (
    path TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    hash_size INTEGER NOT NULL,
    decoder TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    bits BLOB,
    width INTEGER NOT NULL DEFAULT 0,
    height INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    colour BLOB,
    variants BLOB,
    views BLOB,
    view_colour BLOB,
    content_share REAL NOT NULL DEFAULT 1,
    digest BLOB,
    grey_mode INTEGER NOT NULL DEFAULT 0,
    depth INTEGER NOT NULL DEFAULT 8,
    lossless INTEGER NOT NULL DEFAULT 0,
    frames INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (path, algorithm, hash_size, decoder)
)
"""
# CNN embeddings (embedding.py): float16 unit vectors, keyed like the hashes, with the
# model file's sha256 and the preprocessing version in `model`.
_EMBEDDING_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings_v1 (
    path TEXT NOT NULL,
    model TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (path, model)
)
"""
# One row per video: the kept frames' hashes (uint64), mirrored hashes and times (float32)
# as little-endian arrays, and what the keep policy reads (fingerprint/video.py).
_VIDEO_SCHEMA = """
CREATE TABLE IF NOT EXISTS video_prints_v1 (
    path TEXT NOT NULL,
    settings TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    hashes BLOB NOT NULL,
    mirrored BLOB,
    times BLOB NOT NULL,
    duration REAL NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    bitrate INTEGER NOT NULL,
    codec TEXT NOT NULL,
    fps REAL NOT NULL,
    flat_frames INTEGER NOT NULL,
    digest BLOB NOT NULL,
    content_share REAL NOT NULL,
    PRIMARY KEY (path, settings)
)
"""
_LOOKUP_CHUNK = 500
_BUSY_TIMEOUT_S = 15.0


def cache_key(path: str) -> str:
    """The text a path is stored under: itself, or its bytes in hex when it is not UTF-8."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return "\0bytes:" + os.fsencode(path).hex()
    return path


def dedup_cache_dir() -> Path:
    """$XDG_CACHE_HOME/dedup, or ~/.cache/dedup: the hash cache and the CNN model."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dedup"


def default_cache_path() -> Path:
    """$XDG_CACHE_HOME/dedup/hashes.sqlite, or ~/.cache/dedup/hashes.sqlite."""
    return dedup_cache_dir() / "hashes.sqlite"


class HashCache:
    """Hash records by file; `warnings` collects what went wrong without failing the run."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.warnings: list[str] = []
        self.read_failed = False  # the last lookup failed part way (iter_lookup)
        self._connection = self._open_or_recover()

    def _open_or_recover(self) -> sqlite3.Connection:
        try:
            return self._open_waiting(self.path)
        except OSError as exc:  # no $HOME, a read-only or missing cache folder
            self.warnings.append(f"hash cache folder '{self.path.parent}' is unusable "
                                 f"({exc.strerror or exc}); using a fresh in-memory cache (--cache PATH to choose one)")
            return self._open(":memory:")
        except sqlite3.DatabaseError as exc:
            if _is_lock_error(exc):
                self.warnings.append(f"hash cache '{self.path}' is locked ({exc}); using a fresh in-memory cache")
                return self._open(":memory:")
        moved = _free_name(self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}"))
        try:
            os.rename(self.path, moved)
            self.warnings.append(
                f"hash cache '{self.path}' was unreadable; moved it to '{moved}' and started a fresh one"
            )
            return self._open_waiting(self.path)
        except (OSError, sqlite3.DatabaseError) as exc:
            self.warnings.append(f"hash cache '{self.path}' is unusable ({exc}); using a fresh in-memory cache")
            return self._open(":memory:")

    def _open_waiting(self, path) -> sqlite3.Connection:
        """Open, retrying while another run holds the lock: switching a new file to WAL
        fails at once (no busy wait) when another connection is writing."""
        deadline = time.monotonic() + _BUSY_TIMEOUT_S
        while True:
            try:
                return self._open(path)
            except sqlite3.OperationalError as exc:
                if not _is_lock_error(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @staticmethod
    def _open(path) -> sqlite3.Connection:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(str(path), timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute(_SCHEMA)
            connection.execute(_EMBEDDING_SCHEMA)
            connection.execute(_VIDEO_SCHEMA)
            # One row read (count(*) would scan the whole table: 0.1 s a run at 100,000 files).
            connection.execute("SELECT 1 FROM hashes_v4 LIMIT 1").fetchone()
        except sqlite3.DatabaseError:
            connection.close()
            raise
        return connection

    def _current_rows(self, stats: list[FileStat], columns: str, table: str, where: str, params: list):
        """(stat, the other columns) of each cached row for `stats` whose size and mtime
        still match, looked up in chunks."""
        wanted = {cache_key(stat.path): stat for stat in stats}
        paths = list(wanted)
        for start in range(0, len(paths), _LOOKUP_CHUNK):
            chunk = paths[start : start + _LOOKUP_CHUNK]
            rows = self._connection.execute(
                f"SELECT path, size, mtime_ns, {columns} FROM {table} "
                f"WHERE {where} AND path IN ({','.join('?' * len(chunk))})", [*params, *chunk])
            for key, size, mtime_ns, *values in rows:
                stat = wanted[key]
                if stat.size == size and stat.mtime_ns == mtime_ns:
                    yield stat, values

    def lookup(self, stats: list[FileStat], settings: HashSettings) -> dict[str, HashRecord]:
        """Records for the files whose size and mtime match the cached entry."""
        found = {stat.path: record for stat, record in self.iter_lookup(stats, settings)}
        return {} if self.read_failed else found

    def iter_lookup(self, stats: list[FileStat], settings: HashSettings):
        """(stat, record) for the files whose size and mtime match the cached entry, as
        they are read. A cache that fails while read sets `read_failed` and warns; what
        came before then counts as not cached."""
        self.read_failed = False
        try:
            columns = ("bits, width, height, error, colour, variants, views, view_colour, content_share, digest, "
                       "grey_mode, depth, lossless, frames")
            for stat, (bits, width, height, error, colour, variants, views, view_colour, content_share, digest,
                       *facts) in self._current_rows(
                    stats, columns, "hashes_v4", "algorithm = ? AND hash_size = ? AND decoder = ?",
                    [settings.algorithm, settings.hash_size, settings.decoder_id]):
                facts = ImageFacts(bool(facts[0]), facts[1], bool(facts[2]), facts[3])
                yield stat, HashRecord(stat.path, bits, width, height, error, colour, variants, views,
                                       view_colour, content_share, digest, facts)
        except sqlite3.DatabaseError as exc:
            self.read_failed = True
            self.warnings.append(f"hash cache '{self.path}' could not be read ({exc}); hashing everything")

    def store(self, entries: list[tuple[FileStat, HashRecord]], settings: HashSettings) -> None:
        """Insert or replace the records of freshly hashed files, in one transaction."""
        if not entries:
            return
        rows = [
            (cache_key(stat.path), settings.algorithm, settings.hash_size, settings.decoder_id, stat.size,
             stat.mtime_ns, record.packed_bits, record.width, record.height, record.error, record.colour,
             record.variants, record.views, record.view_colour, record.content_share, record.digest,
             record.facts.grey_mode, record.facts.depth, record.facts.lossless, record.facts.frames)
            for stat, record in entries
        ]
        self._write(f"INSERT OR REPLACE INTO hashes_v4 VALUES ({','.join('?' * 20)})", rows, "hashes")

    def lookup_embeddings(self, stats: list[FileStat], model_key: str) -> dict[str, bytes]:
        """Embedding bytes of the files whose size and mtime match the cached entry."""
        try:
            return {stat.path: vector for stat, (vector,) in self._current_rows(
                stats, "vector", "embeddings_v1", "model = ?", [model_key])}
        except sqlite3.DatabaseError as exc:
            self.warnings.append(f"hash cache '{self.path}' could not be read ({exc}); embedding everything")
            return {}

    def store_embeddings(self, entries: list[tuple[FileStat, bytes]], model_key: str) -> None:
        """Insert or replace the embeddings of freshly embedded files, in one transaction."""
        rows = [(cache_key(stat.path), model_key, stat.size, stat.mtime_ns, vector) for stat, vector in entries]
        self._write("INSERT OR REPLACE INTO embeddings_v1 VALUES (?,?,?,?,?)", rows, "embeddings")

    def lookup_videos(self, stats: list[FileStat], settings) -> dict:
        """Video fingerprints (fingerprint.video.VideoPrint) of the files whose size and
        mtime match the cached entry: a second run over unchanged videos decodes nothing."""
        from dedup_cli.fingerprint.video import VideoPrint
        from dedup_cli.media.video import VideoInfo

        found = {}
        try:
            for stat, (hashes, mirrored, times, *facts, flat, digest, share) in self._current_rows(
                    stats, "hashes, mirrored, times, duration, width, height, bitrate, codec, fps, flat_frames, "
                    "digest, content_share", "video_prints_v1", "settings = ?", [settings.key]):
                found[stat.path] = VideoPrint(
                    stat.path, np.frombuffer(hashes, dtype="<u8").astype(np.uint64),
                    np.frombuffer(times, dtype="<f4").astype(np.float32),
                    None if mirrored is None else np.frombuffer(mirrored, dtype="<u8").astype(np.uint64),
                    VideoInfo(*facts), flat, digest, content_share=share)
        except sqlite3.DatabaseError as exc:
            self.warnings.append(f"hash cache '{self.path}' could not be read ({exc}); decoding every video")
            return {}
        return found

    def store_videos(self, entries: list, settings) -> None:
        """Insert or replace the fingerprints of freshly decoded videos, in one transaction."""
        rows = [
            (cache_key(stat.path), settings.key, stat.size, stat.mtime_ns, record.hashes.astype("<u8").tobytes(),
             None if record.mirrored is None else record.mirrored.astype("<u8").tobytes(),
             record.times.astype("<f4").tobytes(), record.info.duration, record.info.width, record.info.height,
             record.info.bitrate, record.info.codec, record.info.fps, record.flat_frames, record.digest,
             record.content_share)
            for stat, record in entries
        ]
        self._write(f"INSERT OR REPLACE INTO video_prints_v1 VALUES ({','.join('?' * 16)})", rows, "fingerprints")

    def _write(self, statement: str, rows: list, what: str) -> None:
        if not rows:
            return
        try:
            self._connection.execute("BEGIN IMMEDIATE")
            self._connection.executemany(statement, rows)
            self._connection.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            if self._connection.in_transaction:
                self._connection.execute("ROLLBACK")
            self.warnings.append(f"hash cache '{self.path}' could not be updated ({exc}); {what} not saved")

    def close(self) -> None:
        self._connection.close()


def _is_lock_error(exc: Exception) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def _free_name(path: Path) -> Path:
    """`path`, or `path-2`, `path-3` ... whichever does not exist yet."""
    candidate, number = path, 1
    while candidate.exists():
        number += 1
        candidate = path.with_name(f"{path.name}-{number}")
    return candidate


class PairCache:
    """The duplicate pairs a Matcher found, by a digest of everything they follow from
    (the hashes, views and colour signatures of every file in row order, the settings,
    the code of the checks): a run over an unchanged library reads them back instead of
    searching and checking every candidate pair again. One small .npz file of named
    arrays per digest in `folder`, written whole and renamed into place; the MAX_ENTRIES
    most recent are kept. A file that cannot be read or written is passed over: the pairs
    are then found again (the Matcher also checks that what it reads can be its own)."""

    MAX_ENTRIES = 16
    MAX_PAIRS = 2_000_000  # 48 MB a file: more pairs than that are found again, not stored

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def _path(self, digest: str) -> Path:
        return self.folder / f"{digest}.npz"

    def load(self, digest: str) -> dict[str, np.ndarray] | None:
        """The arrays stored under `digest` by name, or None when there are none."""
        try:
            with np.load(self._path(digest), allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in stored.files}
            os.utime(self._path(digest))  # recently used: kept longest
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            return None
        return arrays

    def save(self, digest: str, arrays: dict[str, np.ndarray]) -> None:
        """Store `arrays` (among them "pairs", 3 rows) under `digest`, unless too many pairs."""
        if arrays["pairs"].shape[1] > self.MAX_PAIRS:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            partial = self.folder / f"{digest}.{os.getpid()}.partial"
            with open(partial, "wb") as handle:
                np.savez(handle, **arrays)
            os.replace(partial, self._path(digest))
            entries = sorted(self.folder.glob("*.npz"), key=lambda path: path.stat().st_mtime, reverse=True)
            for old in entries[self.MAX_ENTRIES:]:
                old.unlink(missing_ok=True)
        except OSError:
            return
