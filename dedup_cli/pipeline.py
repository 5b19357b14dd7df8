"""The commands as library functions: scan -> hash -> index -> plan -> act -> report.

Each function takes small frozen option objects and returns a result object; only
cli.py turns those into text and exit codes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from dedup_cli import runs
from dedup_cli.act import actions
from dedup_cli.errors import InputError, UnreadableImage
from dedup_cli.fingerprint.hashing import (
    HashedFiles,
    HashSettings,
    default_workers,
    hash_collection,
    hash_file,
    join_hashed,
)
from dedup_cli.fingerprint.video import (
    VideoCollection,
    VideoSettings,
    fingerprint_collection,
    fingerprint_video,
)
from dedup_cli.media.animation import is_animated, is_animation_name
from dedup_cli.media.scan import MEDIA, OUTPUT_MARKER, ScanResult, scan_images
from dedup_cli.media.video import AV_MISSING, av_available, is_video_name
from dedup_cli.plan.cnn_match import DEFAULT_COSINE, CosineUnits, EmbeddingMatcher, max_units
from dedup_cli.plan.grouping import Group, Plan, Removal, make_plan
from dedup_cli.plan.similarity import DEFAULT_COLOUR_THRESHOLD, Matcher, MatchSettings
from dedup_cli.plan.verify import DEFAULT_VERIFY_BITS, FEATURES_LABEL, VerifyingMatcher, require_opencv
from dedup_cli.plan.video import VideoMatchSettings, query_pairs, query_pairs_many, video_keep_order
from dedup_cli.plan.video import video_rows as plan_video_rows
from dedup_cli.present import report
from dedup_cli.search.index import IndexSettings
from dedup_cli.search.thresholds import default_threshold_bits


@dataclass(frozen=True)
class CollectionOptions:
    """Where the images are and how they are hashed, indexed and compared."""

    images_path: Path
    hash_settings: HashSettings = HashSettings()
    index_settings: IndexSettings = IndexSettings()
    threshold: float | None = None  # in the metric's unit; None: the calibrated default
    colour_check: bool = True
    colour_threshold: float = DEFAULT_COLOUR_THRESHOLD
    nearest_neighbors: int = 5
    workers: int = field(default_factory=default_workers)
    batch_size: int = 64
    cache_path: Path | None = None  # None: no cache
    method: str = "hash"  # METHODS: perceptual hashes, or CNN embeddings (threshold: cosine)
    model_path: Path | None = None  # --method cnn: None is cnn_model.model_path()
    media: str = "all"  # MEDIA: which files are looked at
    video_mirror: bool = True  # also pair videos mirrored left to right (--isometric, unless n)
    scheduler: str | None = None  # a Dask scheduler's address (or local, local:N): images are hashed there
    verify: bool = False  # a second look at near misses by local features (plan/verify.py)

    @property
    def video_settings(self) -> VideoSettings:
        return VideoSettings(isometric=self.video_mirror)

    @property
    def video_match(self) -> VideoMatchSettings:
        """Video frames are always 64-bit DCT hashes, whatever --method says: an explicit
        --threshold is their frame threshold too (in bits of 64), otherwise theirs is
        calibrated apart. Under --method cnn the threshold is a cosine similarity, which
        says nothing about frame hashes: the videos keep their calibrated one."""
        if self.threshold is None or self.method == "cnn":
            return VideoMatchSettings()
        return VideoMatchSettings(frame_bits=self.index_settings.metric.to_bits(self.threshold, 64))

    @property
    def max_bits(self) -> int:
        """The threshold as a Hamming distance in bits (inclusive); for the CNN method, as
        a cosine distance in cnn_match units."""
        if self.method == "cnn":
            return max_units(DEFAULT_COSINE if self.threshold is None else self.threshold)
        n_bits = self.hash_settings.n_bits
        if self.threshold is None:
            if self.index_settings.metric.name == "chebyshev":
                return 0
            return default_threshold_bits(self.hash_settings)
        return self.index_settings.metric.to_bits(self.threshold, n_bits)

    @property
    def match_settings(self) -> MatchSettings:
        verify_bits = DEFAULT_VERIFY_BITS if self.verify and self.method == "hash" else 0
        return MatchSettings(self.max_bits, self.colour_check, self.colour_threshold, verify_bits=verify_bits)

    @property
    def effective_threshold(self) -> float:
        """The threshold in the metric's unit, as given or as derived from the default."""
        if self.threshold is not None:
            return float(self.threshold)
        if self.method == "cnn":
            return DEFAULT_COSINE
        return round(float(self.index_settings.metric.from_bits(self.max_bits)), 4)

    def for_folder(self, folder) -> CollectionOptions:
        """The same options on another images folder."""
        return replace(self, images_path=Path(folder))

    @property
    def metric(self):
        """Turns the plan's integer distances into the reports' distances."""
        return CosineUnits() if self.method == "cnn" else self.index_settings.metric


