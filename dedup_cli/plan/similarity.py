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
darker one (Monaco's flag against Indonesia's) is no edit of it. A fourth compares hues
cell by cell: those edits keep every coloured cell's hue, and a part of the picture
recoloured to another hue (a product in another colour) turns it.

The checks run on many pairs at once (vetoed), in chunks whose float grids stay within
the caches: each grid is taken once per chunk (the inner cells only, which are all a
check compares), and each check first tries the alignment or fit that settles nearly
every duplicate; the few pairs it leaves open try the others afterwards, all together.
The fits' sums are of whole numbers and exact, so only float rounding at a threshold can
tell these verdicts from a plain evaluation's.
"""

from __future__ import annotations

import functools
import hashlib
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from dedup_cli.fingerprint.signature import GRID_SIDES, grid
from dedup_cli.search.index import IndexSettings, cross_pairs, hamming, pairs_within

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
# the inner cells by their fit weights (smooth, unclipped cells count most) with the
# worst EDIT_TRIM of that weight left out, may be at most EDIT_FACTOR times the colour
# threshold (3 at the default).
EDIT_FACTOR = 0.25
EDIT_TRIM = 0.25
# The hue check (pairs in colour only): of the inner detail cells coloured in both
# pictures (chroma at least HUE_CHROMA), weighed by the smaller chroma, at most HUE_SHARE
# may have hues more than HUE_TURN degrees apart.
HUE_CHROMA = 16.0
HUE_TURN = 60.0
HUE_SHARE = 0.1
RGB_CLIPPED = (8.0, float(CLIPPED_LUMA))  # channel means at or beyond these may be clipped: only bounds
PIVOTS = 5  # contrast pivots tried, evenly from black to the brighter picture's mean grey
SMOOTH_SPREAD = 4.0  # cells whose detail spreads this much count half as much in the fit (8: a fifth)


# A pair matched in any other pair of views than the plain pictures (a turned picture, a
# trimmed or cropped view) must be this many bits closer than max_bits. Each pair of
# files is compared in up to 44 pairs of views with --isometric and --views, which gives
# unrelated pictures that many more chances to come close by accident; the true copies
# matched that way are mostly within 10 bits (README, accuracy section).
VIEW_MARGIN = 4


@dataclass(frozen=True)
class MatchSettings:
    """What makes two files duplicates."""

    max_bits: int
    colour_check: bool = True
    colour_threshold: float = DEFAULT_COLOUR_THRESHOLD
    # The local check's limit in colour thresholds: cnn_match raises it for grids that it
    # approximates (a window of another picture's grid blurs the cells at its edges).
    local_factor: float = LOCAL_FACTOR
    # Near misses up to this many bits beyond max_bits that local features verify also
    # match (plan/verify.py: VerifyingMatcher); 0 is the hash alone.
    verify_bits: int = 0
    view_margin: int = VIEW_MARGIN  # see VIEW_MARGIN

    @property
    def view_max_bits(self) -> int:
        """The most bits a pair matched in other views than the plain pictures may differ."""
        return max(0, self.max_bits - self.view_margin)


def _take(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """values[rows], without the copy when `rows` (sorted, distinct) are all of them."""
    return values if len(rows) == len(values) else values[rows]


def _dot(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Row-wise dot products of two arrays shaped alike (rows, ...)."""
    axes = "jkl"[:first.ndim - 1]
    return np.einsum(f"i{axes},i{axes}->i", first, second)


def _row_sums(values: np.ndarray) -> np.ndarray:
    """Sums over all but the first axis (einsum: several times faster than sum(axis=1))."""
    axes = "jkl"[:values.ndim - 1]
    return np.einsum(f"i{axes}->i", values)


def _smallest(values_of, variants: list, rows: np.ndarray, enough: float) -> np.ndarray:
    """Per row of `rows`, the smallest of values_of(variants, rows) (an array (variants,
    rows)) over the variants: the first on every row, the others at once on the rows
    still above `enough`. A row at or below `enough` after the first keeps that value,
    so it is then only an upper bound (with enough = 0, every value is exact)."""
    best = values_of(variants[:1], rows)[0]
    above = np.flatnonzero(best > enough)
    if len(above) and len(variants) > 1:
        best[above] = np.minimum(best[above], values_of(variants[1:], rows[above]).min(axis=0))
    return best


def _inner_columns(part: int) -> np.ndarray:
    """The signature columns of the inner cells of grid `part` (all but the outer eighth
    on each side), Y, Cb, Cr one plane after the other. Coarse cells go row-major; finer
    ones by which of the four children of an inner coarse cell they are, then in that
    coarse cell's order (the inner 12x12 detail cells are exactly those children)."""
    side, start = GRID_SIDES[part], sum(side * side * 3 for side in GRID_SIDES[:part])
    step, ring = side // GRID_SIDES[0], GRID_SIDES[0] // 8
    inner = GRID_SIDES[0] - 2 * ring
    coarse_rows, coarse_columns = (ring + index for index in np.divmod(np.arange(inner * inner), inner))
    rows = np.concatenate([coarse_rows * step + dy for dy in range(step) for dx in range(step)])
    columns = np.concatenate([coarse_columns * step + dx for dy in range(step) for dx in range(step)])
    return (start + 3 * (rows * side + columns)[None, :] + np.arange(3)[:, None]).ravel()


_INNER_COLUMNS = [_inner_columns(part) for part in range(len(GRID_SIDES))]
_LUMA_COLUMNS = [slice(start, start + 3 * side * side, 3)
                 for side, start in zip(GRID_SIDES, np.cumsum([0, *(3 * side * side for side in GRID_SIDES)]))]


class _Grid:
    """One grid of some signature rows as the checks compare it: its inner cells (all
    but the outer eighth on each side: a crop of a few percent moves the outer ring by a
    quarter of a cell, the inner cells far less; on the calibration edits this raised
    pHash-8 recall from 0.960 to 0.972) as float32 planes (rows, cells), in the order of
    _inner_columns.

    `planes` are (rows, 3, cells): Y, and Cb and Cr about neutral grey (`chroma`). A
    cell CLIPPED_LUMA or brighter may be clipped: it says only that its true luma is at
    least that. `unclipped` is 0 there, 1 elsewhere; `luma` is the luma with such cells
    at CLIPPED_LUMA. All are whole numbers.
    """

    __slots__ = ("colour", "part", "planes", "luma", "unclipped", "grey")
    _ARRAYS = ("planes", "luma", "unclipped")

    @classmethod
    def of(cls, colour: np.ndarray, part: int) -> _Grid:
        """Grid `part` (0 coarse, 1 detail, 2 centre) of the signature rows `colour`."""
        self = object.__new__(cls)
        self.colour, self.part, self.grey = colour, part, None
        columns = _INNER_COLUMNS[part]
        taken, cells = colour[:, columns], len(columns) // 3
        planes = np.empty(taken.shape, dtype=np.float32)
        planes[:, :cells] = taken[:, :cells]
        # Flipping the top bit of a byte and reading it signed subtracts 128, exactly.
        planes[:, cells:] = np.bitwise_xor(taken[:, cells:], 128).view(np.int8)
        self.planes = planes.reshape(len(colour), 3, cells)
        self.luma = np.minimum(self.planes[:, 0], np.float32(CLIPPED_LUMA))
        self.unclipped = (self.planes[:, 0] < CLIPPED_LUMA).astype(np.float32)
        return self

    @property
    def chroma(self) -> np.ndarray:
        return self.planes[:, 1:]

    def mean_luma(self, rows: np.ndarray) -> np.ndarray:
        """The mean luma of all the grid's cells (not only the inner ones) at `rows`
        (exact: the integer sum is, and so is its float32 mean)."""
        if self.grey is not None:
            return self.grey[rows]
        luma = self.colour[rows, _LUMA_COLUMNS[self.part]]
        return luma.sum(axis=1, dtype=np.int32).astype(np.float32) / luma.shape[1]

    def take(self, rows: np.ndarray) -> _Grid:
        """The grid at `rows` (sorted, distinct: all of them is the grid itself)."""
        if len(rows) == len(self.luma):
            return self
        taken = object.__new__(_Grid)
        taken.part, taken.colour = self.part, None if self.colour is None else self.colour[rows]
        for name in self._ARRAYS:
            setattr(taken, name, getattr(self, name)[rows])
        taken.grey = None if self.grey is None else self.grey[rows]
        return taken

    @classmethod
    def stack(cls, grids: list[_Grid]) -> _Grid:
        """The rows of all `grids` (of any parts), one grid after the other."""
        if len(grids) == 1:
            return grids[0]
        stacked = object.__new__(cls)
        stacked.colour, stacked.part = None, None
        for name in cls._ARRAYS:
            setattr(stacked, name, np.concatenate([getattr(grid, name) for grid in grids]))
        stacked.grey = np.concatenate([grid.mean_luma(np.arange(len(grid.luma))) for grid in grids])
        return stacked


