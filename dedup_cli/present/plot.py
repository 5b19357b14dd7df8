"""t-SNE maps and thumbnail mosaics, written to files (no window ever opens).

scikit-learn and matplotlib are imported inside the functions that need them.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from dedup_cli.errors import UnreadableImage
from dedup_cli.fingerprint.hashing import worker_pool
from dedup_cli.media.video import VideoError, picture_of
from dedup_cli.runs import create_run_folder

PREVIEW_SIDE = 800
_BACKGROUND = (255, 255, 255)


@dataclass(frozen=True)
class ShowOptions:
    image_w: int = 48
    image_h: int = 48
    perplexity: float = 30.0


# t-SNE effort. scikit-learn's defaults (1,000 iterations, angle 0.5) took 13.7 s for the
# 2,838 distinct hashes of `bench_show.py --count 3000` here (one thread, KL 2.53); 300
# iterations at angle 0.8 take 2.7 s (KL 2.71), and 99.5% of the grouped files still have a
# member of their own group as their nearest point on the map (100% with the defaults; on
# the 1,377 generated files 98.3% against 98.7%). Not fewer: scikit-learn spends the first
# 250 iterations in early exaggeration, and with none after it the 1,377 generated files
# came out as a line (KL infinite, 0.6% of grouped files next to their own group).
TSNE_ITERATIONS = 300
TSNE_ANGLE = 0.8


def tsne_positions(bits: np.ndarray, perplexity: float, seed: int = 0) -> np.ndarray:
    """2-D t-SNE coordinates of the hash bit vectors or the CNN embeddings (Barnes-Hut, PCA
    start, fixed seed).

    Identical hashes are embedded once (they would land on one point anyway), which
    spares their cost; stacked points are then fanned out (fan_out) so that every file
    can be seen and hovered on the map.
    """
    unique, inverse = np.unique(bits, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    count = len(unique)
    if count < 4:  # t-SNE needs perplexity < n; a line is as good as a map here
        embedded = np.column_stack([np.arange(count, dtype=float), np.zeros(count)])
    else:
        from sklearn.manifold import TSNE
        from threadpoolctl import threadpool_limits

        model = TSNE(n_components=2, perplexity=min(perplexity, (count - 1) / 3), init="pca",
                     random_state=seed, learning_rate="auto", max_iter=TSNE_ITERATIONS, angle=TSNE_ANGLE)
        # One OpenMP thread: worker processes decode thumbnails meanwhile, and OpenMP threads
        # spin at a barrier every iteration, so they lose badly to any process holding a
        # core (2 threads took 21.5 s instead of 1.6 s here under a load of 6).
        with threadpool_limits(limits=1, user_api="openmp"):
            embedded = model.fit_transform(unique.astype(np.float32))
    return fan_out(np.asarray(embedded, dtype=float)[inverse])


FAN_GAP = 0.004  # of the map's span: points closer than this are fanned out around their centre


def fan_out(positions: np.ndarray, gap: float = FAN_GAP) -> np.ndarray:
    """`positions` with the points that share a cell of `gap` x span (identical hashes,
    near copies that t-SNE stacks) moved onto a small golden-angle spiral around the
    cell's centre, so that zooming in tells them apart; a point alone stays where it is."""
    positions = np.asarray(positions, dtype=float)
    if len(positions) < 2:
        return positions.copy()
    span = float(np.ptp(positions, axis=0).max()) or 1.0
    cells = np.floor((positions - positions.min(axis=0)) / (gap * span)).astype(np.int64)
    _, inverse = np.unique(cells, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    counts = np.bincount(inverse)
    centres = np.column_stack([np.bincount(inverse, positions[:, axis]) / counts for axis in (0, 1)])
    order = np.argsort(inverse, kind="stable")
    starts = np.flatnonzero(np.r_[True, inverse[order][1:] != inverse[order][:-1]])
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    radius = gap * span * np.sqrt(rank)
    angle = rank * 2.399963  # the golden angle: points spread evenly, never on one line
    fanned = centres[inverse]
    alone = counts[inverse] == 1
    fanned[alone] = positions[alone]
    fanned[order, 0] += radius * np.cos(angle)
    fanned[order, 1] += radius * np.sin(angle)
    return fanned


def _thumbnail(job: tuple[str, int, int]) -> tuple[bytes, tuple[int, int]] | None:
    path, width, height = job
    try:
        image = picture_of(path, width, height, max(width, height))  # a video: its middle frame
    except (UnreadableImage, VideoError):
        return None
    image.thumbnail((width, height))
    return image.tobytes(), image.size


def load_thumbnails(paths, width: int, height: int, workers: int) -> list[Image.Image | None]:
    """RGB thumbnails that fit width x height (None where a file cannot be read)."""
    with worker_pool(workers if len(paths) > 64 else 1) as pool:
        return start_thumbnails(pool, paths, width, height)()


def start_thumbnails(pool, paths, width: int, height: int):
    """Submit the thumbnails of `paths` (as load_thumbnails makes them) to `pool` and
    return a function that waits for them: the pool decodes while the caller works."""
    pending = pool.map(_thumbnail, [(path, width, height) for path in paths], chunksize=32)
    return lambda: [Image.frombytes("RGB", result[1], result[0]) if result else None for result in pending]


def thumbnail_map(positions: np.ndarray, thumbnails, width: int, height: int) -> Image.Image:
    """Paste each thumbnail at its t-SNE position on a white canvas sized to the count."""
    count = max(1, len(thumbnails))
    side = int(np.clip(np.sqrt(count) * max(width, height) * 1.6, 600, 8000))
    canvas = Image.new("RGB", (side + width, side + height), _BACKGROUND)
    low, high = positions.min(axis=0), positions.max(axis=0)
    span = np.where(high - low > 0, high - low, 1.0)
    scaled = (positions - low) / span * side
    for (x, y), thumb in zip(scaled, thumbnails):
        if thumb is not None:
            canvas.paste(thumb, (int(x), int(y)))
    return canvas


def run_show(collection, options, show_options: ShowOptions, output_path) -> dict[str, str]:
    """Write tsne.csv, the thumbnail map and its preview, a scatter coloured by duplicate
    group and the explorable tsne.html into a new run folder under `output_path`;
    returns their paths.

    t-SNE runs here (one thread) while the worker processes find the duplicate groups and
    decode the thumbnails; then the scatter and the thumbnail map are drawn in the workers
    while this process writes tsne.csv and tsne.html.
    """
    from dedup_cli.plan.grouping import connected_groups

    hashed, video_groups = _with_videos(collection, options)
    folder = create_run_folder(output_path, "show")
    cell = (show_options.image_w, show_options.image_h)
    files = {"t-SNE coordinates": folder / "tsne.csv", "thumbnail map": folder / "tsne_map.png",
             "preview": folder / "tsne_preview.png", "groups": folder / "tsne_groups.png",
             "interactive map": folder / "tsne.html"}
    with worker_pool(options.workers) as pool:
        # Images by the collection's matcher (--method cnn: the embeddings; the hash matcher
        # is made in the worker); videos came grouped by the video rule (_with_videos).
        matcher = collection.matcher(options) if collection.embeddings is not None else None
        grouping = pool.submit(connected_groups, collection.hashed, options.match_settings, options.index_settings,
                               matcher)
        waiting = start_thumbnails(pool, hashed.paths, *cell)
        positions = tsne_positions(map_features(collection, hashed), show_options.perplexity)
        thumbs, groups = waiting(), grouping.result() + video_groups
        pictures = [pool.submit(group_scatter, positions, groups, files["groups"]),
                    pool.submit(write_thumbnail_map, files["thumbnail map"], files["preview"], positions, thumbs,
                                cell)]
        write_positions(files["t-SNE coordinates"], hashed.paths, positions)
        write_map_page(files["interactive map"], hashed.paths, positions, groups, thumbs, cell,
                       str(Path(options.images_path).absolute()))
        for picture in pictures:
            picture.result()
    return {label: str(path) for label, path in files.items()}


def write_positions(path: Path, paths, positions: np.ndarray) -> None:
    """tsne.csv: path, x, y per file (a new file: never overwrites)."""
    with open(path, "x", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "x", "y"])
        writer.writerows([name, f"{x:.4f}", f"{y:.4f}"] for name, (x, y) in zip(paths, positions))


