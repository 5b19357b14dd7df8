"""t-SNE maps and thumbnail mosaics, written to files (no window ever opens).

scikit-learn and matplotlib are imported inside the functions that need them.
"""

from __future__ import annotations

import csv
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from dedup_cli.errors import UnreadableImage
from dedup_cli.media.loading import load_image
from dedup_cli.media.video import VideoError, is_video_name, video_still
from dedup_cli.runs import create_run_folder

PREVIEW_SIDE = 800
_BACKGROUND = (255, 255, 255)


@dataclass(frozen=True)
class ShowOptions:
    image_w: int = 48
    image_h: int = 48
    perplexity: float = 30.0


def tsne_positions(bits: np.ndarray, perplexity: float, seed: int = 0) -> np.ndarray:
    """2-D t-SNE coordinates of the hash bit vectors (Barnes-Hut, PCA start, fixed seed)."""
    count = len(bits)
    if count < 4:  # t-SNE needs perplexity < n; a line is as good as a map here
        return np.column_stack([np.arange(count, dtype=float), np.zeros(count)])
    from sklearn.manifold import TSNE

    perplexity = min(perplexity, (count - 1) / 3)
    model = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                 learning_rate="auto", n_jobs=None)
    return model.fit_transform(bits.astype(np.float32))


def _thumbnail(job: tuple[str, int, int]) -> tuple[bytes, tuple[int, int]] | None:
    path, width, height = job
    if is_video_name(path):  # a video is drawn as its middle frame
        try:
            image = video_still(path, width, height).convert("RGB")
        except VideoError:
            return None
        return image.tobytes(), image.size
    try:
        loaded = load_image(path, min_side=max(width, height), mode="RGB")
    except UnreadableImage:
        return None
    image = loaded.image
    image.thumbnail((width, height))
    return image.tobytes(), image.size


def load_thumbnails(paths, width: int, height: int, workers: int) -> list[Image.Image | None]:
    """RGB thumbnails that fit width x height (None where a file cannot be read)."""
    jobs = [(path, width, height) for path in paths]
    if workers > 1 and len(jobs) > 64:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_thumbnail, jobs, chunksize=32))
    else:
        results = [_thumbnail(job) for job in jobs]
    return [Image.frombytes("RGB", result[1], result[0]) if result else None for result in results]


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
    """Write tsne.csv, the thumbnail map and its preview, and a scatter coloured by
    duplicate group into a new run folder under `output_path`; returns their paths."""
    from dedup_cli.plan.grouping import connected_groups

    hashed, video_groups = _with_videos(collection, options)
    folder = create_run_folder(output_path, "show")
    positions = tsne_positions(hashed.bits, show_options.perplexity)
    tsne_csv = folder / "tsne.csv"
    with open(tsne_csv, "x", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "x", "y"])
        writer.writerows([path, f"{x:.4f}", f"{y:.4f}"] for path, (x, y) in zip(hashed.paths, positions))
    thumbs = load_thumbnails(hashed.paths, show_options.image_w, show_options.image_h, options.workers)
    canvas = thumbnail_map(positions, thumbs, show_options.image_w, show_options.image_h)
    map_png, preview_png = folder / "tsne_map.png", folder / "tsne_preview.png"
    canvas.save(map_png)
    canvas.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    canvas.save(preview_png)
    groups = connected_groups(collection.hashed, options.match_settings, options.index_settings) + video_groups
    scatter_png = folder / "tsne_groups.png"
    group_scatter(positions, groups, scatter_png)
    return {"t-SNE coordinates": str(tsne_csv), "thumbnail map": str(map_png),
            "preview": str(preview_png), "groups": str(scatter_png)}


def _with_videos(collection, options):
    """The collection's images and then its videos as one HashedFiles (a video placed by
    its middle kept frame's hash), and the groups of the same video, in those rows."""
    videos = collection.videos
    if not videos.prints:
        return collection.hashed, []
    from dedup_cli.fingerprint.hashing import join_hashed
    from dedup_cli.fingerprint.video import as_hashed_files
    from dedup_cli.plan.grouping import connected_groups
    from dedup_cli.plan.similarity import MatchSettings
    from dedup_cli.plan.video import VideoMatcher, video_pairs

    images = collection.hashed
    rows = as_hashed_files(videos, images.settings, max(images.packed.shape[1], 8))
    matcher = VideoMatcher(video_pairs(videos.prints, options.video_match, options.hash_settings.isometric),
                           options.video_match)
    groups = connected_groups(rows, MatchSettings(options.video_match.max_bits), options.index_settings, matcher)
    return join_hashed(images, rows), [group + len(images.paths) for group in groups]


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
    axes.set_title(f"t-SNE of {len(positions)} image hashes ({len(groups)} duplicate groups)")
    axes.set_xticks([])
    axes.set_yticks([])
    axes.legend(loc="best", fontsize="small")
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