@dataclass(frozen=True)
class DeleteOptions:
    """What `delete` does with a plan."""

    output_path: Path
    safe_deletion: bool = True
    backup_keep: bool = False
    backup_duplicate: bool = True
    keep_policy: str = "resolution"
    reference: tuple[Path, ...] = ()  # folders whose files are never removed, kept first
    action: str = "move"  # actions.ACTIONS
    review: bool = True  # write review.html into the run folder (no thumbnails: `dedup review` makes them)

    @property
    def action_settings(self) -> actions.ActionSettings:
        # The original tool's --backup-duplicate n meant: unlink the duplicates.
        action = "delete" if self.action == "move" and not self.backup_duplicate else self.action
        return actions.ActionSettings(action, self.backup_duplicate, self.backup_keep)


@dataclass
class Collection:
    """A scanned and hashed folder: its images (`hashed`) and videos (`videos`)."""

    scan: ScanResult
    hashed: HashedFiles
    notes: list[str] = field(default_factory=list)
    videos: VideoCollection = field(default_factory=VideoCollection)
    embeddings: np.ndarray | None = None  # --method cnn: (files, 1280) float16, row i is hashed.paths[i]
    model_sha256: str = ""

    def matcher(self, options: CollectionOptions):
        """What decides which images are duplicates: hashes (similarity.Matcher) or
        embeddings (cnn_match). Videos have their own rule (plan_collection)."""
        if self.embeddings is not None:
            return EmbeddingMatcher(self.hashed, self.embeddings, options.match_settings)
        if options.match_settings.verify_bits:
            return VerifyingMatcher(self.hashed, options.match_settings, options.index_settings, options.workers)
        return Matcher(self.hashed, options.match_settings, options.index_settings, _pair_cache(options.cache_path))


def collect(options: CollectionOptions, exclude: tuple = (),
            on_progress: Callable[[int], None] | None = None,
            on_total: Callable[[int], None] | None = None,
            only: set[str] | None = None, extra_roots: tuple = ()) -> Collection:
    """Scan `options.images_path` and `extra_roots` (skipping `exclude`), hash every image
    and fingerprint every video found (or only those whose absolute path is in `only`),
    as options.media says, and under --method cnn embed the images too."""
    roots = [Path(options.images_path)] + [Path(r) for r in extra_roots if not _inside(r, options.images_path)]
    for root in roots:
        _check_images_root(root)
    scan = scan_images(roots[0], exclude=exclude)
    for root in roots[1:]:
        extra = scan_images(root, exclude=exclude)
        scan.files = sorted(set(scan.files) | set(extra.files))
        scan.videos = sorted(set(scan.videos) | set(extra.videos))
        scan.skipped.extend(extra.skipped)
    if only is not None:
        scan.files = [path for path in scan.files if str(path) in only]
        scan.videos = [path for path in scan.videos if str(path) in only]
    notes = _choose_media(scan, options.media)
    if on_total:
        on_total(len(scan.files) + len(scan.videos))
    # Before any work: a missing model stops the run at once (videos alone need none).
    model = open_model(options) if options.media != "video" else None
    if options.match_settings.verify_bits and options.media != "video":
        require_opencv()
    cache = _open_cache(options.cache_path)
    try:
        with hashing_pool(options) if scan.files else nullcontext() as pool:  # no cluster for no images
            hashed = hash_collection(scan.files, options.hash_settings, options.workers,
                                     options.batch_size, cache=cache, on_progress=on_progress, pool=pool)
        videos = fingerprint_collection(scan.videos, options.video_settings, options.workers, cache, on_progress)
        collection = Collection(scan=scan, hashed=hashed, notes=notes, videos=videos)
        if model is not None:
            if on_total:
                on_total(len(hashed.paths))
            _embed(collection, model, options, cache, on_progress)
    finally:
        if cache is not None:
            notes.extend(cache.warnings)
            cache.close()
    return collection