def write_thumbnail_map(map_png: Path, preview_png: Path, positions, thumbs, cell: tuple[int, int]) -> None:
    """The thumbnails pasted at their positions, full size and as a preview of PREVIEW_SIDE.
    compress_level 1: the map is mostly white, so it stays small, and saving takes half
    the time of the default level (6)."""
    canvas = thumbnail_map(positions, thumbs, *cell)
    canvas.save(map_png, compress_level=1)
    canvas.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    canvas.save(preview_png)


ATLAS_SIDE = 4096  # pixels per side of one thumbnail sheet: what every browser decodes


def thumbnail_atlas(thumbnails, cell: tuple[int, int]) -> tuple[list[str], int, int]:
    """The thumbnails packed into JPEG sheets of at most ATLAS_SIDE pixels a side, each a
    data: URI, with the columns and the thumbnails per sheet: thumbnail i sits in sheet
    i // per_sheet, centred in its cell. Missing thumbnails leave a white cell."""
    import base64
    import io

    width, height = cell
    columns, rows = max(1, ATLAS_SIDE // width), max(1, ATLAS_SIDE // height)
    per_sheet = columns * rows
    sheets = []
    for start in range(0, len(thumbnails), per_sheet):
        chunk = thumbnails[start:start + per_sheet]
        used_rows = -(-len(chunk) // columns)
        sheet = Image.new("RGB", (columns * width, used_rows * height), _BACKGROUND)
        for number, thumb in enumerate(chunk):
            if thumb is not None:
                left, top = (number % columns) * width, (number // columns) * height
                sheet.paste(thumb, (left + (width - thumb.width) // 2, top + (height - thumb.height) // 2))
        buffer = io.BytesIO()
        sheet.save(buffer, "JPEG", quality=82)
        sheets.append("data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"))
    return sheets, columns, per_sheet


def map_page_data(paths, positions: np.ndarray, groups, thumbnails, cell: tuple[int, int], root: str = "") -> dict:
    """What tsne.html draws: positions scaled into 0..1, a group number per point (-1:
    no duplicate), the paths (relative to `root`, the images folder), and the thumbnail
    sheets."""
    from dedup_cli.present.review import display_path

    labels = np.full(len(paths), -1, dtype=np.int64)
    for number, members in enumerate(groups):
        labels[members] = number
    low = positions.min(axis=0) if len(positions) else np.zeros(2)
    extent = np.ptp(positions, axis=0) if len(positions) else np.ones(2)
    span = float(extent.max()) or 1.0
    scaled = (positions - low) / span + (1 - extent / span) / 2  # one scale for both axes, centred
    sheets, columns, per_sheet = thumbnail_atlas(thumbnails, cell)
    return {"count": len(paths), "groups": len(groups), "cell": list(cell), "columns": columns,
            "per_sheet": per_sheet, "sheets": sheets,
            "x": np.round(scaled[:, 0], 5).tolist(), "y": np.round(scaled[:, 1], 5).tolist(),
            "group": labels.tolist(), "root": root, "paths": [display_path(path, root) for path in paths],
            # each thumbnail's own size, so that a page draws the picture and not its cell's margin
            "thumb_w": [thumb.width if thumb else 0 for thumb in thumbnails],
            "thumb_h": [thumb.height if thumb else 0 for thumb in thumbnails],
            "missing": [i for i, thumb in enumerate(thumbnails) if thumb is None]}


def write_map_page(path: Path, paths, positions, groups, thumbnails, cell: tuple[int, int], root: str = "") -> Path:
    """tsne.html: the t-SNE map as a page to pan, zoom, hover and click, self-contained
    (data and thumbnails embedded); writes `path` and returns it."""
    from dedup_cli.present.pages import render, save_page

    save_page(path, render("tsne.html", map_page_data(paths, positions, groups, thumbnails, cell, root)))
    return path


def _with_videos(collection, options):
    """The collection's images and then its videos as one HashedFiles (a video placed by
    its middle kept frame's hash), and the groups of the same video, in those rows."""
    videos = collection.videos
    if not videos.prints:
        return collection.hashed, []
    from dedup_cli.fingerprint.hashing import join_hashed
    from dedup_cli.plan.grouping import connected_groups
    from dedup_cli.plan.similarity import MatchSettings
    from dedup_cli.plan.video import video_rows

    images = collection.hashed
    rows, _, matcher = video_rows(videos, images, options.video_match, options.video_mirror)
    groups = connected_groups(rows, MatchSettings(options.video_match.max_bits), options.index_settings, matcher)
    return join_hashed(images, rows), [group + len(images.paths) for group in groups]


def map_features(collection, hashed) -> np.ndarray:
    """The rows t-SNE places, one per row of `hashed` (the images, then the videos): the
    hash bits, or under --method cnn the images' embeddings. Videos have no embedding, so
    then their frame-hash bits sit in columns of their own (zero for the images, as the
    embedding columns are for the videos): a video never pairs with an image anyway."""
    if collection.embeddings is None:
        return hashed.bits
    images = collection.embeddings.astype(np.float32)
    videos = hashed.bits[len(images):].astype(np.float32)
    if not len(videos):
        return images
    return np.block([[images, np.zeros((len(images), videos.shape[1]), np.float32)],
                     [np.zeros((len(videos), images.shape[1]), np.float32), videos]])


def group_scatter(positions: np.ndarray, groups, path: Path) -> None:
    """Scatter of the t-SNE positions, near-duplicate groups in colour, the rest grey."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    labels = np.full(len(positions), -1)
    for number, members in enumerate(groups):
        labels[members] = number
    figure, axes = plt.subplots(figsize=(7, 7), dpi=100)
    single = labels < 0
    axes.scatter(positions[single, 0], positions[single, 1], s=8, c="lightgrey", label="no duplicate")
    if (~single).any():
        axes.scatter(positions[~single, 0], positions[~single, 1], s=14, c=labels[~single], cmap="tab20",
                     label="near-duplicate group")
    axes.set_title(f"t-SNE of {len(positions)} files ({len(groups)} duplicate groups)")
    axes.set_xticks([])
    axes.set_yticks([])
    axes.legend(loc="upper right", fontsize="small")  # "best" scans every point for a free corner
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def search_mosaic(result, output_path, side: int = 160) -> str:
    """A PNG of the query and its matches with their distances, in a new run folder."""
    folder = create_run_folder(output_path, "search")
    paths = [result.query, *(match.path for match in result.matches)]
    labels = ["query", *(f"{match.distance:g} ({match.bits} bits)" for match in result.matches)]
    thumbs = load_thumbnails(paths, side, side, workers=1)
    label_height = 18
    mosaic = Image.new("RGB", (side * len(paths), side + label_height), _BACKGROUND)
    draw = ImageDraw.Draw(mosaic)
    for column, (thumb, label) in enumerate(zip(thumbs, labels)):
        if thumb is not None:
            mosaic.paste(thumb, (column * side + (side - thumb.width) // 2, (side - thumb.height) // 2))
        draw.text((column * side + 4, side + 3), label, fill=(0, 0, 0))
    path = folder / "mosaic.png"
    mosaic.save(path)
    return str(path)
