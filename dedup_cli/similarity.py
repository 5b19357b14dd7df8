"""When two hashed images count as duplicates: hash bits within the threshold (in any of
the 8 orientations with --isometric), colours that agree, and no verdict from a hash of a
nearly uniform picture alone.

Pure: arrays in, arrays out. The colour check compares each image's 8x8 grid of mean Y,
Cb and Cr (signature.colour_signature) after fitting the one global change that brightness
and contrast edits make: Y -> s*Y + b and chroma -> s*chroma. What that change cannot
explain, a different colour in part of the picture (another flag, another skin tone), is
the colour distance. A cell clipped to white says only that its true brightness is at
least the clipping level: it is left out of the fit and counts only where the other
image's fitted cell falls short of white (a white stripe against a blue one). A grey
image has no colour to compare, so against it only the luminance layout counts: a grey
copy of a colour photo still matches (held, when only one of the two is grey, to a fit
one edit can make). A second, local check looks at the worst cells of
finer 16x16 grids (signature.py), where a small emblem is not averaged away. A third,
for two pictures in colour, holds the fit to what one brightness or contrast edit does
to the RGB channels (all scaled alike about black or the mean grey, clipped at the ends)
and counts what it leaves in smooth regions: a lighter red that is as saturated as the
darker one (Monaco's flag against Indonesia's) is no edit of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dedup_cli.index import IndexSettings, cross_pairs, hamming, pairs_within
from dedup_cli.signature import GRID_SIDES, grid

GREY_CHROMA = 4.0  # mean chroma (Cb, Cr distance from neutral) below which an image is grey
FLAT_LUMA_STD = 3.0  # luminance std of the 8x8 grid below which a picture is nearly uniform
FLAT_MAX_DIFFERENCE = 6.0  # such pictures match only when their grids differ by at most this
CLIPPED_LUMA = 245  # grid cells this bright may be clipped: only a lower bound of their brightness
SCALE_RANGE = (0.5, 2.0)  # brightness/contrast factors the fit may use
OFFSET_SLACK = 8.0  # grey levels a held fit may shift beyond one edit's offset
DEFAULT_COLOUR_THRESHOLD = 12.0
# The local check: the mean error of the LOCAL_CELLS worst cells of the 16x16 detail grid
# may be at most LOCAL_FACTOR times the colour threshold (45 at the default).
LOCAL_CELLS = 8
LOCAL_FACTOR = 3.75
# The one-edit check (pairs in colour only): after the closest single brightness or
# contrast edit, each cell's RGB error beyond what its own detail explains, averaged over
# the inner cells, may be at most EDIT_FACTOR times the colour threshold (3 at the default).
EDIT_FACTOR = 0.25
RGB_CLIPPED = (8.0, float(CLIPPED_LUMA))  # channel means at or beyond these may be clipped: only bounds
PIVOTS = 5  # contrast pivots tried, evenly from black to the brighter picture's mean grey
SMOOTH_SPREAD = 4.0  # cells whose detail spreads this much count half as much in the fit (8: a fifth)


@dataclass(frozen=True)
class MatchSettings:
    """What makes two files duplicates."""

    max_bits: int
    colour_check: bool = True
    colour_threshold: float = DEFAULT_COLOUR_THRESHOLD


def _inner(side: int) -> np.ndarray:
    """Mask of the cells compared: all but the outer eighth on each side. A crop of a few
    percent moves the outer ring by a quarter of a cell, the inner cells far less. (On the
    calibration edits this raised pHash-8 recall from 0.960 to 0.972.)"""
    ring = side // 8
    return np.pad(np.ones((side - 2 * ring, side - 2 * ring), dtype=np.float32), ring).ravel()[None, :]


_INNER = {side: _inner(side) for side in set(GRID_SIDES)}


def _cell_errors(a: np.ndarray, b: np.ndarray, with_chroma: np.ndarray,
                 held: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Colour difference of a from b in each cell, left after the best global
    brightness/contrast change of b (one factor for luma and chroma, as those edits make),
    and the number of cells the change was fitted on.

    The change is fitted on the inner cells clipped in neither image. A cell clipped in
    one image only is a bound, not a value: it has an error only where the other side's
    fitted brightness falls short of the clipping level, and then with its chroma
    difference (a clip cannot explain a colour that stays below white). Cells clipped in
    both, and the outer ring of cells, have none. Chroma counts only in rows where
    `with_chroma` (both images in colour); in rows where `held` (one image grey) no chroma
    confirms the fit, so it is held to a change one edit can make.
    """
    inner = _INNER[int(round(a.shape[1] ** 0.5))]
    luma_a, luma_b = a[..., 0], b[..., 0]
    uses_chroma = with_chroma.astype(np.float32)[:, None, None]
    chroma_a, chroma_b = (a[..., 1:] - 128.0) * uses_chroma, (b[..., 1:] - 128.0) * uses_chroma
    clipped_a, clipped_b = luma_a >= CLIPPED_LUMA, luma_b >= CLIPPED_LUMA
    weight = (~clipped_a & ~clipped_b) * inner
    count = np.maximum(weight.sum(axis=1), 1.0)
    mean_a = (luma_a * weight).sum(axis=1) / count
    mean_b = (luma_b * weight).sum(axis=1) / count
    centred_a = (luma_a - mean_a[:, None]) * weight
    centred_b = (luma_b - mean_b[:, None]) * weight
    chroma_weight = weight[..., None]
    numerator = (centred_a * centred_b).sum(axis=1) + (chroma_a * chroma_b * chroma_weight).sum(axis=(1, 2))
    denominator = (centred_b**2).sum(axis=1) + (chroma_b**2 * chroma_weight).sum(axis=(1, 2))
    scale = np.clip(numerator / np.maximum(denominator, 1e-9), *SCALE_RANGE)[:, None]
    offset = (mean_a - scale[:, 0] * mean_b)[:, None]
    # Brightness turns luma about black, contrast about the mean grey: the offset of one
    # such edit is (1 - s) * p with p between 0 and the brighter picture's mean.
    pivot_offset = (1.0 - scale) * np.maximum(luma_a.mean(axis=1), luma_b.mean(axis=1))[:, None]
    one_edit = np.clip(offset, np.minimum(pivot_offset, 0.0) - OFFSET_SLACK,
                       np.maximum(pivot_offset, 0.0) + OFFSET_SLACK)
    offset = np.where(held[:, None], one_edit, offset)
    predicted = scale * luma_b + offset
    chroma_error = np.sqrt(((chroma_a - scale[..., None] * chroma_b) ** 2).sum(axis=-1))
    # How far each side falls short of white where the other is clipped (0 elsewhere).
    short_of_clip = np.where(clipped_a & ~clipped_b, CLIPPED_LUMA - predicted,
                             np.where(clipped_b & ~clipped_a, scale * CLIPPED_LUMA + offset - luma_a, 0.0))
    cell_error = np.where(weight > 0, np.hypot(luma_a - predicted, chroma_error),
                          np.where(short_of_clip > 0, np.hypot(short_of_clip, chroma_error), 0.0))
    return cell_error * inner, count