def _cell_errors(x: _Grid, y: _Grid, uses_chroma: np.ndarray, held: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Squared colour difference of x from y in each inner cell, left after the best global
    brightness/contrast change of y (one factor for luma and chroma, as those edits make),
    and the number of cells the change was fitted on.

    The change is fitted on the cells clipped in neither image. A cell clipped in one
    image only is a bound, not a value: it has an error only where the other side's
    fitted brightness falls short of the clipping level, and then with its chroma
    difference (a clip cannot explain a colour that stays below white). Cells clipped in
    both have none. Chroma counts only in rows where `uses_chroma` is 1 (both images in
    colour); in rows where `held` (one image grey) no chroma confirms the fit, so it is
    held to a change one edit can make.
    """
    weight = x.unclipped * y.unclipped
    weighted_y, weighted_chroma_y = y.luma * weight, y.chroma * weight[:, None]
    # Sums of products of whole numbers, all below 2**24: exact in float32 in any order.
    total, sum_y = _row_sums(weight).astype(np.float64), _row_sums(weighted_y).astype(np.float64)
    sum_x = _dot(x.luma, weight).astype(np.float64)
    products = _dot(x.luma, weighted_y) + _dot(x.chroma, weighted_chroma_y) * uses_chroma
    powers = _dot(y.luma, weighted_y) + _dot(y.chroma, weighted_chroma_y) * uses_chroma
    # `total` times the sums of products about the fitted cells' mean lumas: exact in float64.
    numerator, denominator = total * products - sum_x * sum_y, total * powers - sum_y * sum_y
    count = np.maximum(total, 1.0)
    scale = np.clip(numerator / np.maximum(denominator, 1e-9 * count), *SCALE_RANGE)
    offset = (sum_x - scale * sum_y) / count
    held_rows = np.flatnonzero(held)
    if len(held_rows):
        # Brightness turns luma about black, contrast about the mean grey: the offset of
        # one such edit is (1 - s) * p with p between 0 and the brighter picture's mean.
        pivot = np.maximum(x.mean_luma(held_rows), y.mean_luma(held_rows))
        pivot_offset = (1.0 - scale[held_rows]) * pivot
        offset[held_rows] = np.clip(offset[held_rows], np.minimum(pivot_offset, 0.0) - OFFSET_SLACK,
                                    np.maximum(pivot_offset, 0.0) + OFFSET_SLACK)
    scale, offset = scale.astype(np.float32)[:, None], offset.astype(np.float32)[:, None]
    # Where neither is clipped, the plain difference; where one is, only how far the
    # fitted brightness falls short of its clipping level; where both are, none. (In
    # place, in the buffers of the sums: this runs for every pair.)
    difference = np.multiply(y.luma, scale, out=weighted_y)
    difference += offset
    np.subtract(x.luma, difference, out=difference)
    luma_error = difference * y.unclipped
    difference *= x.unclipped
    np.maximum(luma_error, np.negative(difference, out=difference), out=luma_error)
    chroma_difference = np.multiply(y.chroma, scale[:, None], out=weighted_chroma_y)
    np.subtract(x.chroma, chroma_difference, out=chroma_difference)
    chroma_error = np.einsum("ijk,ijk->ik", chroma_difference, chroma_difference)
    counted = np.logical_or(weight, luma_error > 0)
    chroma_error *= counted
    chroma_error *= uses_chroma[:, None]
    luma_error *= luma_error
    luma_error += chroma_error
    return luma_error, count


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
    copy cropped by a few percent still lines up; the best alignment counts. Rows at or
    below `enough` in the first alignment are not tried in further alignments (their
    value is then only an upper bound, at most `enough`)."""
    return _Pairs(colour_a, colour_b).local_error(enough)


def hue_turned_share(colour_a: np.ndarray, colour_b: np.ndarray) -> np.ndarray:
    """Between paired rows of colour signatures in colour: the share of the inner detail
    cells coloured in both (chroma at least HUE_CHROMA, each weighed by the smaller),
    whose hues lie more than HUE_TURN degrees apart (0 where no cell is coloured in both).

    Brightness, contrast and grey edits scale every cell's chroma about neutral and keep
    its hue; a white balance moves hues a little, most where colour is weak. A part of
    the picture recoloured to another hue (a product in another colour) turns its cells'
    hues while the rest stays put, which the global fit averages away: on the bench
    photos' colour variants (benchmark.py's other_hue) this share is 0.1 or more for two
    in three, and for no copy of the generated, harder, flag or emoji sets (at most 0.03)."""
    return _Pairs(colour_a, colour_b).turned_hue_share(np.arange(len(colour_a)))


def worst_share_distance(colour_a: np.ndarray, colour_b: np.ndarray, share: float = 0.1) -> np.ndarray:
    """A measure, not a check: the mean error of the worst `share` of the inner detail
    cells after the global fit, in the alignment where it is smallest. Between the local
    check (8 cells) and the global one (all of them): how large a difference spread over
    part of the picture is. benchmarks/colour_variants.py compares colour variants with
    copies by it."""
    pairs, rows = _Pairs(colour_a, colour_b), np.arange(len(colour_a))
    smallest = np.full(len(colour_a), np.inf)
    for alignment in _ALIGNMENTS:
        squared, _ = pairs._errors([alignment], rows)
        worst = max(1, round(share * squared.shape[1]))
        errors = np.sqrt(np.partition(squared, -worst, axis=1)[:, -worst:]).mean(axis=1)
        smallest = np.minimum(smallest, errors)
    return smallest


def flat_mismatch(colour_a: np.ndarray, colour_b: np.ndarray) -> np.ndarray:
    """True where one picture is nearly uniform (its hash is noise) and the two grids
    differ: such a pair is no duplicate whatever the hashes say."""
    return _Pairs(colour_a, colour_b).flat_mismatch()


def edit_distance(colour_a: np.ndarray, colour_b: np.ndarray) -> np.ndarray:
    """One-edit colour distance between paired rows of colour signatures (0 where either
    is grey): what the closest single brightness or contrast edit leaves unexplained in
    RGB, where a smooth region shows it. See _edit_errors."""
    return _Pairs(colour_a, colour_b).edit_error()


# Y, Cb and Cr about neutral -> R, G and B: the JPEG/JFIF matrix PIL converts with (it is
# linear, so a cell's mean converts exactly).
_YCBCR_TO_RGB = np.array([[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]], dtype=np.float32)


def _rgb(grid: _Grid) -> np.ndarray:
    """The grid's cells in RGB, (rows, 3, cells)."""
    return np.matmul(_YCBCR_TO_RGB, grid.planes)


def _spread(detail: _Grid) -> np.ndarray:
    """(rows, 3, inner coarse cells): how far the four inner detail cells inside each
    inner coarse cell stray from their mean, per RGB channel. Large at an edge or in
    texture, where a crop or a resize moves the cell's mean; small in a smooth region,
    where only a colour change can."""
    rows, _, cells = detail.planes.shape
    # (rows, child, channel, coarse cell): each child's channels together (see _inner_columns)
    children = np.matmul(_YCBCR_TO_RGB, detail.planes.reshape(rows, 3, 4, cells // 4).transpose(0, 2, 1, 3))
    first, second, third, fourth = children.transpose(1, 0, 2, 3)
    mean = first + second
    mean += third
    mean += fourth
    mean *= 0.25
    highest, lowest = np.maximum(first, second), np.minimum(first, second)
    for child in (third, fourth):
        np.maximum(highest, child, out=highest)
        np.minimum(lowest, child, out=lowest)
    highest -= mean
    return np.maximum(highest, np.subtract(mean, lowest, out=lowest), out=highest)


class _EditPairs:
    """What the one-edit check compares of some pairs, all (rows, 3, inner coarse cells):
    both sides in RGB, which channels are clipped (RGB_CLIPPED: a bound, the true value
    lies beyond), the spread of each cell (the larger side's) and the fit's weights,
    which favour smooth cells; and the brighter side's mean grey."""

    def __init__(self, rgb: tuple[np.ndarray, np.ndarray], spread: np.ndarray, mean_grey: np.ndarray):
        self.rgb, self.spread, self.mean_grey = rgb, spread, mean_grey
        self.low = tuple(side <= RGB_CLIPPED[0] for side in rgb)
        self.high = tuple(side >= RGB_CLIPPED[1] for side in rgb)
        free = ~(self.low[0] | self.low[1] | self.high[0] | self.high[1])
        self.fit_weight = free / (1.0 + (spread.max(axis=1, keepdims=True) / SMOOTH_SPREAD) ** 2)

    def errors(self, fits: list[tuple[int, float]], rows: np.ndarray) -> np.ndarray:
        """(fits, rows): the error _edit_errors describes, for each fit (x: side 0 or 1 of
        the pair, fitted from the other; pivot step between 0 and 1), in the order of
        `fits` when those of side 0 come first."""
        def taken(values):
            return _take(values, rows)[:, None]  # with an axis for the fits

        errors = []
        for x in (0, 1):
            steps = np.array([step for side, step in fits if side == x], dtype=np.float32)
            if len(steps):
                pivot = _take(self.mean_grey, rows)[:, None, None, None] * steps[:, None, None]
                errors.append(_edit_errors(taken(self.rgb[x]), taken(self.rgb[1 - x]), pivot, taken(self.fit_weight),
                                           taken(self.spread), taken(~(self.low[x] | self.high[1 - x])),
                                           taken(~(self.high[x] | self.low[1 - x]))))
        return np.concatenate(errors, axis=1).T


def _edit_errors(x_rgb, y_rgb, pivot, fit_weight, spread, lower_bounded, upper_bounded) -> np.ndarray:
    """(rows, fits): how far RGB cell means x are from the closest x = p + s * (y - p) per
    channel, for each pivot p (all arrays (rows, fits or 1, 3, cells)): one brightness
    (p = 0) or contrast (p = the mean grey) edit of y, or the two together (p between),
    the same for all three channels, as those edits make. A clipped channel is a bound:
    the prediction need only reach x's clip level, and a side drops out where x is
    clipped at the other end or y is clipped (its true value lies beyond, and so does the
    prediction): `lower_bounded` and `upper_bounded` say which sides count. Each cell's
    error is reduced by its spread, so misaligned detail does not count; the rest is
    averaged over the cells by the fit weights (a cell's largest: a channel clipped in a
    cell leaves the others to show the edit), less the worst cells, which hold EDIT_TRIM
    of the weight.

    The fit weights smooth cells most, and so does the average: a cell clipped to white
    or black says nothing of an edit, nor much a cell of texture, so a recoloured object
    on a white ground (an emoji in another skin tone, a shirt in another colour) is judged
    by the object, not diluted by the ground as a plain mean over all cells was. The
    trimmed quarter is for overlays: a half-opaque band or a logo changes a smooth part
    of a copy in a way no edit explains, and covers less than that."""
    shifted_x, shifted_y = x_rgb - pivot, y_rgb - pivot
    weighted_y = fit_weight * shifted_y
    scale = np.einsum("ijkl,ijkl->ij", weighted_y, shifted_x) / np.maximum(
        np.einsum("ijkl,ijkl->ij", weighted_y, shifted_y), 1e-9)
    # In place, in the buffers above: this runs for every pair in colour.
    predicted = np.multiply(shifted_y, np.clip(scale, *SCALE_RANGE)[..., None, None], out=shifted_y)
    predicted += pivot
    short = np.subtract(np.minimum(x_rgb, np.float32(RGB_CLIPPED[1])), predicted, out=shifted_x)
    short *= lower_bounded
    beyond = np.subtract(predicted, np.maximum(x_rgb, np.float32(RGB_CLIPPED[0])), out=weighted_y)
    beyond *= upper_bounded
    unexplained = np.maximum(short, beyond, out=short)
    unexplained -= spread
    np.maximum(unexplained, 0.0, out=unexplained)
    cell_errors = np.einsum("ijkl,ijkl->ijl", unexplained, unexplained)
    cell_errors /= 3.0
    np.sqrt(cell_errors, out=cell_errors)
    return _trimmed_mean(cell_errors, np.broadcast_to(fit_weight.max(axis=2), cell_errors.shape))


def _trimmed_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The weighted mean of `values` along the last axis over the smallest values that
    first hold 1 - EDIT_TRIM of the weight (the one that crosses that line included): the
    largest, holding about EDIT_TRIM of it, are left out. 0 where no cell has weight:
    nothing shows an edit there."""
    order = np.argsort(values, axis=-1)
    values, weights = np.take_along_axis(values, order, -1), np.take_along_axis(weights, order, -1)
    before = np.cumsum(weights, axis=-1) - weights
    counted = np.where(before < (1.0 - EDIT_TRIM) * (before[..., -1:] + weights[..., -1:]), weights, 0.0)
    return np.einsum("...l,...l->...", values, counted) / np.maximum(counted.sum(axis=-1), 1e-9)


def chroma(grid: np.ndarray) -> np.ndarray:
    """Mean distance of each grid's cells from neutral grey in the Cb-Cr plane."""
    return np.hypot(grid[..., 1] - 128.0, grid[..., 2] - 128.0).mean(axis=1)


_LEVELS = np.arange(256, dtype=np.float32) - np.float32(128.0)
# Each (Cb, Cr)'s distance from neutral grey, at Cb * 256 + Cr, as chroma() computes it.
_CHROMA_DISTANCE = np.hypot(_LEVELS[:, None], _LEVELS[None, :]).ravel()


def _kinds(colour: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which signature rows are in colour (chroma(coarse grid) >= GREY_CHROMA) and which
    nearly uniform (coarse luma std < FLAT_LUMA_STD), exactly as from the float grid."""
    cells = GRID_SIDES[0] ** 2
    if not len(colour):
        return np.zeros(0, dtype=bool), np.zeros(0, dtype=bool)
    # Each cell's Cb and Cr bytes (C-contiguous uint8 rows) read as one big-endian 16-bit
    # number, Cb * 256 + Cr: the index of its distance from grey, without any arithmetic.
    chroma_index = np.ndarray((len(colour), cells), dtype=">u2", buffer=colour, offset=1, strides=(colour.shape[1], 3))
    chroma_distance = np.take(_CHROMA_DISTANCE, chroma_index)
    luma = colour[:, :3 * cells:3].astype(np.float32)
    return chroma_distance.mean(axis=1) >= GREY_CHROMA, luma.std(axis=1) < FLAT_LUMA_STD


_GRID_PARTS = {"coarse": 0, "detail": 1, "centre": 2}
_DIRECTIONS = [("coarse_a", "coarse_b"), ("coarse_b", "coarse_a")]
_ALIGNMENTS = [("detail_a", "detail_b"), ("detail_b", "detail_a"), ("detail_a", "centre_b"),
               ("centre_b", "detail_a"), ("centre_a", "detail_b"), ("detail_b", "centre_a")]
_EDIT_FITS = [(x, step) for x in (0, 1) for step in np.linspace(0.0, 1.0, PIVOTS, dtype=np.float32)]


class _Pairs:
    """Paired rows of colour signatures (`colour`: the first sides, the second sides, as
    C-contiguous uint8 rows), with their colour kinds taken once for all the checks, and
    their grids as the checks first need them."""

    def __init__(self, colour_a: np.ndarray, colour_b: np.ndarray):
        colour_a, colour_b = (np.ascontiguousarray(side, dtype=np.uint8) for side in (colour_a, colour_b))
        self.colour, self.count = (colour_a, colour_b), len(colour_a)
        (in_colour_a, flat_a), (in_colour_b, flat_b) = _kinds(colour_a), _kinds(colour_b)
        self.flat = flat_a | flat_b
        self.with_chroma, self.held = in_colour_a & in_colour_b, in_colour_a ^ in_colour_b
        self.uses_chroma = self.with_chroma.astype(np.float32)
        self.grids: dict[tuple[int, int], _Grid] = {}

    def subset(self, rows: np.ndarray) -> _Pairs:
        """The pairs at `rows` (their grids taken again when needed)."""
        part = object.__new__(_Pairs)
        part.colour, part.count = tuple(side[rows] for side in self.colour), len(rows)
        for name in ("flat", "with_chroma", "held", "uses_chroma"):
            setattr(part, name, getattr(self, name)[rows])
        part.grids = {}
        return part

    def grid(self, part: int, side: int) -> _Grid:
        """Grid `part` of side `side` (0: a, 1: b) of every pair, kept for reuse."""
        if (part, side) not in self.grids:
            self.grids[part, side] = _Grid.of(self.colour[side], part)
        return self.grids[part, side]

    def grid_at(self, name: str, rows: np.ndarray) -> _Grid:
        """The grid `name` ("coarse_a", "detail_b", ...) of the pairs at `rows` (sorted):
        from the kept one if there is one or all the rows are asked for."""
        kind, letter = name.split("_")
        part, side = _GRID_PARTS[kind], "ab".index(letter)
        if len(rows) == self.count or (part, side) in self.grids:
            return self.grid(part, side).take(rows)
        return _Grid.of(self.colour[side][rows], part)

    def flat_mismatch(self) -> np.ndarray:
        rows = np.flatnonzero(self.flat)  # rare: the grids are compared only for these
        mismatch = np.zeros(self.count, dtype=bool)
        grids_a, grids_b = (grid(side[rows], 0) for side in self.colour)
        mismatch[rows] = np.abs(grids_a - grids_b).mean(axis=(1, 2)) > FLAT_MAX_DIFFERENCE
        return mismatch

    def _errors(self, alignments: list[tuple[str, str]], rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """_cell_errors of each alignment (first grid, second grid) at `rows`, one after the other."""
        firsts = _Grid.stack([self.grid_at(first, rows) for first, _ in alignments])
        seconds = _Grid.stack([self.grid_at(second, rows) for _, second in alignments])
        return _cell_errors(firsts, seconds, np.tile(_take(self.uses_chroma, rows), len(alignments)),
                            np.tile(_take(self.held, rows), len(alignments)))

    def _mean_errors(self, alignments: list[tuple[str, str]], rows: np.ndarray) -> np.ndarray:
        squared, count = self._errors(alignments, rows)
        return (_row_sums(np.sqrt(squared, out=squared)) / count).astype(np.float32).reshape(len(alignments), len(rows))

    def _worst_cells(self, enough: float, alignments: list[tuple[str, str]], rows: np.ndarray) -> np.ndarray:
        """The mean error of the LOCAL_CELLS worst cells; where even the worst cell is at
        or below `enough`, only that (the mean is no larger)."""
        squared, _ = self._errors(alignments, rows)
        worst = np.sqrt(squared.max(axis=1).astype(np.float64))
        above = np.flatnonzero(worst > enough)  # the worst cells of the squared errors are the worst cells
        worst[above] = np.sqrt(np.partition(squared[above], -LOCAL_CELLS, axis=1)[:, -LOCAL_CELLS:]).mean(axis=1)
        return worst.reshape(len(alignments), len(rows))

    def global_error(self) -> np.ndarray:
        """colour_distance: both directions (the coarse grids are small, so this costs
        less than trying the second only where the first is too large)."""
        everything = np.arange(self.count)
        return np.minimum(*(self._mean_errors([direction], everything)[0] for direction in _DIRECTIONS))

    def turned_hue_share(self, rows: np.ndarray) -> np.ndarray:
        """hue_turned_share at `rows`."""
        first, second = (self.grid_at(name, rows).chroma for name in ("detail_a", "detail_b"))
        magnitude = np.minimum(np.hypot(first[:, 0], first[:, 1]), np.hypot(second[:, 0], second[:, 1]))
        weight = np.where(magnitude >= HUE_CHROMA, magnitude, 0.0)
        # cos(angle between the two chroma vectors) below cos(HUE_TURN): turned further.
        dot = first[:, 0] * second[:, 0] + first[:, 1] * second[:, 1]
        norms = np.hypot(first[:, 0], first[:, 1]) * np.hypot(second[:, 0], second[:, 1])
        turned = dot < np.float32(np.cos(np.radians(HUE_TURN))) * norms
        return (weight * turned).sum(axis=1) / np.maximum(weight.sum(axis=1), 1e-9)

    def local_error(self, enough: float, alignments: list = _ALIGNMENTS) -> np.ndarray:
        """local_distance over `alignments` (a first part of _ALIGNMENTS)."""
        return _smallest(partial(self._worst_cells, enough), alignments, np.arange(self.count), enough)

    def edit_error(self, enough: float = 0.0, fits: list = _EDIT_FITS, rows: np.ndarray | None = None) -> np.ndarray:
        """edit_distance over `fits` (a first part of _EDIT_FITS) at `rows` (all in colour
        if None, and 0 elsewhere); rows at or below `enough` after the first fit try no
        others."""
        rows = np.flatnonzero(self.with_chroma) if rows is None else rows
        coarse = [self.grid(0, side) for side in (0, 1)]
        spread = np.maximum(*(_spread(self.grid(1, side)) for side in (0, 1)))
        mean_grey = np.maximum(*(side.mean_luma(slice(None)) for side in coarse))
        compared = _EditPairs(tuple(_take(_rgb(side), rows) for side in coarse), _take(spread, rows),
                              _take(mean_grey, rows))
        error = np.zeros(self.count, dtype=np.float32)
        error[rows] = _smallest(compared.errors, fits, np.arange(len(rows)), enough)
        return error

    def verdicts(self, settings: MatchSettings) -> np.ndarray:
        """VETOED for the pairs that flatness or (if checked) colour rule out, KEPT for the
        others, or LOCAL_OPEN and EDIT_OPEN for the pairs that the first alignment of the
        local check, or the first fit of the one-edit check, leaves open: most pairs are
        settled by them, and the few others are best tried in the rest all together
        (finish_local, finish_edit)."""
        verdicts = np.where(self.flat_mismatch(), _VETOED, _KEPT).astype(np.int8)
        if not settings.colour_check:
            return verdicts
        threshold = settings.colour_threshold
        verdicts[self.global_error() > threshold] = _VETOED
        # The finer checks cost more: they run only on the pairs still open, unless these
        # are nearly all (taking them apart would cost more than checking a few more).
        still_open = np.flatnonzero(verdicts == _KEPT)
        if not len(still_open):
            return verdicts
        dense = len(still_open) > _DENSE_SHARE * self.count
        checked, rows = (self, still_open) if dense else (self.subset(still_open), np.arange(len(still_open)))
        local_limit = settings.local_factor * threshold
        local_above = checked.local_error(local_limit, _ALIGNMENTS[:1])[rows] > local_limit
        verdicts[still_open[local_above]] = _LOCAL_OPEN
        in_colour = np.flatnonzero(~local_above & checked.with_chroma[rows])
        edit_above, hue_turned = checked._edit_then_hue(settings, _EDIT_FITS[:1], rows[in_colour])
        verdicts[still_open[in_colour[edit_above]]] = _EDIT_OPEN
        verdicts[still_open[in_colour[hue_turned]]] = _VETOED
        return verdicts

    def _edit_then_hue(self, settings: MatchSettings, fits: list, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For the pairs at `rows` (in colour): whether they are above the one-edit limit
        in `fits`, and whether those that are not fail the hue check, which comes last
        (with the detail grids the local check took)."""
        edit_above = self._edit_above(settings, fits, rows)
        hue_turned = np.zeros(len(rows), dtype=bool)
        kept = np.flatnonzero(~edit_above)
        if len(kept):
            hue_turned[kept] = self.turned_hue_share(rows[kept]) > HUE_SHARE
        return edit_above, hue_turned

    def finish_local(self, settings: MatchSettings) -> np.ndarray:
        """The verdicts of pairs left LOCAL_OPEN: the other alignments, then the one-edit
        and hue checks."""
        local_limit = settings.local_factor * settings.colour_threshold
        ruled_out = self.local_error(local_limit, _ALIGNMENTS[1:]) > local_limit
        in_colour = np.flatnonzero(~ruled_out & self.with_chroma)
        edit_above, hue_turned = self._edit_then_hue(settings, _EDIT_FITS, in_colour)
        ruled_out[in_colour[edit_above | hue_turned]] = True
        return np.where(ruled_out, _VETOED, _KEPT).astype(np.int8)

    def finish_edit(self, settings: MatchSettings) -> np.ndarray:
        """The verdicts of pairs left EDIT_OPEN (all in colour): the other fits of the
        one-edit check, then the hue check."""
        edit_above, hue_turned = self._edit_then_hue(settings, _EDIT_FITS[1:], np.arange(self.count))
        return np.where(edit_above | hue_turned, _VETOED, _KEPT).astype(np.int8)

    def _edit_above(self, settings: MatchSettings, fits: list, rows: np.ndarray) -> np.ndarray:
        """Whether the pairs at `rows` are above the one-edit limit in each of `fits`."""
        if not len(rows):
            return np.zeros(0, dtype=bool)
        limit = EDIT_FACTOR * settings.colour_threshold
        return self.edit_error(limit, fits, rows)[rows] > limit


@functools.cache
def _checks_code() -> bytes | None:
    """The source of the modules that decide which pairs are duplicates (read, not
    imported: the engine loads numba): a change to any of them makes stored pairs stale.
    None where the sources cannot be read (an install without them): then no pairs are
    kept, since nothing would tell stale ones."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    try:
        for name in _CHECKS_MODULES:
            digest.update((package / name).read_bytes())
    except OSError:
        return None
    return digest.digest()


_CHECKS_MODULES = ("plan/similarity.py", "plan/coarse_kernel.py", "search/index.py", "search/engine.py",
                   "search/block_trees.py", "fingerprint/signature.py", "fingerprint/views.py")
_VETOED, _KEPT, _LOCAL_OPEN, _EDIT_OPEN = 1, 0, -1, -2
_DENSE_SHARE = 0.95


class Matcher:
    """Distances between the files of one HashedFiles under one MatchSettings."""

    def __init__(self, hashed, settings: MatchSettings, index_settings: IndexSettings = IndexSettings(),
                 pair_cache=None):
        self.hashed = hashed
        self.settings = settings
        self.index_settings = index_settings
        # Where pairs() are kept between runs (cache.PairCache), or None.
        self.pair_cache = pair_cache
        self.rejected = hashed.settings.n_bits + 1  # the distance of a vetoed pair
        self._pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        # With views or turns: for each of _pairs, the pair of views it was accepted in
        # (how, and the file whose query view matched), and per file the pairs it is in
        # (_pair_index): walk_views answers from them.
        self._pair_views: np.ndarray | None = None
        self._pair_index: tuple[np.ndarray, np.ndarray] | None = None
        self._walk_source: Matcher | None = None  # the matcher whose pairs walk_views reads
        # The verdicts pairs() reached on unturned pairs, by key low * n + high (sorted):
        # the planner asks for them again, pair by pair. The checks are symmetric, so the
        # order of the two files does not matter.
        self._judged_keys = np.zeros(0, dtype=np.int64)
        self._judged_vetoed = np.zeros(0, dtype=bool)
        self._judged_rows: np.ndarray | None = None  # row -> row of the matcher that judged
        self._judged_count = len(hashed.paths)  # the rows of the matcher that judged
        # True when every unturned pair within max_bits was judged and only the accepted
        # ones are kept: any other such pair of two distinct rows was vetoed. (A large
        # collection has millions of candidate pairs and only thousands of duplicates.)
        self._judged_all = False
        # With _judged_all and _judged_rows: per row of the judging matcher, the verdict on
        # two of this matcher's files that it stands for (identical in all the checks
        # read), 1/0, or -1 where it stands for one file; all worked out at once when first
        # needed (a library with 1,000 such copies asked one pair at a time otherwise).
        self._twin_vetoed: np.ndarray | None = None
        self._file_facts: tuple[np.ndarray, np.ndarray] | None = None  # _file_kinds, once

    def reuse_verdicts(self, other: Matcher, rows: np.ndarray):
        """Take over the verdicts `other` reached, its row rows[i] standing for row i here
        (a matcher over the distinct files of this one's, which match alike)."""
        self._judged_keys, self._judged_vetoed = other._judged_keys, other._judged_vetoed
        self._judged_rows, self._judged_count = rows, len(other.hashed.paths)
        self._judged_all = other._judged_all
        self._twin_vetoed = None
        self._walk_source = other if other._pair_views is not None else None

    # Views of a pair. Each file is looked up by its query views: the whole picture (code
    # 0), its 7 other orientations (--isometric, codes 1-7) and views.VIEW_NAMES (--views,
    # the codes after those); and it is found by its index views: the whole picture and,
    # with --views, the trimmed one. A candidate pair is (first, its query view, second,
    # its index view), `how` = query view * index views + index view: 0 is the plain pair.

    @property
    def _turns(self) -> int:
        return 1 if self.hashed.variants is None else 1 + self.hashed.variants.shape[1]

    @property
    def _index_views(self) -> int:
        return 1 if self.hashed.views is None else 2

    @property
    def _query_view_count(self) -> int:
        """Query views of a file: the whole picture, its turns and its views."""
        return self._turns + (0 if self.hashed.views is None else self.hashed.views.shape[1])

    @property
    def view_pairs(self) -> int:
        """How many pairs of views (query view, index view) one side of a pair of files
        is compared in."""
        return self._query_view_count * self._index_views

    def _query_hashes(self, rows) -> np.ndarray:
        """(len(rows), query views, bytes): the hash of each row in each query view."""
        hashed = self.hashed
        parts = [hashed.packed[rows][:, None, :]]
        parts += [extra[rows] for extra in (hashed.variants, hashed.views) if extra is not None]
        return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]

    def _index_hashes(self, rows) -> np.ndarray:
        """(len(rows), index views, bytes): the whole picture's hash, then the trimmed one's."""
        whole = self.hashed.packed[rows][:, None, :]
        return whole if self.hashed.views is None else np.concatenate([whole, self.hashed.views[rows][:, :1]], axis=1)

    def _colours(self, rows: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """The colour signature of each of `rows` in its query view `codes`: the grids turned
        for an orientation, the view's own signature for a view."""
        turns = self._turns
        colour = turn_grids(self.hashed.colour[rows], np.where(codes < turns, codes, 0))
        in_view = np.flatnonzero(codes >= turns)
        if len(in_view):
            colour[in_view] = self.hashed.view_colour[rows[in_view], codes[in_view] - turns]
        return colour

    def _sides(self, how: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The query view codes of the first and the second file of pairs matched `how`."""
        query, index = np.divmod(how, self._index_views)
        return query, index * self._turns  # the trimmed index view is the first view

    def view_names(self, how: int) -> tuple[str, str]:
        """The names of the views of the first and the second file of a pair matched `how`."""
        from dedup_cli.fingerprint.hashing import ORIENTATION_NAMES
        from dedup_cli.fingerprint.views import VIEW_NAMES

        names = ("whole", *ORIENTATION_NAMES[:self._turns - 1], *VIEW_NAMES)
        first, second = self._sides(np.array([how]))
        return names[int(first[0])], names[int(second[0])]

    def _candidates(self, firsts: np.ndarray, seconds: np.ndarray) -> tuple[np.ndarray, ...]:
        """Every pair of views of firsts[k] and seconds[k] within max_bits (view_max_bits
        for all but the plain pair), as (k, bits,
        first, second, how), sorted by k, then fewest bits, the plain pair first among
        equals: `first` is the file whose query view matched (firsts[k]'s query views
        against seconds[k]'s index views come first, then the other way round)."""
        forward = hamming(self._query_hashes(firsts)[:, :, None, :], self._index_hashes(seconds)[:, None, :, :])
        views = forward.shape[1] * forward.shape[2]
        bits = np.full((len(firsts), 2, views), self.settings.max_bits + 1, dtype=np.int64)
        bits[:, 0] = forward.reshape(len(firsts), views)
        if views > 1:  # plain pictures have the plain pair only, taken once from the first side
            backward = hamming(self._query_hashes(seconds)[:, :, None, :], self._index_hashes(firsts)[:, None, :, :])
            bits[:, 1, 1:] = backward.reshape(len(firsts), views)[:, 1:]
        limits = np.full(views, self.settings.view_max_bits)
        limits[0] = self.settings.max_bits
        position, backwards, how = np.nonzero(bits <= limits)
        bits = bits[position, backwards, how]
        first = np.where(backwards == 1, seconds[position], firsts[position])
        second = np.where(backwards == 1, firsts[position], seconds[position])
        order = np.lexsort((backwards, how, bits, position))
        return position[order], bits[order], first[order], second[order], how[order]

    def _accepted_pairs(self, firsts: np.ndarray, seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each pair (firsts[k], seconds[k]), the pair of views with the fewest bits
        that the colour checks accept, as (bits, first, how) (see views_label); bits
        n_bits + 1 where none is."""
        position, bits, first, second, how = self._candidates(firsts, seconds)
        found_bits = np.full(len(firsts), self.rejected)
        found_first, found_how = np.zeros(len(firsts), dtype=np.int64), np.zeros(len(firsts), dtype=np.int64)
        starts, chosen = self._first_accepted(position, first, second, how, lookup=True)
        accepted = chosen >= 0
        at, pair = position[starts[accepted]], chosen[accepted]
        found_bits[at], found_first[at], found_how[at] = bits[pair], first[pair], how[pair]
        return found_bits, found_first, found_how

    def accepted_views(self, rows, row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """_accepted_pairs of each of `rows` with `row`."""
        rows = np.asarray(rows, dtype=np.int64)
        return self._accepted_pairs(rows, np.full(len(rows), row, dtype=np.int64))

    def _first_accepted(self, group, first, second, how, lookup=False, record: list | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
        """Candidate pairs of views sorted by `group` (one group per pair of files), best
        first: per group, its first candidate (`starts`) and the first one the colour
        checks accept (`chosen`, -1 where none is). Checked in rounds, so a group's later
        candidates are looked at only when all before them were vetoed. `lookup`: take
        the verdicts pairs() reached on plain pairs where there are any. `record`: a list
        that gets (first, second, how, vetoed) of each round checked."""
        starts = np.flatnonzero(_run_starts(group)) if len(group) else np.zeros(0, dtype=np.int64)
        ends = np.append(starts[1:], len(group)).astype(np.int64)
        chosen, position = np.full(len(starts), -1, dtype=np.int64), starts.astype(np.int64)
        still_open = np.arange(len(starts))
        width = 1
        while len(still_open):
            # A round looks at the next `width` candidates of each open group; the width
            # grows, so a pair with dozens of vetoed views takes a few rounds, not dozens
            # (each round's checks cost a fixed overhead on top of their pairs).
            begin = position[still_open]
            stop = np.minimum(begin + width, ends[still_open])
            if width == 1:  # most pairs are settled by their first candidate: the cheap round
                owner, at = np.arange(len(still_open)), begin
            else:
                counts = stop - begin
                owner = np.repeat(np.arange(len(still_open)), counts)
                at = begin[owner] + np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
            ruled_out = self._remembered(first[at], second[at], how[at]) if lookup else np.full(len(at), -1)
            unknown = np.flatnonzero(ruled_out < 0)
            ruled_out[unknown] = self._vetoed(first[at][unknown], second[at][unknown], how[at][unknown])
            ruled_out = ruled_out == 1
            if record is not None:
                record.append((first[at], second[at], how[at], ruled_out))
            accepted = np.flatnonzero(~ruled_out)
            if width == 1:
                settled, earliest = accepted, np.arange(len(accepted))
            else:
                settled, earliest = np.unique(owner[accepted], return_index=True)
            chosen[still_open[settled]] = at[accepted[earliest]]
            position[still_open] = stop
            unsettled = np.ones(len(still_open), dtype=bool)
            unsettled[settled] = False
            still_open = still_open[unsettled & (stop < ends[still_open])]
            width *= 4
        return starts, chosen

    def distances(self, rows, row: int) -> np.ndarray:
        """Bits from each of `rows` to `row` in their nearest pair of views that the colour
        checks accept; n_bits + 1 where no pair within max_bits is accepted."""
        return self.accepted_views(rows, row)[0]

    # Whether the planner may walk a group from walk_views: a subclass that
    # answers accepted_views its own way (verify.VerifyingMatcher) says no.
    walks_in_batches = True

    def walk_views(self, rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """accepted_views between every two of `rows` at once, for a walk through them in
        this order: entry [i, j] for i < j is what accepted_views([rows[i]], rows[j])
        gives (bits, first, how), the same candidate pairs of views tried in the same
        order; [j, i] holds the same (the matrices serve either side). One batch instead
        of a call per file of a group: the calls' own overhead was most of a warm run over
        a small folder."""
        rows = np.asarray(rows, dtype=np.int64)
        if self._walk_source is not None:
            return self._walk_found(rows)
        earlier, later = np.triu_indices(len(rows), k=1)
        found = self._accepted_pairs(rows[earlier], rows[later])
        matrices = []
        for values, fill in zip(found, (self.rejected, 0, 0)):  # noqa: B905
            matrix = np.full((len(rows), len(rows)), fill, dtype=np.int32)
            matrix[earlier, later] = values
            matrix[later, earlier] = values
            matrices.append(matrix)
        return tuple(matrices)

    def _walk_found(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """walk_views from the pairs pairs() accepted and the views it accepted them in
        (this matcher's, or those of the matcher over the distinct files whose verdicts
        it took over): a pair of files has an accepted pair of views exactly when pairs()
        holds it, with the fewest bits. Only which of two pairs of views at equal bits is
        named can differ from trying them again."""
        source = self._walk_source
        mapped = rows if source is self else self._judged_rows[rows]
        distinct, inverse = np.unique(mapped, return_inverse=True)
        inverse = inverse.ravel()
        found = source._found_matrices(distinct)
        bits, first, how = (matrix[np.ix_(inverse, inverse)] for matrix in found)
        first = np.where(first == mapped[:, None], rows[:, None], rows[None, :]).astype(np.int32)
        if len(distinct) < len(rows):  # files identical in all the checks read: one row there
            twins = inverse[:, None] == inverse[None, :]
            np.fill_diagonal(twins, False)
            accepted = twins & (self._twins()[mapped] == 0)[:, None]
            bits[twins], how[twins] = self.rejected, 0
            bits[accepted] = 0
            first[twins] = np.broadcast_to(rows[:, None], first.shape)[twins]
        return bits, first, how

    def _found_matrices(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(bits, first, how) between every two of `rows` (distinct) from pairs() and the
        views of each pair (_pair_views); the rejected distance where pairs() has none."""
        first_rows, second_rows, bits = self._pairs
        if self._pair_index is None:  # per file, the pairs it is in
            ends = np.concatenate([first_rows, second_rows])
            order = np.argsort(ends, kind="stable")
            starts = np.searchsorted(ends[order], np.arange(len(self.hashed.paths) + 1))
            self._pair_index = (order % max(len(first_rows), 1), starts)
        order, starts = self._pair_index
        mine = np.unique(np.concatenate([order[starts[row]:starts[row + 1]] for row in rows.tolist()] or [order[:0]]))
        sorter = np.argsort(rows)
        ends = []
        for side in (first_rows[mine], second_rows[mine]):
            at = sorter[np.minimum(np.searchsorted(rows, side, sorter=sorter), max(len(rows) - 1, 0))]
            ends.append((at, rows[at] == side))
        (low, low_in), (high, high_in) = ends
        inside = low_in & high_in  # pairs with both files among `rows`
        low, high, mine = low[inside], high[inside], mine[inside]
        found_bits = np.full((len(rows), len(rows)), self.rejected, dtype=np.int32)
        found_first, found_how = np.zeros_like(found_bits), np.zeros_like(found_bits)
        for matrix, values in ((found_bits, bits[mine]), (found_how, self._pair_views[0, mine]),
                               (found_first, self._pair_views[1, mine])):
            matrix[low, high] = values
            matrix[high, low] = values
        return found_bits, found_first, found_how

    def matched_views(self, kept: int, removed: int) -> str:
        """Which views of a removed file and its kept file matched (views_label)."""
        _, first, how = self.accepted_views([kept], removed)
        return self.views_label(int(how[0]), int(first[0]) == removed)

    @property
    def whole_pictures_only(self) -> bool:
        """True when the files are matched as they are only (no views, no orientations)."""
        return self.hashed.variants is None and self.hashed.views is None

    def views_label(self, how: int, removed_first: bool) -> str:
        """For the report: 'whole' for the plain pictures, else '<removed file's view> ~
        <kept file's view>'; `removed_first` when the removed file's query view matched."""
        if how == 0:
            return "whole"
        names = self.view_names(how)
        removed_view, kept_view = names if removed_first else names[::-1]
        return f"{removed_view} ~ {kept_view}"

    def _key(self, first: np.ndarray, second: np.ndarray, how: np.ndarray | None = None) -> np.ndarray:
        """The key of each pair of files (first[i], second[i]) matched `how` (default:
        plain pairs) among the judged verdicts: the plain pair's key is the same both
        ways round (the checks are symmetric); another pair of views is its first file's
        query view against the second's index view, so the order counts."""
        if self._judged_rows is not None:
            first, second = self._judged_rows[first], self._judged_rows[second]
        if how is None:
            how = np.zeros(len(first), dtype=np.int64)
        plain = how == 0
        low = np.where(plain, np.minimum(first, second), first)
        high = np.where(plain, np.maximum(first, second), second)
        return (low * self._judged_count + high) * self.view_pairs + how


    def _remembered(self, first: np.ndarray, second: np.ndarray, how: np.ndarray) -> np.ndarray:
        """1 (vetoed), 0 (not) or -1 (not judged yet) for each pair (first[i], second[i])
        matched `how`."""
        verdicts = np.full(len(first), -1, dtype=np.int8)
        if not len(self._judged_keys) and not self._judged_all:
            return verdicts
        keys = self._key(first, second, how)
        at = np.minimum(np.searchsorted(self._judged_keys, keys), max(len(self._judged_keys) - 1, 0))
        found = (self._judged_keys[at] == keys) if len(self._judged_keys) else np.zeros(len(first), dtype=bool)
        verdicts[found] = self._judged_vetoed[at[found]]
        if self._judged_all:
            # Not accepted, so vetoed, unless the two are one row of the judging matcher
            # (identical files, never judged against each other).
            mapped = (first, second) if self._judged_rows is None else (self._judged_rows[first],
                                                                        self._judged_rows[second])
            verdicts[~found & (how == 0) & (mapped[0] != mapped[1])] = 1
            twins = np.flatnonzero((how == 0) & (mapped[0] == mapped[1]) & (first != second))
            if len(twins) and self._judged_rows is not None:
                verdicts[twins] = self._twins()[mapped[0][twins]]
        return verdicts

    def _twins(self) -> np.ndarray:
        """_twin_vetoed, worked out on first use: each judging row that stands for two
        files or more, checked against itself (the files it stands for are identical in
        everything the checks read, so this is their verdict)."""
        if self._twin_vetoed is None:
            judged_rows, self._twin_vetoed = self._judged_rows, np.full(self._judged_count, -1, dtype=np.int8)
            order = np.argsort(judged_rows, kind="stable")
            repeated = np.flatnonzero(judged_rows[order][1:] == judged_rows[order][:-1])
            rows = np.sort(order[repeated])  # a file of each judging row that stands for more (distinct)
            rows = rows[np.unique(judged_rows[rows], return_index=True)[1]]
            if len(rows):
                self._twin_vetoed[judged_rows[rows]] = self._vetoed(rows, rows, np.zeros(len(rows), dtype=np.int64))
        return self._twin_vetoed

    def _vetoed(self, first: np.ndarray, second: np.ndarray, how: np.ndarray) -> np.ndarray:
        """True for pairs that colour or flatness rule out, each side compared in the view
        its hash matched in (`how`). Many plain pairs first go through the compiled global
        check, which rules out most candidate pairs of a large collection in place; the
        rest are gathered for all the checks."""
        ruled_out = np.zeros(len(first), dtype=bool)
        if not len(first):  # the planner asks often with every pair remembered
            return ruled_out
        checked = np.arange(len(first))
        compiled = len(first) >= _COMPILED_FROM or (len(first) >= _VETO_CHUNK and _COMPILED in sys.modules)
        if self.settings.colour_check and compiled:
            from dedup_cli.plan import coarse_kernel

            plain = np.flatnonzero(how == 0)
            in_colour, mean_luma = self._file_kinds()
            errors = coarse_kernel.global_errors(self.hashed.colour, first[plain], second[plain], in_colour,
                                                 mean_luma, limit=self.settings.colour_threshold)
            ruled_out[plain[errors > self.settings.colour_threshold]] = True
            checked = np.flatnonzero(~ruled_out)
        first_view, second_view = self._sides(how)
        for start in range(0, len(checked), _GATHER_CHUNK):  # gathered a chunk at a time
            part = checked[start:start + _GATHER_CHUNK]
            ruled_out[part] = vetoed(self._colours(first[part], first_view[part]),
                                     self._colours(second[part], second_view[part]), self.settings)
        return ruled_out

    def _file_kinds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per file: in colour or not, and the mean luma of its coarse grid (float32)."""
        if self._file_facts is None:
            colour = self.hashed.colour
            in_colour = np.concatenate([_kinds(colour[start:start + _GATHER_CHUNK])[0]
                                        for start in range(0, len(colour), _GATHER_CHUNK)] or [np.zeros(0, bool)])
            luma = colour[:, _LUMA_COLUMNS[0]]
            self._file_facts = in_colour, luma.sum(axis=1, dtype=np.int32).astype(np.float32) / luma.shape[1]
        return self._file_facts

    def _plausible(self, stored: dict) -> bool:
        """Whether stored pairs can be this matcher's: rows in range, each pair once in
        order, bits within the threshold; remembered verdicts sorted, in range, 0 or 1,
        and there exactly when the files have views or turns."""
        pairs, judged = stored.get("pairs"), stored.get("judged")
        count = len(self.hashed.paths)
        if pairs is None or pairs.ndim != 2 or pairs.shape[0] != 3 or pairs.dtype.kind != "i":
            return False
        if (judged is None) != self.whole_pictures_only:
            return False
        first, second, bits = pairs
        if not ((first >= 0) & (first < second) & (second < count) & (bits >= 0)
                & (bits <= self.settings.max_bits)).all():
            return False
        if judged is None:
            return True
        if judged.ndim != 2 or judged.shape[0] != 2 or judged.dtype.kind != "i":
            return False
        views = stored.get("views")
        if views is None or views.ndim != 2 or views.shape != (2, len(first)) or views.dtype.kind != "i":
            return False
        how, query_side = views
        if not ((how >= 0) & (how < self.view_pairs) & ((query_side == first) | (query_side == second))).all():
            return False
        keys, vetoed = judged
        return bool(((keys >= 0) & (keys < count * count * self.view_pairs)).all() and np.isin(vetoed, (0, 1)).all()
                    and (np.diff(keys) > 0).all())

    def _pairs_digest(self) -> str | None:
        """What the pairs follow from: the code of the checks and the search, the
        settings, and every file's hashes and colour signatures (with its views and
        turns) in row order."""
        code = _checks_code()
        if code is None:
            return None
        hashed = self.hashed
        arrays = [hashed.packed, hashed.colour, hashed.variants, hashed.views, hashed.view_colour]
        digest = hashlib.sha256(code)
        digest.update(repr((self.settings, self.index_settings, hashed.settings,
                            [None if values is None else values.shape for values in arrays])).encode())
        for values in arrays:
            if values is not None:
                digest.update(np.ascontiguousarray(values).data)
        return digest.hexdigest()

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
        digest = self._pairs_digest() if self.pair_cache is not None else None
        stored = self.pair_cache.load(digest) if digest else None
        if stored is not None and not self._plausible(stored):
            stored = None  # damaged or not ours: found again below
        if stored is None:
            stored = self._search_pairs()
            if digest:
                self.pair_cache.save(digest, stored)
        first, second, bits = stored["pairs"]
        if "judged" in stored:  # the verdicts _search_pairs remembered
            self._judged_keys, self._judged_vetoed = stored["judged"][0], stored["judged"][1].astype(bool)
            self._judged_rows = None
            self._pair_views, self._pair_index = stored["views"], None
            self._walk_source = self
        else:
            # Plain pictures: every pair within max_bits was judged, and these are the
            # ones accepted.
            self._judged_keys = np.sort(self._key(first, second))
            self._judged_vetoed = np.zeros(len(self._judged_keys), dtype=bool)
            self._judged_all = True
        return first, second, bits

    def _search_pairs(self) -> dict[str, np.ndarray]:
        """The pairs (3 rows: first < second, bits), searched and checked; with views or
        turns also the verdicts remembered on the way ("judged": keys, vetoed)."""
        hashed, max_bits = self.hashed, self.settings.max_bits
        n_bits = hashed.settings.n_bits
        if hashed.variants is None and hashed.views is None:
            found = pairs_within(hashed.packed, n_bits, max_bits, self.index_settings,
                                 accept=lambda first, second: ~self._vetoed(
                                     first, second, np.zeros(len(first), dtype=np.int64)))
            return {"pairs": np.stack(found).astype(np.int64)}
        first, second, bits, how = self._view_pairs(self, prefilter=self._prefilter_views())
        # Self-pairs out, and the plain pair once (it is found from both sides).
        keep = np.flatnonzero((first != second) & ((how != 0) | (first < second)))
        first, second, bits, how = first[keep], second[keep], bits[keep], how[keep]
        low, high = np.minimum(first, second), np.maximum(first, second)
        order = np.lexsort((how, bits, high, low))
        rounds: list = []
        starts, chosen = self._first_accepted(low[order] * len(hashed.paths) + high[order], first[order],
                                              second[order], how[order], record=rounds)
        # The verdicts reached, by key, sorted: asked again when a pair of files is looked
        # up outside the walk (Matcher.accepted_views).
        judged = np.zeros((2, 0), dtype=np.int64)
        if rounds:
            checked_first, checked_second, checked_how, vetoed = (np.concatenate(column) for column in zip(*rounds))
            keys = self._key(checked_first, checked_second, checked_how)
            by_key = np.argsort(keys)
            judged = np.stack([keys[by_key], vetoed[by_key]]).astype(np.int64)
        pair = order[chosen[chosen >= 0]]
        return {"pairs": np.stack([low[pair], high[pair], bits[pair]]).astype(np.int64),
                "judged": judged, "views": np.stack([how[pair], first[pair]]).astype(np.int64)}

    def _view_pairs(self, index: Matcher, prefilter: bool = False
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(first, second, bits, how) for every query view of a file here (`first`) within
        max_bits of an index view of a file of `index` (`second`, its row there): one
        search of all the query views at once. `index` hashes alike (it may be self).
        `prefilter` (index must be self): candidates that the global colour check rules
        out are dropped a chunk at a time as the search finds them, by the compiled
        check, so a large collection never holds them all (see _prefilter_views)."""
        queries = self._query_hashes(np.arange(len(self.hashed.paths)))
        entries, entry_view = index._index_entries()
        accept = self._globally_possible(entries, entry_view) if prefilter else None
        owner, entry, bits = cross_pairs(index._index_hashes(entries)[np.arange(len(entries)), entry_view],
                                         self.hashed.settings.n_bits, queries.reshape(-1, queries.shape[-1]),
                                         self.settings.max_bits, self.index_settings, accept=accept)
        first, query_view = np.divmod(owner, queries.shape[1])
        how = query_view * self._index_views + entry_view[entry]
        close = (how == 0) | (bits <= self.settings.view_max_bits)
        return first[close], entries[entry][close], bits[close], how[close]

    def _prefilter_views(self) -> bool:
        """Whether the search of views is large enough to drop its colour-vetoed candidates
        as it goes: when it takes the compiled engine anyway (numba is then loaded) and
        the colours are checked. 100,000 files in 4 views each gave tens of millions of
        candidates, held at once before the checks (3.3 GB)."""
        from dedup_cli.search import index as search_index

        if not self.settings.colour_check or self.index_settings.cluster is not None:
            return False
        queries = len(self.hashed.paths) * self._query_view_count
        return queries * len(self._index_entries()[0]) > search_index.SMALL_COMPARISONS

    def _globally_possible(self, entries: np.ndarray, entry_view: np.ndarray):
        """accept(query rows, entry rows) for cross_pairs: False where the global colour
        check rules the pair of views out (coarse_kernel, on a table of every file's
        coarse grid in every query view, made once: 192 bytes a file and view)."""
        from dedup_cli.plan import coarse_kernel

        coarse = 3 * GRID_SIDES[0] ** 2
        count, views = len(self.hashed.paths), self._query_view_count
        table = np.empty((count, views, coarse), dtype=np.uint8)
        for start in range(0, count, _GATHER_CHUNK):
            rows = np.arange(start, min(start + _GATHER_CHUNK, count))
            for code in range(views):
                table[rows, code] = self._colours(rows, np.full(len(rows), code))[:, :coarse]
        table = table.reshape(count * views, coarse)
        in_colour = _kinds(table)[0]
        luma = table[:, _LUMA_COLUMNS[0]]
        mean_luma = luma.sum(axis=1, dtype=np.int32).astype(np.float32) / luma.shape[1]
        entry_rows = entries * views + entry_view * self._turns  # the trimmed view is the first view
        limit = self.settings.colour_threshold

        def accept(query_rows: np.ndarray, stored_rows: np.ndarray) -> np.ndarray:
            errors = coarse_kernel.global_errors(table, query_rows, entry_rows[stored_rows], in_colour, mean_luma,
                                                 limit=limit)
            return errors <= limit

        return accept

    def _index_entries(self) -> tuple[np.ndarray, np.ndarray]:
        """The rows of the index (file, index view): every whole picture, and the trimmed
        picture of the files that had a border to trim."""
        hashed = self.hashed
        rows = np.arange(len(hashed.paths))
        if hashed.views is None:
            return rows, np.zeros(len(rows), dtype=np.int64)
        trimmed = np.flatnonzero((hashed.views[:, 0] != hashed.packed).any(axis=1)
                                 | (hashed.view_colour[:, 0] != hashed.colour).any(axis=1))
        return np.concatenate([rows, trimmed]), np.repeat([0, 1], [len(rows), len(trimmed)])

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
        close = (orientation == 0) | (bits <= self.settings.view_max_bits)
        queries, rows, bits, orientation = _best_per_pair(queries[close], rows[close], bits[close], orientation[close])
        ruled_out = vetoed(turn_grids(colours[queries], orientation), hashed.colour[rows], self.settings)
        queries, rows, bits = queries[~ruled_out], rows[~ruled_out], bits[~ruled_out]
        order = np.lexsort((rows, bits, queries))
        return queries[order], rows[order], bits[order]

    def matches_views(self, queries) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        """(query, row, bits, view) for every row that is a duplicate of one of `queries`
        (a HashedFiles of outside files, hashed alike, with views or orientations) by the
        rule of pairs(): a query view of either file within max_bits of an index view of
        the other, and the nearest such pair of views that the colour checks accept.
        Each pair once, sorted by query, bits, row; `view` is views_label's, the row's
        file in the place of the removed one ('trimmed ~ whole': a padded copy of the
        query). The pairs are judged by a Matcher over the queries and only the rows
        that have a candidate, so the library's signatures are not copied."""
        from dedup_cli.fingerprint.hashing import stack_hashed

        outside = Matcher(queries, self.settings, self.index_settings)
        query_first = outside._view_pairs(self)
        row_first = self._view_pairs(outside)
        plain_once = row_first[3] != 0  # the plain pair is found from both sides
        query = np.concatenate([query_first[0], row_first[1][plain_once]])
        row = np.concatenate([query_first[1], row_first[0][plain_once]])
        bits = np.concatenate([query_first[2], row_first[2][plain_once]])
        how = np.concatenate([query_first[3], row_first[3][plain_once]])
        by_row = np.repeat([False, True], [len(query_first[0]), int(plain_once.sum())])
        involved, at = np.unique(row, return_inverse=True)
        judge = Matcher(stack_hashed([queries, self.hashed.subset(involved)]), self.settings, self.index_settings)
        at = at.reshape(-1) + len(queries.paths)  # the rows' places in `judge`, after the queries
        order = np.lexsort((by_row, how, bits, at, query))
        first, second = np.where(by_row, at, query), np.where(by_row, query, at)
        _, chosen = judge._first_accepted(query[order] * len(judge.hashed.paths) + at[order], first[order],
                                          second[order], how[order])
        pair = order[chosen[chosen >= 0]]
        pair = pair[np.lexsort((row[pair], bits[pair], query[pair]))]
        views = [self.views_label(int(code), bool(flag)) for code, flag in zip(how[pair], by_row[pair])]  # noqa: B905
        return query[pair], row[pair], bits[pair], views


def vetoed(colour_a: np.ndarray, colour_b: np.ndarray, settings: MatchSettings) -> np.ndarray:
    """True for paired colour signatures that flatness or (if checked) colour rule out.
    Works through the pairs in chunks, so memory stays flat however many there are: first
    every pair in the checks' first alignment and fit (this settles nearly all), then
    the pairs these leave open in the others."""
    verdicts = np.empty(len(colour_a), dtype=np.int8)
    for start in range(0, len(colour_a), _VETO_CHUNK):
        part = slice(start, start + _VETO_CHUNK)
        verdicts[part] = _Pairs(colour_a[part], colour_b[part]).verdicts(settings)
    for still_open, finish in ((_LOCAL_OPEN, _Pairs.finish_local), (_EDIT_OPEN, _Pairs.finish_edit)):
        open_rows = np.flatnonzero(verdicts == still_open)
        for start in range(0, len(open_rows), _VETO_CHUNK):
            rows = open_rows[start:start + _VETO_CHUNK]
            verdicts[rows] = finish(_Pairs(colour_a[rows], colour_b[rows]), settings)
    return verdicts == _VETOED


_VETO_CHUNK = 256  # pairs checked at once: their float grids stay within the caches
_GATHER_CHUNK = 16 * _VETO_CHUNK  # pairs whose signatures Matcher gathers at once for vetoed()
# Candidate pairs from which the compiled global check pays for loading numba (about 0.3 s;
# numpy checks some 200,000 pairs a second).
_COMPILED_FROM = 100_000
_COMPILED = "dedup_cli.plan.coarse_kernel"  # once loaded, it serves every chunk worth a call


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
