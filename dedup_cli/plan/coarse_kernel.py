"""The global colour check (similarity.colour_distance) compiled, for collections whose
hash search yields millions of candidate pairs.

Most candidate pairs of a large collection are different pictures whose hashes happen to
agree, and the global check on the coarse grids rules out nearly all of them. In numpy
that check costs about 5 us a pair: each pair's 1,728 signature bytes are gathered, its
grids converted to floats and its colour kinds worked out again. Here each pair is read
in place from the collection's signature rows, the kinds come once per file, and one
pass over the 36 inner cells gathers the sums both directions of the fit share (the
products x*y are symmetric), so a pair costs well under a microsecond on each core.

It computes what similarity._cell_errors does, in the same float32 and float64 steps, on
whole numbers where the numpy code's sums are exact; only the last sum of the cells'
errors is taken in float64 here (numpy's einsum sums float32 in an order of its own), so
a verdict can differ only for an error within about 1e-6 of the threshold.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

from dedup_cli.cpus import available_cpus
from dedup_cli.fingerprint.signature import GRID_SIDES

_SIDE = GRID_SIDES[0]
_RING = _SIDE // 8
# Byte offsets of the inner coarse cells (all but the outer ring), row-major, as
# similarity._inner_columns(0) orders them.
_INNER_OFFSETS = np.array([3 * (row * _SIDE + column) for row in range(_RING, _SIDE - _RING)
                           for column in range(_RING, _SIDE - _RING)], dtype=np.int64)
_MIN_PAIRS_PER_THREAD = 50_000


@njit(cache=True, nogil=True)
def _direction(colour, x_row, y_row, offsets, uses_chroma, held, x_mean, y_mean,
               total, sum_x, sum_y, products, powers, clipped, scale_low, scale_high, slack, limit):
    """The mean error per fitted cell of x against y after the fit of y (see
    similarity._cell_errors), or infinity as soon as it is sure to exceed `limit` (the
    errors only add up)."""
    numerator = total * products - sum_x * sum_y
    denominator = total * powers - sum_y * sum_y
    count = max(total, 1.0)
    scale = numerator / max(denominator, 1e-9 * count)
    scale = min(max(scale, scale_low), scale_high)
    offset = (sum_x - scale * sum_y) / count
    if held:
        pivot = max(x_mean, y_mean)
        pivot_offset = (1.0 - scale) * np.float64(pivot)
        offset = min(max(offset, min(pivot_offset, 0.0) - slack), max(pivot_offset, 0.0) + slack)
    scale32, offset32 = np.float32(scale), np.float32(offset)
    total_error, most = 0.0, limit * count
    for cell in range(offsets.shape[0]):
        at = offsets[cell]
        x_luma_raw, y_luma_raw = np.float32(colour[x_row, at]), np.float32(colour[y_row, at])
        x_unclipped = np.float32(1.0) if x_luma_raw < clipped else np.float32(0.0)
        y_unclipped = np.float32(1.0) if y_luma_raw < clipped else np.float32(0.0)
        x_luma, y_luma = min(x_luma_raw, clipped), min(y_luma_raw, clipped)
        difference = x_luma - (y_luma * scale32 + offset32)
        luma_error = max(difference * y_unclipped, -(difference * x_unclipped))
        chroma_error = np.float32(0.0)
        if uses_chroma and (x_unclipped * y_unclipped > 0 or luma_error > 0):
            x_cb = np.float32(np.int32(colour[x_row, at + 1]) - 128)
            x_cr = np.float32(np.int32(colour[x_row, at + 2]) - 128)
            y_cb = np.float32(np.int32(colour[y_row, at + 1]) - 128)
            y_cr = np.float32(np.int32(colour[y_row, at + 2]) - 128)
            cb, cr = x_cb - y_cb * scale32, x_cr - y_cr * scale32
            chroma_error = cb * cb + cr * cr
        total_error += np.float64(np.sqrt(luma_error * luma_error + chroma_error))
        if total_error > most:
            return np.float32(np.inf)
    return np.float32(total_error / count)


@njit(cache=True, nogil=True)
def _global_errors(colour, first, second, in_colour, mean_luma, offsets, errors, start, stop,
                   clipped, scale_low, scale_high, slack, limit):
    for pair in range(start, stop):
        a, b = first[pair], second[pair]
        uses_chroma = in_colour[a] and in_colour[b]
        held = in_colour[a] != in_colour[b]
        # Sums over the cells clipped in neither picture, all of whole numbers (exact).
        total = sum_a = sum_b = product = power_a = power_b = 0.0
        for cell in range(offsets.shape[0]):
            at = offsets[cell]
            luma_a, luma_b = np.float64(colour[a, at]), np.float64(colour[b, at])
            if luma_a >= clipped or luma_b >= clipped:
                continue
            total += 1.0
            sum_a += luma_a
            sum_b += luma_b
            product += luma_a * luma_b
            power_a += luma_a * luma_a
            power_b += luma_b * luma_b
            if uses_chroma:
                cb_a, cr_a = np.float64(colour[a, at + 1]) - 128.0, np.float64(colour[a, at + 2]) - 128.0
                cb_b, cr_b = np.float64(colour[b, at + 1]) - 128.0, np.float64(colour[b, at + 2]) - 128.0
                product += cb_a * cb_b + cr_a * cr_b
                power_a += cb_a * cb_a + cr_a * cr_a
                power_b += cb_b * cb_b + cr_b * cr_b
        a_from_b = _direction(colour, a, b, offsets, uses_chroma, held, mean_luma[a], mean_luma[b],
                              total, sum_a, sum_b, product, power_b, clipped, scale_low, scale_high, slack, limit)
        if a_from_b <= limit < np.inf:  # the smaller of the two is within the limit: that settles it
            errors[pair] = a_from_b
            continue
        b_from_a = _direction(colour, b, a, offsets, uses_chroma, held, mean_luma[b], mean_luma[a],
                              total, sum_b, sum_a, product, power_a, clipped, scale_low, scale_high, slack, limit)
        errors[pair] = min(a_from_b, b_from_a)


def global_errors(colour: np.ndarray, first: np.ndarray, second: np.ndarray, in_colour: np.ndarray,
                  mean_luma: np.ndarray, limit: float = np.inf, threads: int = 0) -> np.ndarray:
    """similarity.colour_distance of the pairs (colour[first[i]], colour[second[i]]), read
    in place from the C-contiguous uint8 signature rows `colour`; `in_colour` and
    `mean_luma` (the mean of all coarse lumas, float32) are per row of `colour`. With a
    finite `limit` only the side of it is exact: a distance above it may come back as
    infinity, and one at or below it as any value at or below it (whichever direction of
    the fit settles it first)."""
    from dedup_cli.plan import similarity

    colour = np.ascontiguousarray(colour, dtype=np.uint8)
    first, second = (np.ascontiguousarray(side, dtype=np.int64) for side in (first, second))
    errors = np.empty(len(first), dtype=np.float32)
    threads = max(1, min(threads or available_cpus(), len(first) // _MIN_PAIRS_PER_THREAD))
    bounds = np.linspace(0, len(first), threads + 1).astype(np.int64)
    arguments = (np.float32(similarity.CLIPPED_LUMA), *map(float, similarity.SCALE_RANGE),
                 float(similarity.OFFSET_SLACK), float(limit))

    def run(part: int):
        _global_errors(colour, first, second, in_colour, mean_luma, _INNER_OFFSETS, errors,
                       bounds[part], bounds[part + 1], *arguments)

    if threads == 1:
        run(0)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(run, range(threads)))
    return errors