def colour_distance(colour_a: np.ndarray, colour_b: np.ndarray) -> np.ndarray:
    """Global colour distance between paired rows of colour signatures: the error left
    per fitted cell of the coarse grids, summed (a cell clipped to white in one image
    adds to the sum but not to the cell count, so a picture mostly clipped to white
    cannot dilute a difference). When either image is grey only the luminance layout is
    compared, so a grey copy still matches its original but not a different picture
    whose grey hash happens to agree."""
    return _Pairs(colour_a, colour_b).global_error()


def local_distance(colour_a: np.ndarray, colour_b: np.ndarray, enough: float = 0.0) -> np.ndarray:
    """Local colour distance between paired rows of colour signatures: the mean error of
    the LOCAL_CELLS worst cells of the 16x16 detail grids, which sees a difference in a
    small part of the picture (an emblem, two stars) that the global mean dilutes. Each
    picture is also compared by its centre grid against the other's detail grid, so a
    copy cropped by a few percent still lines up; the best alignment counts. Rows already
    at or below `enough` are not tried in further alignments (their value is then only
    an upper bound)."""
    return _Pairs(colour_a, colour_b).local_error(enough)


def flat_mismatch(colour_a: np.ndarray, colour_b: np.ndarray) -> np.ndarray:
    """True where one picture is nearly uniform (its hash is noise) and the two grids
    differ: such a pair is no duplicate whatever the hashes say."""
    return _Pairs(colour_a, colour_b).flat_mismatch()