def open_model(options: CollectionOptions):
    """The checked CNN model for --method cnn (embedding.EmbeddingSettings), else None;
    raises cnn_model.ModelError saying what to install or build."""
    if options.method != "cnn":
        return None
    from dedup_cli.fingerprint.embedding import open_model as open_embedding_model

    return open_embedding_model(options.model_path)


def _embed(collection: Collection, model, options: CollectionOptions, cache, on_progress) -> None:
    """Add the embeddings of the hashed files; a file the network cannot take becomes a
    failure and leaves the collection."""
    from dedup_cli.fingerprint.embedding import embed_collection

    hashed = collection.hashed
    embeddings, failures, _ = embed_collection(hashed.paths, hashed.size, hashed.mtime_ns, model, options.workers,
                                               cache=cache, on_progress=on_progress)
    if failures:
        rows = [row for row, path in enumerate(hashed.paths) if path not in failures]
        kept = hashed.subset(rows)
        kept.failures = sorted(hashed.failures + list(failures.items()))
        kept.from_cache = hashed.from_cache
        collection.hashed, embeddings = kept, embeddings[rows]
    collection.embeddings, collection.model_sha256 = embeddings, model.model_sha256


@contextmanager
def hashing_pool(options: CollectionOptions):
    """A DaskPool on the cluster that `options` are connected to (see on_cluster), or on
    a cluster at options.scheduler for the hashing alone (None without one: local
    processes)."""
    from dedup_cli import distributed

    search = options.index_settings.cluster
    if search is not None:
        yield distributed.DaskPool(search.client)
    elif options.scheduler:
        with distributed.connect(options.scheduler) as client:
            yield distributed.DaskPool(client)
    else:
        yield None


@contextmanager
def on_cluster(options: CollectionOptions):
    """`options` connected to the Dask cluster at options.scheduler for the duration: the
    images are hashed there and their candidate pairs found there (IndexSettings.cluster);
    the same options without a scheduler."""
    if not options.scheduler or options.index_settings.cluster is not None:
        yield options
        return
    from dedup_cli import distributed

    with distributed.connect(options.scheduler) as client:
        yield replace(options, index_settings=replace(options.index_settings,
                                                      cluster=distributed.ClusterSearch(client)))


def _choose_media(scan: ScanResult, media: str) -> list[str]:
    """Leave out of `scan` what --media does not ask for; notes on what was left out.
    Raises InputError when videos are asked for and PyAV is missing."""
    if media not in MEDIA:
        raise InputError(f"--media must be one of {', '.join(MEDIA)}, not {media!r}")
    notes = []
    if media == "video":
        scan.files = []
    if media == "image" and scan.videos:
        animated = sum(1 for path in scan.videos if is_animation_name(path))
        of_them = f" ({animated} of them animated GIF/WebP)" if animated else ""
        notes.append(f"{len(scan.videos)} videos{of_them} not looked at (--media video or all to include them)")
        scan.videos = []
    # Animated GIF and WebP are decoded by Pillow: only the other videos need PyAV.
    needs_av = [path for path in scan.videos if not is_animation_name(path)]
    if needs_av and not av_available():
        if media == "video":
            raise InputError(f"--media video needs PyAV: {AV_MISSING}")
        notes.append(f"{len(needs_av)} videos not looked at: {AV_MISSING}")
        scan.skipped.extend((str(path), AV_MISSING) for path in needs_av)
        scan.videos = [path for path in scan.videos if is_animation_name(path)]
    return notes


def _check_images_root(root: Path) -> None:
    if not root.is_dir():
        raise InputError(f"Images folder '{root}' does not exist or is not a folder")
    if any(_marked(folder) for folder in (root.absolute(), *root.absolute().parents)):
        raise InputError(f"'{root}' is inside a dedup output folder (it holds backups and reports); "
                         "point --images-path at your images instead")


def _marked(folder: Path) -> bool:
    try:
        return (folder / OUTPUT_MARKER).exists()
    except OSError:  # a folder above that cannot be searched holds no marker of ours
        return False


def _inside(path, folder) -> bool:
    """True when `path` is `folder` or lies below it (both resolved)."""
    path, folder = Path(path).resolve(), Path(folder).resolve()
    return path == folder or folder in path.parents


