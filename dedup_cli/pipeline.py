"""The commands as library functions: scan -> hash -> index -> plan -> act -> report.

Each function takes small frozen option objects and returns a result object; only
cli.py turns those into text and exit codes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from dedup_cli import runs
from dedup_cli.act import actions
from dedup_cli.errors import InputError, UnreadableImage
from dedup_cli.fingerprint.hashing import HashedFiles, HashSettings, default_workers, hash_collection, hash_file
from dedup_cli.media.scan import OUTPUT_MARKER, ScanResult, scan_images
from dedup_cli.plan.grouping import Plan, make_plan
from dedup_cli.plan.similarity import DEFAULT_COLOUR_THRESHOLD, Matcher, MatchSettings
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

    @property
    def max_bits(self) -> int:
        """The threshold as a Hamming distance in bits (inclusive)."""
        n_bits = self.hash_settings.n_bits
        if self.threshold is None:
            if self.index_settings.metric.name == "chebyshev":
                return 0
            return default_threshold_bits(self.hash_settings)
        return self.index_settings.metric.to_bits(self.threshold, n_bits)

    @property
    def match_settings(self) -> MatchSettings:
        return MatchSettings(self.max_bits, self.colour_check, self.colour_threshold)

    @property
    def effective_threshold(self) -> float:
        """The threshold in the metric's unit, as given or as derived from the default."""
        if self.threshold is not None:
            return float(self.threshold)
        return round(float(self.index_settings.metric.from_bits(self.max_bits)), 4)


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

    @property
    def action_settings(self) -> actions.ActionSettings:
        # The original tool's --backup-duplicate n meant: unlink the duplicates.
        action = "delete" if self.action == "move" and not self.backup_duplicate else self.action
        return actions.ActionSettings(action, self.backup_duplicate, self.backup_keep)


@dataclass
class Collection:
    """A scanned and hashed folder."""

    scan: ScanResult
    hashed: HashedFiles
    notes: list[str] = field(default_factory=list)


def collect(options: CollectionOptions, exclude: tuple = (),
            on_progress: Callable[[int], None] | None = None,
            on_total: Callable[[int], None] | None = None,
            only: set[str] | None = None, extra_roots: tuple = ()) -> Collection:
    """Scan `options.images_path` and `extra_roots` (skipping `exclude`) and hash every
    image found (or only those whose absolute path is in `only`)."""
    roots = [Path(options.images_path)] + [Path(r) for r in extra_roots if not _inside(r, options.images_path)]
    for root in roots:
        _check_images_root(root)
    scan = scan_images(roots[0], exclude=exclude)
    for root in roots[1:]:
        extra = scan_images(root, exclude=exclude)
        scan.files = sorted(set(scan.files) | set(extra.files))
        scan.skipped.extend(extra.skipped)
    if only is not None:
        scan.files = [path for path in scan.files if str(path) in only]
    if on_total:
        on_total(len(scan.files))
    notes: list[str] = []
    cache = _open_cache(options.cache_path)
    try:
        hashed = hash_collection(scan.files, options.hash_settings, options.workers,
                                 options.batch_size, cache=cache, on_progress=on_progress)
    finally:
        if cache is not None:
            notes.extend(cache.warnings)
            cache.close()
    return Collection(scan=scan, hashed=hashed, notes=notes)


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
        "hash_algorithm": options.hash_settings.algorithm,
        "hash_size": options.hash_settings.hash_size,
        "tree_type": options.index_settings.tree_type,
        "leaf_size": options.index_settings.leaf_size,
        "distance_metric": metric.name,
        "minkowski_p": metric.p if metric.name == "minkowski" else None,
        "threshold": options.effective_threshold,
        "threshold_bits": options.max_bits,
        "isometric": options.hash_settings.isometric,
        "views": options.hash_settings.views,
        "colour_check": options.colour_check,
        "colour_threshold": options.colour_threshold,
        "full_decode": options.hash_settings.full_decode,
        "nearest_neighbors": options.nearest_neighbors,
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
    collection = collect(options, exclude=(delete.output_path,), on_progress=on_progress, on_total=on_total,
                         extra_roots=delete.reference)
    hashed = collection.hashed
    reference = reference_mask(hashed.paths, delete.reference)
    plan = make_plan(hashed, options.match_settings, options.index_settings, delete.keep_policy,
                     reference=reference)
    _check_plan(plan, reference)
    run_folder = runs.create_run_folder(delete.output_path, "delete")
    outcomes = []
    if not delete.safe_deletion and plan.removals:
        # The plan is on disk before the first action, so that `dedup apply` can finish a
        # run that was killed and `dedup undo` knows which folder to lock.
        planned = _delete_report(options, delete, collection, plan, [], state="acting")
        runs.write_json(run_folder / "report.json", planned.to_json())
        steps, keeps = actions.plan_steps(plan, hashed)
        outcomes = actions.carry_out(steps, keeps, Path(options.images_path).absolute(), run_folder,
                                     delete.action_settings)
    delete_report = _delete_report(options, delete, collection, plan, outcomes)
    files = report.write_delete_report(run_folder, delete_report, options.hash_settings.hash_size,
                                       options.effective_threshold)
    return DeleteResult(collection, plan, delete_report, run_folder, files)


def reference_mask(paths: list[str], reference_folders) -> np.ndarray | None:
    """True for each path under one of `reference_folders` (None when there are none)."""
    if not reference_folders:
        return None
    folders = [str(Path(folder).absolute()).rstrip(os.sep) + os.sep for folder in reference_folders]
    return np.array([any(path.startswith(folder) for folder in folders) for path in paths], dtype=bool)


