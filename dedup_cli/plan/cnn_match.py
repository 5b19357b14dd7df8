"""Duplicates by CNN embeddings: cosine similarity, with the colour checks as a veto.

Pure: embeddings and colour signatures in, pairs and distances out. EmbeddingMatcher
answers the planner exactly as similarity.Matcher does for hashes, so grouping, the keep
policy, reports and actions are the same code for both methods. Its integer distance is
the cosine distance in ten-thousandths, `round((1 - cosine) * 10000)`: the planner's
`max_bits` becomes `max_units`, and a report's `bits` column holds these units.

The network is nearly blind to colour (an emoji in another skin tone scores 0.997), so
every pair above the threshold also goes through the colour checks of similarity.py,
which rule out pictures whose colours clearly differ, as they do for hashes (with one
more alignment: colour_vetoed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from dedup_cli.fingerprint.signature import zoomed
from dedup_cli.plan.similarity import MatchSettings, vetoed
from dedup_cli.search.cosine import cross_pairs_above, pairs_above

COSINE_SCALE = 10_000  # integer distance units per unit of cosine
# Calibrated on the generated bench (benchmarks/bench_cnn.py; the README has the figures).
DEFAULT_COSINE = 0.80
# The network finds mirrored, cropped and padded copies, whose colour grids do not line
# up with the original's; before the colour checks rule such a pair out they also try the
# smaller picture as the central window of the larger one, when the sizes say it may be
# one (a crop or a border that was not resized: both sides between these fractions of the
# other's). Not the mirror: flags such as Guinea's and Mali's are each other's mirror
# image, and windows of any size would pair emoji in other skin tones (measured in
# benchmarks/bench_cnn.py).
WINDOW_FRACTIONS = (0.6, 0.97)
# A window's grids are made from the 16x16 grid (signature.zoomed), which blurs the cells
# at its edges: the local check, which looks at the 8 worst cells, gets this much more room
# there (the global and one-edit checks are unchanged).
WINDOW_LOCAL_SLACK = 1.6


def colour_vetoed(colour_a: np.ndarray, colour_b: np.ndarray, size_a: np.ndarray, size_b: np.ndarray,
                  settings: MatchSettings) -> np.ndarray:
    """True for pairs (signatures and (n, 2) width, height) that the colour checks rule out
    as they are and, where the sizes allow, with the smaller picture as the window of the
    larger one."""
    ruled_out = vetoed(colour_a, colour_b, settings)
    window_settings = replace(settings, local_factor=settings.local_factor * WINDOW_LOCAL_SLACK)
    size_a, size_b = np.asarray(size_a, dtype=np.float64), np.asarray(size_b, dtype=np.float64)
    for small, large, colour_small, colour_large in ((size_a, size_b, colour_a, colour_b),
                                                      (size_b, size_a, colour_b, colour_a)):
        fraction = small / np.maximum(large, 1)
        fits = np.all((fraction >= WINDOW_FRACTIONS[0]) & (fraction <= WINDOW_FRACTIONS[1]), axis=1)
        rows = np.flatnonzero(ruled_out & fits)
        if len(rows):
            window = zoomed(colour_large[rows], fraction[rows, 0], fraction[rows, 1])
            ruled_out[rows] = vetoed(colour_small[rows], window, window_settings)
    return ruled_out


def max_units(min_similarity: float) -> int:
    """The largest integer distance whose cosine is >= min_similarity (inclusive)."""
    return int(math.floor((1.0 - min_similarity) * COSINE_SCALE + 1e-6))


def units(similarity: np.ndarray) -> np.ndarray:
    """Integer distances of cosine similarities."""
    return np.rint((1.0 - np.asarray(similarity, dtype=np.float64)) * COSINE_SCALE).clip(0).astype(np.int64)


@dataclass(frozen=True)
class CosineUnits:
    """The reports' `metric` for the CNN method: distance = 1 - cosine similarity."""

    name: str = "cosine"

    def from_bits(self, distance_units):
        return np.asarray(distance_units, dtype=np.float64) / COSINE_SCALE


class EmbeddingMatcher:
    """Distances between the files of one HashedFiles by their embeddings (row i of
    `embeddings` is hashed.paths[i]); same interface as similarity.Matcher."""

    walks_in_batches = False  # the planner asks distances() file by file

    def __init__(self, hashed, embeddings: np.ndarray, settings: MatchSettings):
        self.hashed = hashed
        self.sizes = np.column_stack([hashed.width, hashed.height])  # (files, 2), for the colour checks
        self.embeddings = embeddings
        self.settings = settings
        self.rejected = 2 * COSINE_SCALE + 1  # beyond any cosine distance
        self._pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def min_similarity(self) -> float:
        # Half a unit below the threshold's cosine, so that rounding to units decides.
        return 1.0 - (self.settings.max_bits + 0.5) / COSINE_SCALE

    def _vetoed(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        colour, sizes = self.hashed.colour, self.sizes
        return colour_vetoed(colour[first], colour[second], sizes[first], sizes[second], self.settings)

    def distances(self, rows, row: int) -> np.ndarray:
        """Units from each of `rows` to `row`; vetoed or distant pairs get `rejected`."""
        rows = np.asarray(rows, dtype=np.int64)
        similarity = self.embeddings[rows].astype(np.float32) @ self.embeddings[row].astype(np.float32)
        found = units(similarity)
        near = np.flatnonzero(found <= self.settings.max_bits)
        ruled_out = self._vetoed(rows[near], np.full(len(near), row))
        distances = np.full(len(rows), self.rejected, dtype=np.int64)
        distances[near] = np.where(ruled_out, self.rejected, found[near])
        return distances

    @property
    def found_pairs(self) -> bool:
        """Always True: pairs() is how this matcher finds links (grouping must not collapse
        files by their hashes first, as it does for the hash matcher)."""
        return True

    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All pairs (i < j) of files that are duplicates, with their units (complete)."""
        if self._pairs is None:
            found = pairs_above(self.embeddings, self.min_similarity)
            distance = units(found.similarity)
            keep = distance <= self.settings.max_bits
            first, second, distance = found.first[keep], found.second[keep], distance[keep]
            allowed = ~self._vetoed(first, second)
            self._pairs = (first[allowed], second[allowed], distance[allowed])
        return self._pairs

    def matches_many(self, query_embeddings: np.ndarray, query_colours: np.ndarray, query_sizes: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query, row, units) for every row that is a duplicate of one of many outside
        images (their embeddings, colour signatures and (width, height)), sorted by query,
        units, row."""
        found = cross_pairs_above(query_embeddings, self.embeddings, self.min_similarity)
        distance = units(found.similarity)
        keep = distance <= self.settings.max_bits
        queries, rows, distance = found.first[keep], found.second[keep], distance[keep]
        allowed = ~colour_vetoed(query_colours[queries], self.hashed.colour[rows], np.asarray(query_sizes)[queries],
                                 self.sizes[rows], self.settings)
        queries, rows, distance = queries[allowed], rows[allowed], distance[allowed]
        order = np.lexsort((rows, distance, queries))
        return queries[order], rows[order], distance[order]