def check_output_path(images_path, output_path) -> None:
    """Refuse an output folder that is the images folder or lies above it: its marker
    would make dedup refuse that folder in every later run, and the run folders would
    sit among the pictures. (Inside the images folder is fine: it is never scanned.)"""
    if output_path is not None and _inside(images_path, output_path):
        raise InputError(f"--output-path '{output_path}' is the images folder or a folder above it; "
                         "choose a folder elsewhere (or a new subfolder, which dedup will never scan)")


def _pair_cache(cache_path):
    """Where duplicate pairs are kept between runs: a folder beside the hash cache (its name
    and .pairs), and only with it."""
    if cache_path is None:
        return None
    from dedup_cli.fingerprint.cache import PairCache

    return PairCache(Path(cache_path).with_name(Path(cache_path).name + ".pairs"))


def _open_cache(cache_path):
    if cache_path is None:
        return None
    from dedup_cli.fingerprint.cache import HashCache

    return HashCache(cache_path)


def settings_dict(options: CollectionOptions) -> dict:
    """The settings of a run as plain data for report.json."""
    metric = options.index_settings.metric
    return {
        "images_path": str(Path(options.images_path).absolute()),
        "method": options.method,
        "hash_algorithm": options.hash_settings.algorithm,
        "hash_size": options.hash_settings.hash_size,
        "tree_type": options.index_settings.tree_type,
        "leaf_size": options.index_settings.leaf_size,
        "distance_metric": options.metric.name,
        "minkowski_p": metric.p if metric.name == "minkowski" else None,
        "threshold": options.effective_threshold,
        "threshold_bits": options.max_bits,
        "isometric": options.hash_settings.isometric,
        "video_mirror": options.video_mirror,
        "views": options.hash_settings.views,
        "verify": options.verify,
        "verify_bits": options.match_settings.verify_bits,
        "colour_check": options.colour_check,
        "colour_threshold": options.colour_threshold,
        "full_decode": options.hash_settings.full_decode,
        "nearest_neighbors": options.nearest_neighbors,
        "media": options.media,
        "video_frame_bits": options.video_match.frame_bits,
        "video_min_coverage": options.video_match.min_coverage,
    }


@dataclass
class DeleteResult:
    """What `delete` found, decided, did and wrote."""

    collection: Collection
    plan: Plan
    report: report.DeleteReport
    run_folder: Path
    files: dict


def run_delete(options: CollectionOptions, delete: DeleteOptions,
               on_progress=None, on_total=None) -> DeleteResult:
    """Find duplicates, write the run folder and, only when safe_deletion is False,
    move or delete the duplicates (see actions.carry_out). A real run holds the images
    folder's lock (lock.FolderLock) from before the scan to the end of its actions."""
    check_output_path(options.images_path, delete.output_path)
    if delete.safe_deletion:
        return _plan_and_act(options, delete, on_progress, on_total)
    from dedup_cli.act.lock import FolderLock

    with FolderLock(options.images_path, "delete"):
        return _plan_and_act(options, delete, on_progress, on_total)


def _plan_and_act(options, delete, on_progress, on_total) -> DeleteResult:
    with on_cluster(options) as connected:
        collection = collect(connected, exclude=(delete.output_path,), on_progress=on_progress, on_total=on_total,
                             extra_roots=delete.reference)
        planned = plan_collection(collection, connected, delete.keep_policy, delete.reference)
    hashed, plan = planned.hashed, planned.plan
    run_folder = runs.create_run_folder(delete.output_path, "delete")
    outcomes = []
    if not delete.safe_deletion and plan.removals:
        # The plan is on disk before the first action, so that `dedup apply` can finish a
        # run that was killed and `dedup undo` knows which folder to lock.
        acting = _delete_report(options, delete, collection, planned, [], state="acting")
        runs.write_json(run_folder / "report.json", acting.to_json())
        steps, keeps = actions.plan_steps(plan, hashed)
        outcomes = actions.carry_out(steps, keeps, Path(options.images_path).absolute(), run_folder,
                                     delete.action_settings)
    delete_report = _delete_report(options, delete, collection, planned, outcomes)
    files, written = report.write_delete_report(run_folder, delete_report, _size_label(options),
                                                options.effective_threshold)
    if delete.review:
        files.update(_review_page(run_folder, written, collection.notes))
    return DeleteResult(collection, plan, delete_report, run_folder, files)


