"""The colour signature that similarity.py checks hash matches against.

Three grids of mean Y, Cb and Cr per cell, all taken from one box-filtered 32x32 copy of
the decoded picture (so the worker resizes once):
  - coarse: 8x8 cells of the whole picture, for the global colour check;
  - detail: 16x16 cells of the whole picture, for differences in a small part of it
    (an emblem, two stars);
  - centre: 16x16 cells of the picture without its outer 1/32 on each side, the detail
    grid of a copy cropped by about 3%, so that a slightly cropped copy still lines up.
A grey picture has Cb = Cr = 128 everywhere. Stored as uint8, one grid after the other.
"""

from __future__ import annotations

import numpy as np

SOURCE_SIDE = 32
GRID_SIDES = (8, 16, 16)  # coarse, detail, centre
CENTRE_MARGIN = 1  # source cells left out on each side for the centre grid
SIGNATURE_BYTES = sum(side * side * 3 for side in GRID_SIDES)


def _area_weights(source: int, target: int, start: float = 0.0, stop: float | None = None) -> np.ndarray:
    """(target, source) matrix: each target cell's mean over the source cells it covers,
    the target cells splitting the window [start, stop] of the source (default: all)."""
    edges = np.linspace(start, source if stop is None else stop, target + 1)
    cells = np.arange(source)
    overlap = np.clip(np.minimum(edges[1:, None], cells + 1) - np.maximum(edges[:-1, None], cells), 0.0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


_CENTRE_WEIGHTS = _area_weights(SOURCE_SIDE - 2 * CENTRE_MARGIN, GRID_SIDES[2])
# All three grids' rows (and, transposed, columns) as one (40, 32) matrix of area weights
# over the 32x32 source: one product per channel gives every grid on its diagonal blocks.
_GRID_WEIGHTS = np.concatenate([_area_weights(SOURCE_SIDE, GRID_SIDES[0]), _area_weights(SOURCE_SIDE, GRID_SIDES[1]),
                                np.pad(_CENTRE_WEIGHTS, ((0, 0), (CENTRE_MARGIN, CENTRE_MARGIN)))])
_GRID_STARTS = np.cumsum((0, *GRID_SIDES))


def colour_signature(image, box: tuple[int, int, int, int] | None = None) -> bytes:
    """The signature of a decoded PIL image (any mode), or of its part `box` (left, top,
    right, bottom: a view, see views.py)."""
    return colour_signatures(image, (box,))


def colour_signatures(image, boxes) -> bytes:
    """The signature of each part `box` of a decoded PIL image (None: all of it), one
    after the other."""
    from PIL import Image

    ycbcr = image if image.mode == "YCbCr" else image.convert("YCbCr")
    sources = np.stack([np.asarray(ycbcr.resize((SOURCE_SIDE, SOURCE_SIDE), Image.Resampling.BOX, box=box))
                        for box in boxes]).astype(np.float64)
    cells = _GRID_WEIGHTS @ sources.transpose(0, 3, 1, 2) @ _GRID_WEIGHTS.T  # (boxes, 3, 40, 40)
    grids = [cells[:, :, start:stop, start:stop].transpose(0, 2, 3, 1).reshape(len(sources), -1)
             for start, stop in zip(_GRID_STARTS[:-1], _GRID_STARTS[1:])]  # noqa: B905
    return np.clip(np.rint(np.concatenate(grids, axis=1)), 0, 255).astype(np.uint8).tobytes()


def zoomed(colour: np.ndarray, scale_x: np.ndarray, scale_y: np.ndarray) -> np.ndarray:
    """Signatures of the central window of each picture that spans `scale_x` of its width
    and `scale_y` of its height (one scale per row), made from its 16x16 detail grid: about
    what a copy cropped to that window carries, or the original inside a padded copy.
    Coarser than a real signature (16 source cells, not 32), which the colour checks'
    margins absorb."""
    side = GRID_SIDES[1]
    detail = grid(colour, 1).reshape(len(colour), side, side, 3)
    parts = [np.empty((len(colour), s * s * 3), dtype=np.uint8) for s in GRID_SIDES]
    for row, (scale_x_row, scale_y_row) in enumerate(zip(scale_x, scale_y)):  # noqa: B905
        for part, weights_x, weights_y in zip(parts, _window_weights(scale_x_row), _window_weights(scale_y_row)):
            cells = weights_y @ detail[row].transpose(2, 0, 1) @ weights_x.T
            part[row] = np.clip(np.rint(cells.transpose(1, 2, 0)), 0, 255).astype(np.uint8).ravel()
    return np.concatenate(parts, axis=1)


def _window_weights(scale: float) -> list[np.ndarray]:
    """Area weights of the coarse, detail and centre grids of the central `scale` window of
    a 16-cell side."""
    side = GRID_SIDES[1]
    start, stop = side * (1 - scale) / 2, side * (1 + scale) / 2
    inset = (stop - start) * CENTRE_MARGIN / SOURCE_SIDE
    return [_area_weights(side, GRID_SIDES[0], start, stop), _area_weights(side, GRID_SIDES[1], start, stop),
            _area_weights(side, GRID_SIDES[2], start + inset, stop - inset)]


def grid(colour: np.ndarray, part: int) -> np.ndarray:
    """Rows of signatures -> their grid number `part` (0 coarse, 1 detail, 2 centre) as
    (rows, cells, 3) floats."""
    start = sum(side * side * 3 for side in GRID_SIDES[:part])
    side = GRID_SIDES[part]
    return colour[:, start:start + side * side * 3].reshape(len(colour), side * side, 3).astype(np.float32)
