"""Extra views of one decoded picture, hashed beside the whole one: the picture with its
uniform borders trimmed, and centre crops at a few scales.

A global hash sees a padded or letterboxed copy, or a copy cropped by 10-15%, as another
picture. Its trimmed view, or the original's centre crop at the copy's scale, is the same
picture again; so each file also gets the hash and colour signature of these views, and a
pair matches when any view of one is within the threshold of the other's whole (or
trimmed) picture (similarity.Matcher).

Trimming is cautious, because a flag's stripe is uniform too: a side is trimmed only
when its edge is one nearly uniform colour across its whole length, that colour is
neutral (black, white or grey: what padding, letterboxes and scanner margins are), and
the uniform band is at most TRIM_MAX_SHARE of the picture; a wider band is content.
"""

from __future__ import annotations

import numpy as np

# Per-side share of a picture's height or width that trimming may remove; a wider uniform
# band (a flag's white half, a snowfield) is taken as content and the side left alone.
TRIM_MAX_SHARE = 0.2
TRIM_MIN_PIXELS = 2  # thinner bands are the decoder's edge, not padding
LINE_UNIFORM_SHARE = 0.98  # share of a line's pixels that must match the border colour
BORDER_TOLERANCE = 12  # levels per channel within which a pixel matches the border colour
NEUTRAL_CHROMA = 10  # |Cb - 128|, |Cr - 128| at most this: a black, white or grey border
# Centre crops, as a share of the width and height kept: a copy cropped by 5-10% on each
# side lines up with the 0.85 view, one cropped by 12-15% with the 0.7 one (measured on
# the bench originals: see the README's accuracy section).
CROP_SCALES = (0.85, 0.7)
VIEW_NAMES = ("trimmed", *(f"centre {round(scale * 100)}%" for scale in CROP_SCALES))


def _border_depth(lines: np.ndarray, limit: int) -> int:
    """How many leading lines of `lines` (lines, pixels, channels), from the edge inward,
    are one neutral colour; 0 when the band is thinner than TRIM_MIN_PIXELS or wider than
    `limit` (then it is content)."""
    edge = lines[0].astype(np.int16)
    colour = _median(edge)
    if edge.shape[1] == 3 and np.abs(colour[1:] - 128).max() > NEUTRAL_CHROMA:
        return 0
    if (np.abs(edge - colour).max(axis=1) <= BORDER_TOLERANCE).mean() < LINE_UNIFORM_SHARE:
        return 0  # most pictures: their edge is no border
    band = lines[:limit + 1]  # one line past the limit tells a band that goes on
    # The depth is the first line that does not match (the edge does): looked for in
    # chunks that double, so a thin border costs a few lines, not the whole band.
    depth, step = 1, 4
    while depth < len(band):
        chunk = band[depth:depth + step].astype(np.int16)
        matching = (np.abs(chunk - colour).max(axis=2) <= BORDER_TOLERANCE).mean(axis=1) >= LINE_UNIFORM_SHARE
        if not matching.all():
            depth += int(np.argmin(matching))
            break
        depth, step = depth + len(chunk), 2 * step
    return depth if TRIM_MIN_PIXELS <= depth <= limit else 0


def _median(pixels: np.ndarray) -> np.ndarray:
    """np.median(pixels, axis=0), without its overhead (four calls per picture)."""
    count = len(pixels)
    middle = count // 2
    if count % 2:
        return np.partition(pixels, middle, axis=0)[middle].astype(np.float64)
    ordered = np.partition(pixels, (middle - 1, middle), axis=0)
    return (ordered[middle - 1].astype(np.float64) + ordered[middle]) / 2


def trim_box(image) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of `image` (a PIL image in L, RGB or YCbCr) without its
    uniform neutral borders, or None when no side has one."""
    if image.mode not in ("L", "YCbCr"):
        image = image.convert("YCbCr")
    pixels = np.asarray(image)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    height, width = pixels.shape[:2]
    down, across = int(height * TRIM_MAX_SHARE), int(width * TRIM_MAX_SHARE)
    top, bottom = _border_depth(pixels, down), _border_depth(pixels[::-1], down)
    across_lines = pixels.transpose(1, 0, 2)
    left, right = _border_depth(across_lines, across), _border_depth(across_lines[::-1], across)
    if not (top or bottom or left or right):
        return None
    return left, top, width - right, height - bottom


def crop_boxes(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """The centre crop at each of CROP_SCALES of a width x height picture."""
    boxes = []
    for scale in CROP_SCALES:
        dx, dy = round(width * (1 - scale) / 2), round(height * (1 - scale) / 2)
        boxes.append((dx, dy, max(dx + 1, width - dx), max(dy + 1, height - dy)))
    return boxes


def view_boxes(image) -> list[tuple[int, int, int, int]]:
    """The box of each view in VIEW_NAMES' order; the trimmed view is the whole picture
    when there is nothing to trim."""
    whole = (0, 0, image.width, image.height)
    return [trim_box(image) or whole, *crop_boxes(image.width, image.height)]