@dataclass
class PlannedCollection:
    """The plan of a collection's images and videos, over one HashedFiles: its images'
    rows first, then its videos' (from `first_video` on). `links`: the row pairs the
    matchers call duplicates (when asked for); `partners`: per video row, the video rows
    it pairs with (the video rule is not a distance between two hashes, so reports list
    the pairs themselves)."""

    hashed: HashedFiles
    plan: Plan
    first_video: int
    links: tuple[np.ndarray, np.ndarray] | None = None
    partners: dict[int, set[int]] = field(default_factory=dict)


def plan_collection(collection: Collection, options: CollectionOptions, policy: str = "resolution",
                    reference_folders=(), with_links: bool = False) -> PlannedCollection:
    """Group and plan the images (by the collection's matcher: hashes, or embeddings under
    --method cnn) and the videos (plan/video.py, whatever the method) of a collection; a
    video never pairs with an image. The plan's invariants are checked per part, each
    against its own threshold."""
    hashed = collection.hashed
    reference = reference_mask(hashed.paths, reference_folders)
    matcher = collection.matcher(options)
    links = matcher.pairs()[:2] if with_links else None
    plan = make_plan(hashed, options.match_settings, options.index_settings, policy, matcher, reference=reference)
    collection.notes.extend(getattr(matcher, "notes", ()))
    _check_plan(plan, reference)
    planned = PlannedCollection(hashed, plan, len(hashed.paths), links)
    if collection.videos.prints:
        _add_videos(planned, collection.videos, options, policy, reference_folders)
    return planned


def _add_videos(planned: PlannedCollection, videos: VideoCollection, options, policy, reference_folders) -> None:
    """Plan the videos and append their rows and groups to `planned`."""
    images = planned.hashed
    video_rows, pairs, matcher = plan_video_rows(videos, images, options.video_match, options.video_mirror)
    reference = reference_mask(video_rows.paths, reference_folders)
    plan = make_plan(video_rows, MatchSettings(options.video_match.max_bits), options.index_settings, policy,
                     matcher, reference=reference, order=video_keep_order(videos.prints))
    _check_plan(plan, reference)
    offset = planned.first_video
    planned.hashed = join_hashed(images, video_rows)
    planned.plan.groups.extend(
        Group(tuple(row + offset for row in group.keep),
              tuple(replace(r, row=r.row + offset, nearest_keep=r.nearest_keep + offset) for r in group.remove))
        for group in plan.groups)
    planned.plan.groups.sort(key=lambda group: planned.hashed.paths[group.keep[0]])
    for pair in pairs:
        planned.partners.setdefault(pair.first + offset, set()).add(pair.second + offset)
        planned.partners.setdefault(pair.second + offset, set()).add(pair.first + offset)
    if planned.links is not None:
        first, second, _ = matcher.pairs()
        planned.links = (np.concatenate([planned.links[0], first + offset]),
                         np.concatenate([planned.links[1], second + offset]))


def _review_page(run_folder: Path, report_data: dict, notes: list[str]) -> dict:
    """Write review.html from the data of the report.json just written, so the page and
    report.json agree on every fact; {"review": path}, or {} with a note when it cannot be written (a page
    is a convenience, never a reason to fail a run)."""
    from dedup_cli.present.review import write_review_page

    try:
        page = write_review_page(run_folder, report_data)
    except OSError as exc:
        notes.append(f"Cannot write review.html in '{run_folder}': {exc} (try `dedup review {run_folder}`)")
        return {}
    return {"review": str(page)}


def _size_label(options: CollectionOptions):
    """The `<size>` of the report file names: the hash size, or cnn."""
    return "cnn" if options.method == "cnn" else options.hash_settings.hash_size


def reference_mask(paths: list[str], reference_folders) -> np.ndarray | None:
    """True for each path under one of `reference_folders` (None when there are none)."""
    if not reference_folders:
        return None
    folders = [str(Path(folder).absolute()).rstrip(os.sep) + os.sep for folder in reference_folders]
    return np.array([any(path.startswith(folder) for folder in folders) for path in paths], dtype=bool)


def _check_plan(plan: Plan, reference=None) -> None:
    """Rule 2 and the reference folders, for a plan whose removals all stand on one
    threshold (plan.max_bits)."""
    # The invariants of rule 2, checked again here as code rather than trusted (not with
    # assert, which python -O would strip).
    for group in plan.groups:
        justified = all(r.nearest_keep in group.keep and _within(r, plan) for r in group.remove)
        if not group.keep or not justified:
            raise RuntimeError("internal error: a planned removal has no kept file within the threshold")
        if reference is not None and any(reference[r.row] for r in group.remove):
            raise RuntimeError("internal error: a file in a reference folder was planned for removal")


