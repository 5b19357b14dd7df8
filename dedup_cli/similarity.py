"""When two hashed images count as duplicates: hash bits within the threshold (in any of
the 8 orientations with --isometric), colours that agree, and no verdict from a hash of a
nearly uniform picture alone.

Pure: arrays in, arrays out. The colour check compares each image's 8x8 grid of mean Y,
Cb and Cr (hashing.colour_signature) after fitting the one global change that brightness
and contrast edits make: Y -> s*Y + b and chroma -> s*chroma. What that change cannot
explain, a different colour in part of the picture (another flag, another skin tone), is
the colour distance. A cell clipped to white says only that its true brightness is at
least the clipping level: it is left out of the fit and counts only where the other
image's fitted cell falls short of white (a white stripe against a blue one). A grey
image has no colour to compare, so against it only the luminance layout counts: a grey
copy of a colour photo still matches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dedup_cli.index import IndexSettings, cross_pairs, hamming, pairs_within

GREY_CHROMA = 4.0  # mean chroma (Cb, Cr distance from neutral) below which an image is grey
FLAT_LUMA_STD = 3.0  # luminance std of the 8x8 grid below which a picture is nearly uniform
FLAT_MAX_DIFFERENCE = 6.0  # such pictures match only when their grids differ by at most this
CLIPPED_LUMA = 245  # grid cells this bright may be clipped: only a lower bound of their brightness
SCALE_RANGE = (0.5, 2.0)  # brightness/contrast factors the fit may use
DEFAULT_COLOUR_THRESHOLD = 12.0


@dataclass(frozen=True)
class MatchSettings:
    """What makes two files duplicates."""

    max_bits: int
    colour_check: bool = True
    colour_threshold: float = DEFAULT_COLOUR_THRESHOLD


# Only the inner 6x6 cells of the 8x8 grid are compared: a crop of a few percent moves
# the outer ring by a quarter of a cell, the inner cells far less. (On the calibration
# edits this raised pHash-8 recall from 0.960 to 0.972 and cut false flag pairs 8 -> 6.)
_INNER = np.pad(np.ones((6, 6)), 1).ravel()[None, :]


def _grid(colour: np.ndarray) -> np.ndarray:
    return colour.reshape(len(colour), colour.shape[-1] // 3, 3).astype(np.float64)


def _unexplained(a: np.ndarray, b: np.ndarray, with_chroma: np.ndarray) -> np.ndarray:
    """Colour difference of a from b per compared cell, left after the best global
    brightness/contrast change of b (one factor for luma and chroma, as those edits make).

    The change is fitted on the inner cells clipped in neither image. A cell clipped in
    one image only is a bound, not a value: it adds an error only where the other side's
    fitted brightness falls short of the clipping level, and then with its chroma
    difference (a clip cannot explain a colour that stays below white). The total is
    divided by the number of fitted cells, so a picture mostly clipped to white cannot
    dilute a difference. Cells clipped in both, and the outer ring of cells, are left
    out. Chroma counts only in rows where `with_chroma` (both images in colour).
    """
    luma_a, luma_b = a[..., 0], b[..., 0]
    uses_chroma = with_chroma.astype(np.float64)[:, None, None]
    chroma_a, chroma_b = (a[..., 1:] - 128.0) * uses_chroma, (b[..., 1:] - 128.0) * uses_chroma
    clipped_a, clipped_b = luma_a >= CLIPPED_LUMA, luma_b >= CLIPPED_LUMA
    weight = (~clipped_a & ~clipped_b) * _INNER
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
    predicted = scale * luma_b + offset
    chroma_error = np.sqrt(((chroma_a - scale[..., None] * chroma_b) ** 2).sum(axis=-1))
    # How far each side falls short of white where the other is clipped (0 elsewhere).
    short_of_clip = np.where(clipped_a & ~clipped_b, CLIPPED_LUMA - predicted,
                             np.where(clipped_b & ~clipped_a, scale * CLIPPED_LUMA + offset - luma_a, 0.0))
    cell_error = np.where(weight > 0, np.hypot(luma_a - predicted, chroma_error),
                          np.where(short_of_clip > 0, np.hypot(short_of_clip, chroma_error), 0.0))
    return (cell_error * _INNER).sum(axis=1) / count


def colour_distance(colour_a: np.ndarray, colour_b: np.ndarray) -> np.ndarray:
    """Colour distance between paired rows of colour signatures. When either image is
    grey only the luminance layout is compared, so a grey copy still matches its original
    but not a different picture whose grey hash happens to agree."""
    a, b = _grid(colour_a), _grid(colour_b)
    both_colour = (_chroma(a) >= GREY_CHROMA) & (_chroma(b) >= GREY_CHROMA)
    return np.minimum(_unexplained(a, b, both_colour), _unexplained(b, a, both_colour))


def _chroma(grid: np.ndarray) -> np.ndarray:
    return np.hypot(grid[..., 1] - 128.0, grid[..., 2] - 128.0).mean(axis=1)


def flat_mismatch(colour_a: np.ndarray, colour_b: np.ndarray) -> np.ndarray:
    """True where one picture is nearly uniform (its hash is noise) and the two grids
    differ: such a pair is no duplicate whatever the hashes say."""
    a, b = _grid(colour_a), _grid(colour_b)
    flat = (a[..., 0].std(axis=1) < FLAT_LUMA_STD) | (b[..., 0].std(axis=1) < FLAT_LUMA_STD)
    return flat & (np.abs(a - b).mean(axis=(1, 2)) > FLAT_MAX_DIFFERENCE)


class Matcher:
    """Distances between the files of one HashedFiles under one MatchSettings."""

    def __init__(self, hashed, settings: MatchSettings, index_settings: IndexSettings = IndexSettings()):
        self.hashed = hashed
        self.settings = settings
        self.index_settings = index_settings
        self.rejected = hashed.settings.n_bits + 1  # the distance of a vetoed pair

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
        ruled_out = self._vetoed(rows, np.full(len(rows), row), orientation)
        return np.where(ruled_out, self.rejected, bits)

    def _vetoed(self, first: np.ndarray, second: np.ndarray, orientation: np.ndarray) -> np.ndarray:
        """True for pairs that colour or flatness rule out; `first` is compared turned
        into `orientation` (the one its hash matched in)."""
        colour = self.hashed.colour
        return vetoed(turn_grids(colour[first], orientation), colour[second], self.settings)

    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All pairs (i < j) of files that are duplicates, with their bits (complete)."""
        hashed, max_bits = self.hashed, self.settings.max_bits
        n_bits = hashed.settings.n_bits
        if hashed.variants is None:
            def accept(first, second):
                return ~self._vetoed(first, second, np.zeros(len(first), dtype=np.int64))

            return pairs_within(hashed.packed, n_bits, max_bits, self.index_settings, accept=accept)
        else:
            queries = self._orientations(np.arange(len(hashed.paths)))
            owner, second, bits = cross_pairs(hashed.packed, n_bits, queries.reshape(-1, queries.shape[-1]),
                                              max_bits, self.index_settings)
            first, orientation = np.divmod(owner, queries.shape[1])
            first, second, bits, orientation = _distinct_pairs(first, second, bits, orientation)
        keep = ~self._vetoed(first, second, orientation)
        low, high = np.minimum(first, second), np.maximum(first, second)
        return low[keep], high[keep], bits[keep]

    def matches(self, packed_orientations: np.ndarray, colour: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows that are duplicates of an outside image given by its hash in each
        orientation and its colour signature; nearest first."""
        hashed = self.hashed
        query_rows, rows, bits = cross_pairs(hashed.packed, hashed.settings.n_bits, packed_orientations,
                                             self.settings.max_bits, self.index_settings)
        rows, bits, orientation = _best_per_row(rows, bits, query_rows)
        query_colour = turn_grids(np.repeat(colour[None, :], len(rows), axis=0), orientation)
        ruled_out = vetoed(query_colour, hashed.colour[rows], self.settings)
        rows, bits = rows[~ruled_out], bits[~ruled_out]
        order = np.lexsort((rows, bits))
        return rows[order], bits[order]


def vetoed(colour_a: np.ndarray, colour_b: np.ndarray, settings: MatchSettings) -> np.ndarray:
    """True for paired colour signatures that flatness or (if checked) colour rule out.
    Works through the pairs in chunks, so memory stays flat however many there are."""
    ruled_out = np.zeros(len(colour_a), dtype=bool)
    for start in range(0, len(colour_a), _VETO_CHUNK):
        part = slice(start, start + _VETO_CHUNK)
        ruled_out[part] = flat_mismatch(colour_a[part], colour_b[part])
        if settings.colour_check:
            ruled_out[part] |= colour_distance(colour_a[part], colour_b[part]) > settings.colour_threshold
    return ruled_out


_VETO_CHUNK = 4096


def turn_grids(colour: np.ndarray, orientation: np.ndarray) -> np.ndarray:
    """Each row's colour grid turned as hashing.OTHER_ORIENTATIONS[orientation - 1] turns
    the picture (orientation 0: as it is)."""
    side = int(round((colour.shape[-1] // 3) ** 0.5))
    grids = colour.reshape(len(colour), side, side, 3)
    turned = grids.copy()
    for number, turn in enumerate(_GRID_TURNS, start=1):
        chosen = orientation == number
        if chosen.any():
            turned[chosen] = turn(grids[chosen])
    return turned.reshape(colour.shape)


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
    keep = low != high
    first, second, low, high = first[keep], second[keep], low[keep], high[keep]
    bits, orientation = bits[keep], orientation[keep]
    order = np.lexsort((bits, high, low))
    low, high = low[order], high[order]
    first_of_pair = np.ones(len(low), dtype=bool)
    first_of_pair[1:] = (low[1:] != low[:-1]) | (high[1:] != high[:-1])
    chosen = order[first_of_pair]
    return first[chosen], second[chosen], bits[chosen], orientation[chosen]


def _best_per_row(rows, bits, orientation):
    order = np.lexsort((bits, rows))
    rows, bits, orientation = rows[order], bits[order], orientation[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = rows[1:] != rows[:-1]
    return rows[first], bits[first], orientation[first]
