"""Default thresholds, in bits, per hash algorithm and size."""

from __future__ import annotations

# Bits for hash_size 8 (64-bit hashes); larger hashes scale with the number of bits.
# Starting points from common practice (imagededup uses 10 for pHash-64); a later
# calibration on labelled benchmarks replaces them.
_DEFAULT_FRACTION = {
    "phash": 10 / 64,
    "dhash": 10 / 64,
    "average_hash": 8 / 64,
    "whash": 8 / 64,
}


def default_threshold_bits(settings) -> int:
    """Default inclusive Hamming threshold for `settings` (a HashSettings)."""
    return int(round(_DEFAULT_FRACTION[settings.algorithm] * settings.n_bits))