def _within(removal: Removal, plan: Plan) -> bool:
    """Rule 2: within the threshold, or a near miss that features verified (--verify)."""
    if removal.bits <= plan.max_bits:
        return True
    return removal.bits <= plan.max_bits + plan.verify_bits and removal.view.endswith(f", {FEATURES_LABEL}")


def _delete_report(options, delete, collection, planned: PlannedCollection, outcomes,
                   state: str = "") -> report.DeleteReport:
    hashed, plan = planned.hashed, planned.plan
    metric = options.metric
    settings = settings_dict(options) | {k: v for k, v in asdict(delete).items()
                                         if k not in ("output_path", "reference")}
    settings["output_path"] = str(Path(delete.output_path).absolute())
    settings["reference"] = [str(Path(folder).absolute()) for folder in delete.reference]
    settings["action"] = delete.action_settings.action
    if collection.model_sha256:
        settings["model_sha256"] = collection.model_sha256
    removals = plan.removals
    done = [o for o in outcomes if o.status == "done" and o.action in actions.ACTIONS]
    images = collection.hashed
    videos = collection.videos
    summary = {
        "scanned": len(collection.scan.files),
        "hashed": len(images.paths),
        "from_cache": images.from_cache,
        "unreadable": len(images.failures),
        "groups": len(plan.groups),
        "keep": sum(len(g.keep) for g in plan.groups),
        "remove": len(removals),
        "bytes_to_free": int(sum(int(hashed.size[r.row]) for r in removals)),
        "dry_run": delete.safe_deletion,
        "state": state or ("dry-run" if delete.safe_deletion else "done"),
        "removed": len(done),
        "skipped_actions": sum(1 for o in outcomes if o.status != "done"),
        "videos": {
            "scanned": len(collection.scan.videos),
            "fingerprinted": len(videos.prints),
            "from_cache": videos.from_cache,
            "unreadable": len(videos.failures),
            "groups": sum(1 for g in plan.groups if g.keep[0] >= planned.first_video),
            "remove": sum(1 for r in removals if r.row >= planned.first_video),
        },
    }
    return report.DeleteReport(
        settings=settings,
        summary=summary,
        groups=_report_groups(planned, metric, options.index_settings.metric),
        unreadable=[{"path": p, "reason": r} for p, r in sorted(images.failures + videos.failures)],
        skipped=[{"path": p, "reason": r} for p, r in collection.scan.skipped],
        actions=[o.to_json() for o in outcomes],
    )


def _report_groups(planned: PlannedCollection, metric, frame_metric) -> list[dict]:
    """report.build_groups, with each video group marked and each of its files listing the
    videos it pairs with and its length in duration steps (what `apply --decisions` may
    stand a removal on: a paired video at least as long). `metric` turns the images' plan
    distances into report distances (cosine units under --method cnn), `frame_metric` the
    videos' (frame hash bits, whatever the method)."""
    groups = report.build_groups(planned.plan, planned.hashed, metric)
    paths = planned.hashed.paths
    length_steps = planned.hashed.frames
    for entry, group in zip(groups, planned.plan.groups):  # noqa: B905
        if group.keep[0] < planned.first_video:
            continue
        entry["media"] = "video"
        for member in entry["remove"]:
            member["distance"] = round(float(frame_metric.from_bits(member["bits"])), 6)
        rows = (*group.keep, *(removal.row for removal in group.remove))  # build_groups' order
        for member, row in zip((*entry["keep"], *entry["remove"]), rows):  # noqa: B905
            member["pairs_with"] = sorted(paths[other] for other in planned.partners.get(row, ()))
            member["length_steps"] = int(length_steps[row])
    return groups


@dataclass(frozen=True)
class Match:
    """One search hit."""

    path: str
    bits: int
    distance: float
    width: int
    height: int
    view: str | None = None  # with --views: which views matched (Matcher.matches_views), else None


@dataclass
class SearchResult:
    """Matches of one query file (`query`, `matches`), or of every image of a query
    folder (`queries`: query path -> its matches; `unreadable`: query images that failed)."""

    query: str
    matches: list[Match]
    collection: Collection
    queries: dict[str, list[Match]] | None = None
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    media: str = "image"  # what the query is: an image (or folder of images) or a video
    views: bool = False  # the images were matched in their views too: each Match names its views


