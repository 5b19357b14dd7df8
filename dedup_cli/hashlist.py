"""Lists of precomputed hashes for `dedup match`: CSV files of `id,hash` rows (hash in hex)
read and checked with array operations, matched by the pair engines, pairs written as CSV.

A file is read whole and checked at once: every bad row (columns, empty or duplicate id,
hash length, non-hex digits) is collected with its line number, and any bad row fails the
whole file before anything is written. Rows are split on newlines, so a quoted id cannot
span lines. Hashes are hex, a whole number of 64-bit words (16, 32, 48, 64, ... digits),
the same length in every row. Reading does no Python work per row except for ids that
need CSV quoting, so a million rows take about a second.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numba import njit

from dedup_cli.errors import DedupError
from dedup_cli.search.index import IndexSettings, iter_pairs

HEADER = ("id", "hash")
OUTPUT_HEADER = b"id_a,id_b,distance\n"
HEX_DIGITS_PER_WORD = 16
MAX_LISTED_PROBLEMS = 20
ROWS_PER_STEP = 1 << 16  # rows whose hex digits are decoded at once (bounds the memory)
PAIRS_PER_WRITE = 1 << 20  # output lines formatted at once
_HEX_VALUES = np.full(256, 255, dtype=np.uint8)  # ASCII byte -> digit value, 255: not hex
for _digit, _character in enumerate(b"0123456789abcdef"):
    _HEX_VALUES[_character] = _HEX_VALUES[ord(chr(_character).upper())] = _digit


@dataclass(frozen=True)
class Problem:
    """One bad row (or a bad file: line 0) of a hash list."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {'line ' + str(self.line) + ': ' if self.line else ''}{self.message}"