def edit_distance(colour_a: np.ndarray, colour_b: np.ndarray) -> np.ndarray:
    """One-edit colour distance between paired rows of colour signatures (0 where either
    is grey): what the closest single brightness or contrast edit leaves unexplained in
    RGB, where a smooth region shows it. See _edit_error."""
    return _Pairs(colour_a, colour_b).edit_error()


def _rgb(cells: np.ndarray) -> np.ndarray:
    """(rows, cells, 3) YCbCr means -> RGB means (the JPEG/JFIF matrix PIL converts with;
    it is linear, so the mean of a cell converts exactly)."""
    luma, blue, red = cells[..., 0], cells[..., 1] - 128.0, cells[..., 2] - 128.0
    return np.stack([luma + 1.402 * red, luma - 0.344136 * blue - 0.714136 * red, luma + 1.772 * blue], axis=-1)


def _spread(colour: np.ndarray) -> np.ndarray:
    """(rows, coarse cells, 3): how far the four detail cells inside each coarse cell stray from
    their mean, per RGB channel. Large at an edge or in texture, where a crop or a resize
    moves the cell's mean; small in a smooth region, where only a colour change can."""
    coarse, step = GRID_SIDES[0], GRID_SIDES[1] // GRID_SIDES[0]
    detail = _rgb(grid(colour, 1)).reshape(len(colour), coarse, step, coarse, step, 3)
    spread = np.abs(detail - detail.mean(axis=(2, 4), keepdims=True)).max(axis=(2, 4))
    return spread.reshape(len(colour), coarse * coarse, 3)