def run_search(options: CollectionOptions, query_path: Path, on_progress=None, on_total=None) -> SearchResult:
    """Images under images_path within the threshold of `query_path`, nearest first, at
    most nearest_neighbors of them, the query file itself excluded. A folder as
    `query_path`: every image in it is a query (a test set against a training set)."""
    query_path = Path(query_path)
    if query_path.is_dir():
        with on_cluster(options) as connected:
            return _search_folder(connected, query_path, on_progress, on_total)
    if is_video_name(query_path.name) or (is_animation_name(query_path.name) and is_animated(query_path)):
        return _search_video(options, query_path, on_progress, on_total)
    if _searches_views(options):
        queries = _hash_query(options, query_path)  # said before any cluster starts
        with on_cluster(options) as connected:
            return _search_image_views(connected, query_path, queries, on_progress, on_total)
    record = hash_file(str(query_path), options.hash_settings)
    if record.packed_bits is None:  # said before any cluster starts
        raise UnreadableImage(query_path, record.error)
    query_embedding = _embed_query(options, str(query_path))
    with on_cluster(options) as connected:
        return _search_image(connected, query_path, record, query_embedding, on_progress, on_total)


def _search_image(options, query_path: Path, record, query_embedding, on_progress, on_total) -> SearchResult:
    """One image, hashed (`record`) and perhaps embedded, against the collection (by
    hashes or, under --method cnn, by embeddings)."""
    collection = collect(options, on_progress=on_progress, on_total=on_total)
    hashed = collection.hashed
    colour = np.frombuffer(record.colour, dtype=np.uint8)
    if query_embedding is not None:
        _, rows, bits = collection.matcher(options).matches_many(query_embedding[None], colour[None],
                                                                 np.array([[record.width, record.height]]))
    else:
        orientations = np.frombuffer(record.packed_bits + (record.variants or b""), dtype=np.uint8)
        rows, bits = collection.matcher(options).matches(orientations.reshape(-1, hashed.packed.shape[1]), colour)
    matches = _matches(options, hashed, str(query_path), rows, bits)
    return SearchResult(str(query_path.absolute()), matches, collection)


def _searches_views(options: CollectionOptions) -> bool:
    """Whether images are searched in their views (--views y with hashes; the CNN method
    compares embeddings of the whole pictures)."""
    return options.hash_settings.views and options.method == "hash"


def _hash_query(options, query_path: Path) -> HashedFiles:
    """The query image hashed as the library is, its views too (from the cache when it
    holds them); UnreadableImage when it cannot be."""
    cache = _open_cache(options.cache_path)
    try:
        queries = hash_collection([query_path], options.hash_settings, cache=cache)
    finally:
        if cache is not None:
            cache.close()
    if queries.failures:
        raise UnreadableImage(query_path, queries.failures[0][1])
    return queries


def _search_image_views(options, query_path: Path, queries: HashedFiles, on_progress, on_total) -> SearchResult:
    """One image query (`queries`, hashed in its views) against the collection, matched
    as a query folder's images are."""
    collection = collect(options, on_progress=on_progress, on_total=on_total)
    matches = _view_queries(options, queries, collection)[queries.paths[0]]
    return SearchResult(str(query_path.absolute()), matches, collection, views=True)


def _view_queries(options, queries: HashedFiles, collection: Collection) -> dict[str, list[Match]]:
    """The matches of each of `queries` in the collection by the views rule of delete
    (Matcher.matches_views), nearest first, each naming the views that matched."""
    query_rows, rows, bits, views = collection.matcher(options).matches_views(queries)
    return _by_query(options, collection.hashed, queries.paths, query_rows, rows, bits, views)


def _by_query(options, hashed, paths: list[str], query_rows, rows, bits, views=None) -> dict[str, list[Match]]:
    """The search hits of each query path, from matches sorted by query row (_matches)."""
    starts = np.searchsorted(query_rows, np.arange(len(paths) + 1))
    return {path: _matches(options, hashed, path, rows[starts[q]:starts[q + 1]], bits[starts[q]:starts[q + 1]],
                           None if views is None else views[starts[q]:starts[q + 1]])
            for q, path in enumerate(paths)}


def _embed_query(options: CollectionOptions, path: str) -> np.ndarray | None:
    """The query's embedding for --method cnn (None for hashes); UnreadableImage if the
    network cannot take it."""
    model = open_model(options)
    if model is None:
        return None
    from dedup_cli.fingerprint.embedding import embed_many

    record = embed_many([path], model)[0]
    if record.vector is None:
        raise UnreadableImage(path, record.error)
    return np.frombuffer(record.vector, dtype=np.float16)