class HashListError(DedupError):
    """Hash lists with bad rows; `problems` holds every one of them."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        shown = "\n".join(f"  {problem}" for problem in problems[:MAX_LISTED_PROBLEMS])
        more = len(problems) - MAX_LISTED_PROBLEMS
        super().__init__(f"{len(problems)} bad row{'s' if len(problems) != 1 else ''} in the hash lists "
                         f"(nothing was written):\n{shown}" + (f"\n  ... and {more} more" if more > 0 else ""))


@dataclass(frozen=True)
class HashList:
    """Hashes read from one file: packed (rows, bytes) uint8, and each row's id as a CSV
    field ready to write: blob[id_starts[k]:id_ends[k]]."""

    path: str
    packed: np.ndarray
    blob: np.ndarray
    id_starts: np.ndarray
    id_ends: np.ndarray

    def __len__(self) -> int:
        return len(self.packed)

    @property
    def n_bits(self) -> int:
        return 8 * self.packed.shape[1]


def read_hash_lists(path: Path, against: Path | None = None) -> tuple[HashList, HashList | None]:
    """Read one or two hash lists; raises HashListError naming every bad row of both,
    and when the two hold hashes of different lengths."""
    problems: list[Problem] = []
    lists = []
    for name in (path, against):
        if name is not None:
            hash_list, found = _read(Path(name))
            lists.append(hash_list)
            problems += found
    if not problems and len(lists) == 2 and len(lists[0]) and len(lists[1]) and lists[0].n_bits != lists[1].n_bits:
        problems.append(Problem(str(against), 0, f"its hashes have {lists[1].n_bits // 4} hex digits, those of "
                                                  f"{path} {lists[0].n_bits // 4}: both need hashes of one length"))
    if problems:
        raise HashListError(problems)
    return lists[0], (lists[1] if len(lists) == 2 else None)


def iter_matches(hashes: HashList, against: HashList | None, max_bits: int,
                 settings: IndexSettings = IndexSettings()) -> Iterator:
    """Every pair within max_bits (inclusive) once, in chunks of (row in `hashes`, row in
    `against`, or in `hashes` after the first one when against is None, distance); on
    settings.cluster when it has one (index.iter_pairs)."""
    if not len(hashes) or (against is not None and not len(against)):
        return iter(())
    if against is None:
        return iter_pairs(hashes.packed, hashes.n_bits, None, max_bits, settings)
    return iter_pairs(against.packed, against.n_bits, hashes.packed, max_bits, settings)


def write_matches(stream, chunks, hashes: HashList, against: HashList | None) -> int:
    """Write the CSV header and one `id_a,id_b,distance` line per pair of `chunks` (see
    iter_matches) to the binary `stream`; return the number of pairs."""
    others = hashes if against is None else against
    stream.write(OUTPUT_HEADER)
    count = 0
    for first, second, distances in chunks:
        for start in range(0, len(first), PAIRS_PER_WRITE):
            part = slice(start, start + PAIRS_PER_WRITE)
            stream.write(_csv_lines(hashes, others, first[part], second[part], distances[part]))
        count += len(first)
    stream.flush()
    return count


def write_matches_file(path: Path, chunks, hashes: HashList, against: HashList | None) -> int:
    """write_matches into a new file at `path` (writes to disk). Never overwrites: raises
    FileExistsError if it exists. A run that fails part-way removes its partial file."""
    with open(path, "xb") as stream:
        try:
            return write_matches(stream, chunks, hashes, against)
        except BaseException:
            stream.close()
            Path(path).unlink()
            raise


def _csv_lines(first_list: HashList, second_list: HashList, first, second, distances) -> memoryview:
    first_lengths = (first_list.id_ends - first_list.id_starts)[first]
    second_lengths = (second_list.id_ends - second_list.id_starts)[second]
    digits = 1 + sum((distances >= 10**power).astype(np.int64) for power in range(1, 10))
    out = np.empty(int((first_lengths + second_lengths + digits).sum()) + 3 * len(first), dtype=np.uint8)
    size = _format_lines(first_list.blob, first_list.id_starts, first_list.id_ends, second_list.blob,
                         second_list.id_starts, second_list.id_ends, first, second, distances, out)
    return memoryview(out[:size])


def _read(path: Path) -> tuple[HashList, list[Problem]]:
    """One file: its hash list (meaningless when there are problems) and its problems."""
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark, as spreadsheets write
        data = b"   " + data[3:]
    lines = _Lines(data)
    problems = _header_problems(lines, str(path))
    if problems:
        return _empty_list(path), problems
    rows = _Rows(lines, str(path))
    return rows.hash_list(), rows.problems


def _empty_list(path: Path) -> HashList:
    nothing = np.zeros(0, dtype=np.int64)
    return HashList(str(path), np.zeros((0, 8), dtype=np.uint8), np.zeros(0, dtype=np.uint8), nothing, nothing)


class _Lines:
    """Start and end (without the newline and a carriage return) of every line."""

    def __init__(self, data: bytes):
        self.data = data
        self.buffer = np.frombuffer(data, dtype=np.uint8)
        newlines = np.flatnonzero(self.buffer == ord("\n"))
        self.starts = np.concatenate([[0], newlines + 1])
        self.ends = np.concatenate([newlines, [len(data)]])
        if not data or data.endswith(b"\n"):  # no line after the last newline
            self.starts, self.ends = self.starts[:-1], self.ends[:-1]
        carriage = (self.ends > self.starts) & (self.buffer[np.maximum(self.ends - 1, 0)] == ord("\r"))
        self.ends = self.ends - carriage

    def text(self, number: int) -> str:
        """Line `number` (0-based) as text."""
        return self.data[self.starts[number] : self.ends[number]].decode("utf-8", "replace")


def _header_problems(lines: _Lines, path: str) -> list[Problem]:
    if not len(lines.starts) or not lines.text(0).strip():
        return [Problem(path, 1, "no header: the first line must be 'id,hash'")]
    fields = [field.strip().strip('"').lower() for field in lines.text(0).split(",")]
    if tuple(fields) != HEADER:
        return [Problem(path, 1, f"the header must be 'id,hash', not '{_shorten(lines.text(0))}'")]
    return []


def _shorten(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Rows:
    """The data rows of a file with a good header: their fields located with array
    operations, checked, decoded. `problems` lists every bad row."""

    def __init__(self, lines: _Lines, path: str):
        self.lines, self.path, self.buffer = lines, path, lines.buffer
        numbers = np.arange(1, len(lines.starts))
        self.numbers = numbers[lines.ends[numbers] > lines.starts[numbers]]  # blank lines are skipped
        self.starts, self.ends = lines.starts[self.numbers], lines.ends[self.numbers]
        self.bad: dict[int, str] = {}  # index into numbers -> message
        self._locate_fields()
        self._decode_hashes()
        self._check_ids()

    @property
    def problems(self) -> list[Problem]:
        return [Problem(self.path, int(self.numbers[row]) + 1, self.bad[row]) for row in sorted(self.bad)]

    def _flag(self, rows: np.ndarray, message) -> None:
        """Record a problem for each of `rows` (message: text, or a function of the row)."""
        for row in rows.tolist():
            self.bad.setdefault(row, message(row) if callable(message) else message)

    def _locate_fields(self) -> None:
        """The id before the first comma, the hash after the last one (quotes around the
        hash are taken off); rows with a quoted id are parsed again by _rewrite_ids."""
        commas = np.flatnonzero(self.buffer == ord(","))
        first, after_last = np.searchsorted(commas, self.starts), np.searchsorted(commas, self.ends)
        columns = after_last - first + 1
        self.quoted = self.buffer[self.starts] == ord('"')
        self._flag(np.flatnonzero(((columns != 2) & ~self.quoted) | (columns < 2)),
                   lambda row: f"expected 2 columns (id,hash), found {columns[row]}")
        with_comma, commas = columns >= 2, np.append(commas, len(self.buffer))  # the end: never out of range
        self.id_ends = np.where(with_comma, commas[first], self.ends)
        self.hash_starts = np.where(with_comma, commas[np.maximum(after_last - 1, 0)] + 1, self.ends)
        self.hash_ends = self.ends
        inside = np.minimum(self.hash_starts, len(self.buffer) - 1)
        wrapped = ((self.hash_ends - self.hash_starts >= 2) & (self.buffer[inside] == ord('"'))
                   & (self.buffer[self.hash_ends - 1] == ord('"')))
        self.hash_starts, self.hash_ends = self.hash_starts + wrapped, self.hash_ends - wrapped

    def _decode_hashes(self) -> None:
        """Check the hash lengths against the file's most common one and decode the hex
        digits of the rows that have it, a block of rows at a time."""
        lengths = self.hash_ends - self.hash_starts
        whole = (lengths > 0) & (lengths % HEX_DIGITS_PER_WORD == 0)
        self.digits = int(np.bincount(lengths[whole]).argmax()) if whole.any() else HEX_DIGITS_PER_WORD
        self._flag(np.flatnonzero(~whole), lambda row: f"the hash has {lengths[row]} hex digits; a hash has "
                                                       "16, 32, 48, 64, ... (a whole number of 64-bit words)")
        self._flag(np.flatnonzero(whole & (lengths != self.digits)),
                   lambda row: f"the hash has {lengths[row]} hex digits, the file's other hashes {self.digits}")
        self.packed = np.zeros((len(self.numbers), self.digits // 2), dtype=np.uint8)
        sized = np.flatnonzero(lengths == self.digits)
        for start in range(0, len(sized), ROWS_PER_STEP):
            rows = sized[start : start + ROWS_PER_STEP]
            values = _HEX_VALUES[self.buffer[self.hash_starts[rows, None] + np.arange(self.digits)]]
            self._flag(rows[(values == 255).any(axis=1)], lambda row: "the hash is not hexadecimal: "
                       f"'{_shorten(self._field(self.hash_starts[row], self.hash_ends[row]))}'")
            self.packed[rows] = (values[:, 0::2] << 4) | (values[:, 1::2] & 15)

    def _field(self, start: int, end: int) -> str:
        return self.lines.data[start:end].decode("utf-8", "replace")

    def _check_ids(self) -> None:
        """Empty and duplicate ids; ids that are quoted or need quoting are rewritten as
        CSV fields into an extra part of the blob."""
        self.id_starts, self.blob = self.starts.copy(), self.buffer
        quotes = np.flatnonzero(self.buffer == ord('"'))
        has_quote = np.searchsorted(quotes, self.id_ends) > np.searchsorted(quotes, self.starts)
        rewritten = np.flatnonzero(has_quote | self.quoted)
        if len(rewritten):
            self._rewrite_ids(rewritten)
        self._flag(np.flatnonzero(self.id_ends == self.id_starts), "the id is empty")
        good = np.ones(len(self.numbers), dtype=bool)
        good[list(self.bad)] = False  # a bad row holds no id
        good = np.flatnonzero(good)
        for row, earlier in _duplicates(self.blob, self.id_starts[good], self.id_ends[good]):
            self._flag(good[[row]], f"duplicate id '{_shorten(self._id(good[row]))}' "
                                    f"(first on line {self.numbers[good[earlier]] + 1})")

    def _rewrite_ids(self, rows: np.ndarray) -> None:
        extra, offset = [], len(self.buffer)
        for row in rows.tolist():
            line = self._field(self.starts[row], self.ends[row])
            fields = next(csv.reader([line]))
            if len(fields) != 2:
                self._flag(np.array([row]), f"expected 2 columns (id,hash), found {len(fields)}")
                fields = [""]
            field = _csv_field(fields[0]).encode("utf-8")
            self.id_starts[row], self.id_ends[row] = offset, offset + len(field)
            extra.append(field)
            offset += len(field)
        self.blob = np.concatenate([self.buffer, np.frombuffer(b"".join(extra), dtype=np.uint8)])

    def _id(self, row: int) -> str:
        return bytes(self.blob[self.id_starts[row] : self.id_ends[row]]).decode("utf-8", "replace")

    def hash_list(self) -> HashList:
        return HashList(self.path, self.packed, self.blob, self.id_starts, self.id_ends)


def _csv_field(text: str) -> str:
    """`text` as one CSV field (quoted when it holds a comma, a quote or a line break)."""
    if any(character in text for character in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _duplicates(blob: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> list[tuple[int, int]]:
    """(row, first row with the same id) for every repeated id. Only rows whose 64-bit
    digests collide are compared byte by byte."""
    digests = _digests(blob, starts, ends)
    order = np.argsort(digests, kind="stable")
    repeated = np.flatnonzero(digests[order][1:] == digests[order][:-1])
    first_rows: dict[bytes, int] = {}
    found = []
    for row in np.unique(np.concatenate([order[repeated], order[repeated + 1]])).tolist():
        first = first_rows.setdefault(bytes(blob[starts[row] : ends[row]]), row)
        if first != row:
            found.append((row, first))
    return found


@njit(cache=True, nogil=True)
def _digests(blob, starts, ends):
    """FNV-1a 64-bit digest of each id blob[starts[k]:ends[k]]."""
    digests = np.empty(len(starts), dtype=np.uint64)
    for row in range(len(starts)):
        value = np.uint64(14695981039346656037)
        for at in range(starts[row], ends[row]):
            value = (value ^ np.uint64(blob[at])) * np.uint64(1099511628211)
        digests[row] = value
    return digests


@njit(cache=True, nogil=True)
def _format_lines(blob_a, starts_a, ends_a, blob_b, starts_b, ends_b, first, second, distances, out):
    """Write `id_a,id_b,distance\\n` for each pair into `out`; return the bytes written."""
    size = 0
    digits = np.empty(20, dtype=np.uint8)
    for pair in range(len(first)):
        for at in range(starts_a[first[pair]], ends_a[first[pair]]):
            out[size] = blob_a[at]
            size += 1
        out[size] = 44  # ','
        size += 1
        for at in range(starts_b[second[pair]], ends_b[second[pair]]):
            out[size] = blob_b[at]
            size += 1
        out[size] = 44
        size += 1
        value, count = distances[pair], 0
        while True:
            digits[count] = 48 + value % 10
            value //= 10
            count += 1
            if value == 0:
                break
        for position in range(count - 1, -1, -1):
            out[size] = digits[position]
            size += 1
        out[size] = 10  # '\n'
        size += 1
    return size