def _edit_error(a: np.ndarray, b: np.ndarray, mean_grey: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """How far RGB cell means `a` are from the closest a = p + s * (b - p) per channel:
    one brightness (p = 0) or contrast (p = the mean grey) edit of b, or the two together
    (p between), the same for all three channels, as those edits make. Channels at or
    beyond RGB_CLIPPED are bounds: a clipped side only says the true value lies beyond.
    Each cell's error is reduced by its spread, so misaligned detail does not count; the
    rest is averaged over the inner cells. The fit weights smooth cells most."""
    inner = _INNER[GRID_SIDES[0]][..., None]
    low, high = RGB_CLIPPED
    high_a, high_b, low_a, low_b = a >= high, b >= high, a <= low, b <= low
    free = ~(high_a | high_b | low_a | low_b) * inner
    fit_weight = free / (1.0 + (spread.max(axis=-1, keepdims=True) / SMOOTH_SPREAD) ** 2)
    # The prediction must land in [lowest, highest]: a's value, or beyond its clip level
    # when a is clipped; open on one side when b is clipped (its true value lies beyond,
    # and so does the prediction from it).
    lowest = np.where(high_b, -np.inf, np.where(high_a, high, np.where(low_a, -np.inf, a)))
    highest = np.where(low_b, np.inf, np.where(low_a, low, np.where(high_a, np.inf, a)))
    best = np.full(len(a), np.inf, dtype=np.float32)
    for step in np.linspace(0.0, 1.0, PIVOTS, dtype=np.float32):
        pivot = (step * mean_grey)[:, None, None]
        numerator = ((a - pivot) * (b - pivot) * fit_weight).sum(axis=(1, 2))
        denominator = ((b - pivot) ** 2 * fit_weight).sum(axis=(1, 2))
        scale = np.clip(numerator / np.maximum(denominator, 1e-9), *SCALE_RANGE)[:, None, None]
        predicted = pivot + scale * (b - pivot)
        unexplained = np.maximum(np.maximum(lowest - predicted, predicted - highest) - spread, 0.0)
        cell_error = np.sqrt((unexplained**2).mean(axis=-1, keepdims=True)) * inner
        best = np.minimum(best, cell_error.sum(axis=(1, 2)) / inner.sum())
    return best


def chroma(grid: np.ndarray) -> np.ndarray:
    """Mean distance of each grid's cells from neutral grey in the Cb-Cr plane."""
    return np.hypot(grid[..., 1] - 128.0, grid[..., 2] - 128.0).mean(axis=1)


class _Pairs:
    """Paired rows of colour signatures, their coarse grids and colour kinds taken once
    for all the checks."""

    def __init__(self, colour_a: np.ndarray, colour_b: np.ndarray):
        self.colour_a, self.colour_b = colour_a, colour_b
        self.a, self.b = grid(colour_a, 0), grid(colour_b, 0)
        in_colour_a, in_colour_b = chroma(self.a) >= GREY_CHROMA, chroma(self.b) >= GREY_CHROMA
        self.with_chroma, self.held = in_colour_a & in_colour_b, in_colour_a ^ in_colour_b

    def subset(self, rows: np.ndarray) -> _Pairs:
        """The pairs at `rows`, their grids and kinds sliced, not taken again."""
        part = object.__new__(_Pairs)
        for name in ("colour_a", "colour_b", "a", "b", "with_chroma", "held"):
            setattr(part, name, getattr(self, name)[rows])
        return part

    def flat_mismatch(self) -> np.ndarray:
        a, b = self.a, self.b
        flat = (a[..., 0].std(axis=1) < FLAT_LUMA_STD) | (b[..., 0].std(axis=1) < FLAT_LUMA_STD)
        return flat & (np.abs(a - b).mean(axis=(1, 2)) > FLAT_MAX_DIFFERENCE)

    def global_error(self) -> np.ndarray:
        def mean_error(x, y):
            errors, count = _cell_errors(x, y, self.with_chroma, self.held)
            return errors.sum(axis=1) / count

        return np.minimum(mean_error(self.a, self.b), mean_error(self.b, self.a))

    def local_error(self, enough: float) -> np.ndarray:
        detail_a, centre_a = grid(self.colour_a, 1), grid(self.colour_a, 2)
        detail_b, centre_b = grid(self.colour_b, 1), grid(self.colour_b, 2)
        best = np.full(len(self.a), np.inf)
        for first, second in ((detail_a, detail_b), (detail_b, detail_a), (detail_a, centre_b),
                              (centre_b, detail_a), (centre_a, detail_b), (detail_b, centre_a)):
            rows = np.flatnonzero(best > enough)
            if not len(rows):
                break
            errors, _ = _cell_errors(first[rows], second[rows], self.with_chroma[rows], self.held[rows])
            worst = np.partition(errors, -LOCAL_CELLS, axis=1)[:, -LOCAL_CELLS:].mean(axis=1)
            best[rows] = np.minimum(best[rows], worst)
        return best

    def edit_error(self) -> np.ndarray:
        rgb_a, rgb_b = _rgb(self.a), _rgb(self.b)
        spread = np.maximum(_spread(self.colour_a), _spread(self.colour_b))
        mean_grey = np.maximum(self.a[..., 0].mean(axis=1), self.b[..., 0].mean(axis=1))
        error = np.minimum(_edit_error(rgb_a, rgb_b, mean_grey, spread), _edit_error(rgb_b, rgb_a, mean_grey, spread))
        return np.where(self.with_chroma, error, 0.0)

    def vetoed(self, settings: MatchSettings) -> np.ndarray:
        ruled_out = self.flat_mismatch()
        if settings.colour_check:
            ruled_out |= self.global_error() > settings.colour_threshold
            # The finer checks cost more: each runs only on the pairs still open.
            still_open = np.flatnonzero(~ruled_out)
            local_threshold = LOCAL_FACTOR * settings.colour_threshold
            ruled_out[still_open] = self.subset(still_open).local_error(local_threshold) > local_threshold
            still_open = np.flatnonzero(~ruled_out & self.with_chroma)
            edit_threshold = EDIT_FACTOR * settings.colour_threshold
            ruled_out[still_open] = self.subset(still_open).edit_error() > edit_threshold
        return ruled_out


class Matcher:
    """Distances between the files of one HashedFiles under one MatchSettings."""

    def __init__(self, hashed, settings: MatchSettings, index_settings: IndexSettings = IndexSettings()):
        self.hashed = hashed
        self.settings = settings
        self.index_settings = index_settings
        self.rejected = hashed.settings.n_bits + 1  # the distance of a vetoed pair
        self._pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        # The verdicts pairs() reached on unturned pairs, by key low * n + high (sorted):
        # the planner asks for them again, pair by pair. The checks are symmetric, so the
        # order of the two files does not matter.
        self._judged_keys = np.zeros(0, dtype=np.int64)
        self._judged_vetoed = np.zeros(0, dtype=bool)
        self._judged_rows: np.ndarray | None = None  # row -> row of the matcher that judged
        self._judged_count = len(hashed.paths)  # the rows of the matcher that judged

    def reuse_verdicts(self, other: Matcher, rows: np.ndarray):
        """Take over the verdicts `other` reached, its row rows[i] standing for row i here
        (a matcher over the distinct files of this one's, which match alike)."""
        self._judged_keys, self._judged_vetoed = other._judged_keys, other._judged_vetoed
        self._judged_rows, self._judged_count = rows, len(other.hashed.paths)

    def _orientations(self, rows) -> np.ndarray:
        """(len(rows), k, bytes): the hash of each row in each orientation (k = 1 or 8)."""
        packed = self.hashed.packed[rows][:, None, :]
        if self.hashed.variants is None:
            return packed
        return np.concatenate([packed, self.hashed.variants[rows]], axis=1)

    def distances(self, rows, row: int) -> np.ndarray:
        """Bits from each of `rows` to `row` (in the best orientation of `rows` with
        --isometric); vetoed pairs get n_bits + 1."""
        rows = np.asarray(rows, dtype=np.int64)
        by_orientation = hamming(self._orientations(rows), self.hashed.packed[row])
        orientation = by_orientation.argmin(axis=1)
        bits = by_orientation[np.arange(len(rows)), orientation]
        near = np.flatnonzero(bits <= self.settings.max_bits)  # only these need the colour checks
        distances = np.full(len(rows), self.rejected)
        ruled_out = self._remembered(rows[near], row, orientation[near])
        unknown = np.flatnonzero(ruled_out < 0)
        ruled_out[unknown] = self._vetoed(rows[near][unknown], np.full(len(unknown), row), orientation[near][unknown])
        distances[near] = np.where(ruled_out == 1, self.rejected, bits[near])
        return distances

    def _key(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        if self._judged_rows is not None:
            first, second = self._judged_rows[first], self._judged_rows[second]
        return np.minimum(first, second) * self._judged_count + np.maximum(first, second)

    def _remember(self, first: np.ndarray, second: np.ndarray, orientation: np.ndarray, ruled_out: np.ndarray):
        unturned = orientation == 0
        keys = self._key(first[unturned], second[unturned])
        order = np.argsort(keys)
        self._judged_keys, self._judged_vetoed = keys[order], ruled_out[unturned][order]
        self._judged_rows = None

    def _remembered(self, rows: np.ndarray, row: int, orientation: np.ndarray) -> np.ndarray:
        """1 (vetoed), 0 (not) or -1 (not judged yet) for each pair (rows[i], row)."""
        verdicts = np.full(len(rows), -1, dtype=np.int8)
        if not len(self._judged_keys):
            return verdicts
        keys = self._key(rows, np.full(len(rows), row))
        at = np.minimum(np.searchsorted(self._judged_keys, keys), len(self._judged_keys) - 1)
        known = (self._judged_keys[at] == keys) & (orientation == 0)
        verdicts[known] = self._judged_vetoed[at[known]]
        return verdicts

    def _vetoed(self, first: np.ndarray, second: np.ndarray, orientation: np.ndarray) -> np.ndarray:
        """True for pairs that colour or flatness rule out; `first` is compared turned
        into `orientation` (the one its hash matched in)."""
        colour = self.hashed.colour
        ruled_out = np.zeros(len(first), dtype=bool)
        for start in range(0, len(first), _VETO_CHUNK):  # gathered a chunk at a time
            part = slice(start, start + _VETO_CHUNK)
            ruled_out[part] = vetoed(turn_grids(colour[first[part]], orientation[part]), colour[second[part]],
                                     self.settings)
        return ruled_out

    @property
    def found_pairs(self) -> bool:
        return self._pairs is not None

    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All pairs (i < j) of files that are duplicates, with their bits (complete).
        Found once per Matcher; the verdicts are kept for distances()."""
        if self._pairs is None:
            self._pairs = self._find_pairs()
        return self._pairs

    def _find_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        hashed, max_bits = self.hashed, self.settings.max_bits
        n_bits = hashed.settings.n_bits
        if hashed.variants is None:
            judged = []

            def accept(first, second):
                ruled_out = self._vetoed(first, second, np.zeros(len(first), dtype=np.int64))
                judged.append((first, second, ruled_out))
                return ~ruled_out

            found = pairs_within(hashed.packed, n_bits, max_bits, self.index_settings, accept=accept)
            if judged:
                first, second, ruled_out = (np.concatenate(column) for column in zip(*judged))
                self._remember(first, second, np.zeros(len(first), dtype=np.int64), ruled_out)
            return found
        queries = self._orientations(np.arange(len(hashed.paths)))
        owner, second, bits = cross_pairs(hashed.packed, n_bits, queries.reshape(-1, queries.shape[-1]),
                                          max_bits, self.index_settings)
        first, orientation = np.divmod(owner, queries.shape[1])
        first, second, bits, orientation = _distinct_pairs(first, second, bits, orientation)
        ruled_out = self._vetoed(first, second, orientation)
        self._remember(first, second, orientation, ruled_out)
        keep = ~ruled_out
        low, high = np.minimum(first, second), np.maximum(first, second)
        return low[keep], high[keep], bits[keep]

    def matches(self, packed_orientations: np.ndarray, colour: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows that are duplicates of an outside image given by its hash in each
        orientation and its colour signature; nearest first."""
        _, rows, bits = self.matches_many(packed_orientations[None], colour[None])
        return rows, bits

    def matches_many(self, packed_orientations: np.ndarray, colours: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query, row, bits) for every row that is a duplicate of one of many outside
        images, given as (queries, orientations, hash bytes) and (queries, signature
        bytes); each pair once in its best orientation, sorted by query, bits, row."""
        hashed = self.hashed
        count, turns = packed_orientations.shape[:2]
        owners, rows, bits = cross_pairs(hashed.packed, hashed.settings.n_bits,
                                         packed_orientations.reshape(count * turns, -1),
                                         self.settings.max_bits, self.index_settings)
        queries, orientation = np.divmod(owners, turns)
        queries, rows, bits, orientation = _best_per_pair(queries, rows, bits, orientation)
        ruled_out = vetoed(turn_grids(colours[queries], orientation), hashed.colour[rows], self.settings)
        queries, rows, bits = queries[~ruled_out], rows[~ruled_out], bits[~ruled_out]
        order = np.lexsort((rows, bits, queries))
        return queries[order], rows[order], bits[order]


def vetoed(colour_a: np.ndarray, colour_b: np.ndarray, settings: MatchSettings) -> np.ndarray:
    """True for paired colour signatures that flatness or (if checked) colour rule out.
    Works through the pairs in chunks, so memory stays flat however many there are."""
    ruled_out = np.zeros(len(colour_a), dtype=bool)
    for start in range(0, len(colour_a), _VETO_CHUNK):
        part = slice(start, start + _VETO_CHUNK)
        ruled_out[part] = _Pairs(colour_a[part], colour_b[part]).vetoed(settings)
    return ruled_out


_VETO_CHUNK = 1024


def turn_grids(colour: np.ndarray, orientation: np.ndarray) -> np.ndarray:
    """Each row's colour grids turned as hashing.OTHER_ORIENTATIONS[orientation - 1] turns
    the picture (orientation 0: as it is). The centre grid is centred, so it turns alike."""
    if not orientation.any():
        return colour
    turned_parts, start = [], 0
    for side in GRID_SIDES:
        size = side * side * 3
        grids = colour[:, start:start + size].reshape(len(colour), side, side, 3)
        turned = grids.copy()
        for number, turn in enumerate(_GRID_TURNS, start=1):
            chosen = orientation == number
            if chosen.any():
                turned[chosen] = turn(grids[chosen])
        turned_parts.append(turned.reshape(len(colour), size))
        start += size
    return np.concatenate(turned_parts, axis=1)


# The grid (rows, y, x, channel) counterparts of hashing.OTHER_ORIENTATIONS, in its order.
_GRID_TURNS = (
    lambda g: g[:, :, ::-1],  # FLIP_LEFT_RIGHT
    lambda g: g[:, ::-1, :],  # FLIP_TOP_BOTTOM
    lambda g: np.rot90(g, 1, axes=(1, 2)),  # ROTATE_90
    lambda g: np.rot90(g, 2, axes=(1, 2)),  # ROTATE_180
    lambda g: np.rot90(g, 3, axes=(1, 2)),  # ROTATE_270
    lambda g: g.transpose(0, 2, 1, 3),  # TRANSPOSE
    lambda g: np.rot90(g.transpose(0, 2, 1, 3), 2, axes=(1, 2)),  # TRANSVERSE
)


def _distinct_pairs(first, second, bits, orientation):
    """Each unordered pair once (no self-pairs), with its smallest distance."""
    low, high = np.minimum(first, second), np.maximum(first, second)
    keep = np.flatnonzero(low != high)
    order = keep[np.lexsort((bits[keep], high[keep], low[keep]))]
    chosen = order[_run_starts(low[order], high[order])]
    return first[chosen], second[chosen], bits[chosen], orientation[chosen]


def _best_per_pair(queries, rows, bits, orientation):
    """Each (query, row) once, with its smallest distance and that distance's orientation."""
    order = np.lexsort((bits, rows, queries))
    chosen = order[_run_starts(queries[order], rows[order])]
    return queries[chosen], rows[chosen], bits[chosen], orientation[chosen]


def _run_starts(*columns) -> np.ndarray:
    """True at the first row of each run of equal values in sorted `columns`."""
    starts = np.ones(len(columns[0]), dtype=bool)
    for column in columns:
        starts[1:] &= column[1:] == column[:-1]
    starts[1:] = ~starts[1:]
    return starts