def _search_video(options, query_path: Path, on_progress, on_total) -> SearchResult:
    """The videos under images_path that are one video with the query video, nearest
    (median frame distance) first, then by how much of the shorter one lines up."""
    if options.media == "image":
        what = "an animated GIF/WebP (a short video)" if is_animation_name(query_path) else "a video"
        raise InputError(f"'{query_path}' is {what} and --media image leaves videos out; use --media video or all")
    if not is_animation_name(query_path) and not av_available():
        raise InputError(f"A video query needs PyAV: {AV_MISSING}")
    query = fingerprint_video(str(query_path), options.video_settings)
    if query.error:
        raise UnreadableImage(query_path, query.error)
    # A video only ever matches videos: the images are not hashed for it.
    collection = collect(replace(options, media="video"), on_progress=on_progress, on_total=on_total)
    prints = collection.videos.prints
    pairs = query_pairs(query, prints, options.video_match, options.video_mirror)
    matches = _video_matches(options, prints, query_path, pairs)
    return SearchResult(str(query_path.absolute()), matches, collection, media="video")


def _video_matches(options, prints, query_path: Path, pairs) -> list[Match]:
    """Search hits of one video query: nearest (median frame distance) first, then by
    how much lines up; the query file itself left out, at most k of them."""
    pairs = sorted(pairs, key=lambda pair: (pair.bits, -pair.coverage, prints[pair.first].path))
    metric = options.index_settings.metric
    matches = [Match(prints[pair.first].path, pair.bits, float(metric.from_bits(pair.bits)),
                     prints[pair.first].info.width, prints[pair.first].info.height)
               for pair in pairs if not _same_file(prints[pair.first].path, query_path)]
    return matches[: options.nearest_neighbors]


def _matches(options, hashed, query: str, rows, bits, views=None) -> list[Match]:
    """Search hits for one query: the query file itself left out, at most k of them;
    `views` names the views of each hit (None: not searched in views)."""
    metric = options.metric
    found = []
    for at, (row, distance) in enumerate(zip(rows.tolist(), bits.tolist())):  # noqa: B905
        if len(found) == options.nearest_neighbors:
            break
        if _same_file(hashed.paths[row], Path(query)):
            continue
        found.append(Match(hashed.paths[row], distance, float(metric.from_bits(distance)),
                           int(hashed.width[row]), int(hashed.height[row]), None if views is None else views[at]))
    return found


def _search_folder(options, folder: Path, on_progress, on_total) -> SearchResult:
    """Every image and video under `folder` (as --media says) against the collection:
    the images in one batch (by hashes or, under --method cnn, by embeddings), each video
    by its own frames."""
    query_collection = collect(options.for_folder(folder))
    queries = query_collection.hashed
    collection = collect(options, on_progress=on_progress, on_total=on_total)
    views = _searches_views(options)
    if not queries.paths:
        by_query = {}
    elif views:
        by_query = _view_queries(options, queries, collection)
    else:
        by_query = _image_queries(options, query_collection, collection)
    prints = collection.videos.prints
    video_queries = query_collection.videos.prints
    for query, pairs in zip(video_queries, query_pairs_many(video_queries, prints, options.video_match,  # noqa: B905
                                                             options.video_mirror)):
        by_query[query.path] = _video_matches(options, prints, Path(query.path), pairs)
    return SearchResult(str(folder.absolute()), [], collection, queries=by_query, views=views,
                        unreadable=queries.failures + query_collection.videos.failures + query_collection.scan.skipped)


def _image_queries(options, query_collection: Collection, collection: Collection) -> dict[str, list[Match]]:
    queries, hashed = query_collection.hashed, collection.hashed
    if query_collection.embeddings is not None:
        query_rows, rows, bits = collection.matcher(options).matches_many(
            query_collection.embeddings, queries.colour, np.column_stack([queries.width, queries.height]))
    else:
        orientations = queries.packed[:, None, :]
        if queries.variants is not None:
            orientations = np.concatenate([orientations, queries.variants], axis=1)
        query_rows, rows, bits = collection.matcher(options).matches_many(orientations, queries.colour)
    return _by_query(options, hashed, queries.paths, query_rows, rows, bits)


def _same_file(path: str, other: Path) -> bool:
    try:
        return os.path.samefile(path, other)
    except OSError:
        return False