def _check_plan(plan: Plan, reference=None) -> None:
    # The invariants of rule 2, checked again here as code rather than trusted (not with
    # assert, which python -O would strip).
    for group in plan.groups:
        justified = all(r.nearest_keep in group.keep and r.bits <= plan.max_bits for r in group.remove)
        if not group.keep or not justified:
            raise RuntimeError("internal error: a planned removal has no kept file within the threshold")
        if reference is not None and any(reference[r.row] for r in group.remove):
            raise RuntimeError("internal error: a file in a reference folder was planned for removal")


def _delete_report(options, delete, collection, plan, outcomes, state: str = "") -> report.DeleteReport:
    hashed = collection.hashed
    metric = options.index_settings.metric
    settings = settings_dict(options) | {k: v for k, v in asdict(delete).items()
                                         if k not in ("output_path", "reference")}
    settings["output_path"] = str(Path(delete.output_path).absolute())
    settings["reference"] = [str(Path(folder).absolute()) for folder in delete.reference]
    settings["action"] = delete.action_settings.action
    removals = plan.removals
    done = [o for o in outcomes if o.status == "done" and o.action in actions.ACTIONS]
    summary = {
        "scanned": len(collection.scan.files),
        "hashed": len(hashed.paths),
        "from_cache": hashed.from_cache,
        "unreadable": len(hashed.failures),
        "groups": len(plan.groups),
        "keep": sum(len(g.keep) for g in plan.groups),
        "remove": len(removals),
        "bytes_to_free": int(sum(int(hashed.size[r.row]) for r in removals)),
        "dry_run": delete.safe_deletion,
        "state": state or ("dry-run" if delete.safe_deletion else "done"),
        "removed": len(done),
        "skipped_actions": sum(1 for o in outcomes if o.status != "done"),
    }
    return report.DeleteReport(
        settings=settings,
        summary=summary,
        groups=report.build_groups(plan, hashed, metric),
        unreadable=[{"path": p, "reason": r} for p, r in hashed.failures],
        skipped=[{"path": p, "reason": r} for p, r in collection.scan.skipped],
        actions=[o.to_json() for o in outcomes],
    )


@dataclass(frozen=True)
class Match:
    """One search hit."""

    path: str
    bits: int
    distance: float
    width: int
    height: int


@dataclass
class SearchResult:
    """Matches of one query file (`query`, `matches`), or of every image of a query
    folder (`queries`: query path -> its matches; `unreadable`: query images that failed)."""

    query: str
    matches: list[Match]
    collection: Collection
    queries: dict[str, list[Match]] | None = None
    unreadable: list[tuple[str, str]] = field(default_factory=list)


def run_search(options: CollectionOptions, query_path: Path, on_progress=None, on_total=None) -> SearchResult:
    """Images under images_path within the threshold of `query_path`, nearest first, at
    most nearest_neighbors of them, the query file itself excluded. A folder as
    `query_path`: every image in it is a query (a test set against a training set)."""
    query_path = Path(query_path)
    if query_path.is_dir():
        return _search_folder(options, query_path, on_progress, on_total)
    record = hash_file(str(query_path), options.hash_settings)
    if record.packed_bits is None:
        raise UnreadableImage(query_path, record.error)
    collection = collect(options, on_progress=on_progress, on_total=on_total)
    hashed = collection.hashed
    orientations = np.frombuffer(record.packed_bits + (record.variants or b""), dtype=np.uint8)
    rows, bits = Matcher(hashed, options.match_settings, options.index_settings).matches(
        orientations.reshape(-1, hashed.packed.shape[1]), np.frombuffer(record.colour, dtype=np.uint8))
    matches = _matches(options, hashed, str(query_path), rows, bits)
    return SearchResult(str(query_path.absolute()), matches, collection)


def _matches(options, hashed, query: str, rows, bits) -> list[Match]:
    """Search hits for one query: the query file itself left out, at most k of them."""
    metric = options.index_settings.metric
    found = []
    for row, distance in zip(rows.tolist(), bits.tolist()):  # noqa: B905
        if len(found) == options.nearest_neighbors:
            break
        if _same_file(hashed.paths[row], Path(query)):
            continue
        found.append(Match(hashed.paths[row], distance, float(metric.from_bits(distance)),
                           int(hashed.width[row]), int(hashed.height[row])))
    return found


def _search_folder(options, folder: Path, on_progress, on_total) -> SearchResult:
    """Every image under `folder` against the collection, in one batch."""
    scan = scan_images(folder)
    cache = _open_cache(options.cache_path)
    try:
        queries = hash_collection(scan.files, options.hash_settings, options.workers, options.batch_size, cache=cache)
    finally:
        if cache is not None:
            cache.close()
    collection = collect(options, on_progress=on_progress, on_total=on_total)
    hashed = collection.hashed
    orientations = queries.packed[:, None, :]
    if queries.variants is not None:
        orientations = np.concatenate([orientations, queries.variants], axis=1)
    query_rows, rows, bits = Matcher(hashed, options.match_settings, options.index_settings).matches_many(
        orientations, queries.colour)
    starts = np.searchsorted(query_rows, np.arange(len(queries.paths) + 1))
    by_query = {path: _matches(options, hashed, path, rows[starts[q]:starts[q + 1]], bits[starts[q]:starts[q + 1]])
                for q, path in enumerate(queries.paths)}
    return SearchResult(str(folder.absolute()), [], collection, queries=by_query,
                        unreadable=queries.failures + scan.skipped)


def _same_file(path: str, other: Path) -> bool:
    try:
        return os.path.samefile(path, other)
    except OSError:
        return False
