"""Default thresholds, in bits, per hash algorithm and size.

Calibrated by benchmarks/calibrate.py: on edits of the bench photos (resize, thumbnail,
JPEG q40, PNG, WebP, brightness, contrast, 3% crop, blur, watermark, EXIF rotation), with
the colour checks on (threshold 12), among thresholds keeping pair precision >= 0.995, no
wrong removal and at most 20 false pairs among 262 flags, each is the smallest whose
recall reaches 0.98 (or the best recall, where that is lower). The README has the table.
"""

from __future__ import annotations

CALIBRATED_BITS = {
    ("average_hash", 8): 8,
    ("dhash", 8): 10,
    ("phash", 8): 14,
    ("whash", 8): 10,
    ("average_hash", 16): 36,
    ("dhash", 16): 58,
    ("phash", 16): 72,
    ("whash", 16): 46,
}


def default_threshold_bits(settings) -> int:
    """Default inclusive Hamming threshold for `settings` (a HashSettings); other hash
    sizes take the calibrated fraction of the bits of the nearest calibrated size."""
    key = (settings.algorithm, settings.hash_size)
    if key in CALIBRATED_BITS:
        return CALIBRATED_BITS[key]
    nearest = 8 if settings.hash_size < 12 else 16
    fraction = CALIBRATED_BITS[(settings.algorithm, nearest)] / (nearest * nearest)
    return int(round(fraction * settings.n_bits))
