"""The review page of a delete run: review.html (and its thumbs/) beside report.json.

The page shows every group of the plan (kept file and duplicates side by side, with the
facts and the reasons), lets a person flip keep/remove per file (never leaving a group
with nothing) and saves decisions.json in the format `dedup apply RUN --decisions` reads.
It works offline from the file system: the data is embedded in the page, pictures are
JPEG thumbnails in thumbs/ or, where there are none, the files themselves through
relative links.

Every delete run writes the page without reading a picture (see write_review_page);
`dedup review RUN` makes the thumbnails (write_review), which costs a second decode of
every file in a group. Writes only inside the run folder.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from dedup_cli.errors import InputError

REVIEW_PAGE = "review.html"
THUMBS_FOLDER = "thumbs"
THUMB_SIDE = 256  # fits a tile at 1x and is sharp enough at 2x zoom
THUMB_QUALITY = 75
THUMB_DECODE_SIDE = 128  # the shorter side hashing decodes pHash 8 at: no more pixels for a thumbnail
_POOL_MIN_JOBS = 24  # below this a worker pool costs more to start than it saves
_HEX_DIGEST = re.compile(r"[0-9a-f]{16,128}")

FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".jfif": "JPEG", ".png": "PNG", ".gif": "GIF",
           ".bmp": "BMP", ".dib": "BMP", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WebP", ".heic": "HEIC",
           ".heif": "HEIF", ".hif": "HEIF", ".avif": "AVIF"}
LOSSLESS_BY_NAME = frozenset({"PNG", "GIF", "BMP", "TIFF"})
LOSSY_BY_NAME = frozenset({"JPEG", "HEIC", "HEIF", "AVIF"})  # WebP can be either: unknown from the name

# The keep order of grouping.keep_order, criterion by criterion, per --keep policy.
POLICY_CRITERIA = {
    "resolution": ("pixels", "better", "size", "older", "path"),
    "size": ("size", "pixels", "better", "older", "path"),
    "oldest": ("older", "pixels", "better", "size", "path"),
    "newest": ("newer", "pixels", "better", "size", "path"),
    "path": ("path",),
}
CRITERION_NAMES = {"pixels": "most pixels", "better": "the better copy (colour, bit depth, lossless format, "
                   "animation frames)", "size": "the larger file", "older": "the older file",
                   "newer": "the newer file", "path": "the path that sorts first"}


@dataclass
class ReviewResult:
    """What writing a review page did."""

    page: Path
    thumbnails_made: int = 0
    thumbnails_reused: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, why no thumbnail)


def write_review(run: str | os.PathLike, workers: int = 1) -> ReviewResult:
    """`dedup review RUN`: make the thumbnails that thumbs/ lacks for the files in the
    groups of a delete run (`run`: its folder or its report.json), then write review.html
    again to use them (writes to disk, inside the run folder only)."""
    from dedup_cli.runs import find_report, read_report

    report_path = find_report(run)
    try:
        report = read_report(report_path)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    result = make_thumbnails(report_path.parent, report, workers)
    write_review_page(report_path.parent, report)
    return result


def write_review_page(run_folder: Path, report: dict) -> Path:
    """Write review.html into `run_folder` from `report` (replacing a page there) and
    return it. Reads no picture: files with a thumbnail in thumbs/ show it, the others
    are linked as they are, so this is cheap enough for every run."""
    from dedup_cli.present.pages import render, save_page

    page = Path(run_folder) / REVIEW_PAGE
    save_page(page, render(REVIEW_PAGE, page_data(Path(run_folder), report)))
    return page


def open_in_browser(page: Path) -> bool:
    """Open `page` in the default web browser; False when there is none (no error)."""
    import webbrowser

    from dedup_cli.present.pages import file_uri

    try:
        return bool(webbrowser.open(file_uri(page)))
    except webbrowser.Error:
        return False


# --- thumbnails -------------------------------------------------------------------------

def thumbnail_key(entry: dict) -> str:
    """A file name for the thumbnail of a report entry: its content digest (copies with
    the same bytes share one thumbnail, and a thumbnail stays valid for the same content),
    or a digest of path, size and mtime when the report has none."""
    import hashlib

    digest = str(entry.get("digest") or "")
    if _HEX_DIGEST.fullmatch(digest) and digest.strip("0"):  # never a path from an edited report
        return digest
    identity = f"{entry['path']}\0{entry.get('size')}\0{entry.get('mtime_ns')}"
    return hashlib.blake2b(identity.encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()


def make_thumbnails(run_folder: Path, report: dict, workers: int = 1) -> ReviewResult:
    """JPEG thumbnails (THUMB_SIDE px) of the group members in run_folder/thumbs/: only
    those missing, one decode per distinct content at reduced size (JPEG DCT scaling),
    in `workers` processes (writes to disk). A file that cannot be read gets none and is
    listed in the result's failures."""
    folder = run_folder / THUMBS_FOLDER
    folder.mkdir(exist_ok=True)
    result = ReviewResult(page=run_folder / REVIEW_PAGE)
    moved, _ = _journal_state(run_folder)
    jobs: dict[str, tuple[str, str, int]] = {}
    seen: set[str] = set()
    for entry in _entries(report):
        target = str(folder / f"{thumbnail_key(entry)}.jpg")
        if target in seen:
            continue
        seen.add(target)
        if os.path.isfile(target):
            result.thumbnails_reused += 1
        else:
            jobs[target] = (_source(entry["path"], moved), target, _decode_side(entry))
    for (source, *_), reason in zip(jobs.values(), _run_jobs(list(jobs.values()), workers)):  # noqa: B905
        if reason:
            result.failures.append((source, reason))
    result.thumbnails_made = len(jobs) - len(result.failures)
    return result


def _entries(report: dict):
    for group in report["groups"]:
        yield from group["keep"]
        yield from group["remove"]


def _journal_state(run_folder: Path) -> tuple[dict[str, str], dict[str, str]]:
    """From one read of the run's journal: path -> where a real run moved its bytes
    (backups of moves and links: the original name may be gone or hold a link to the kept
    file by now), and path -> the action a real run or an apply carried out on it; both
    without what was undone."""
    from dedup_cli.act.actions import ACTIONS, read_journal

    moved: dict[str, str] = {}
    done: dict[str, str] = {}
    for entry in read_journal(Path(run_folder) / "journal.jsonl"):
        state = entry.get("state")
        if state == "intent" and entry.get("destination"):
            moved[entry["path"]] = entry["destination"]
        elif state == "done" and entry.get("action") in ACTIONS:
            done[entry["path"]] = entry["action"]
        elif state == "undone":
            moved.pop(entry.get("path"), None)
            done.pop(entry.get("path"), None)
    return moved, done


def _decode_side(entry: dict) -> int:
    """The shorter side to decode for a thumbnail that fits THUMB_SIDE square, at most
    THUMB_DECODE_SIDE: the report knows each picture's size, so a 1024x640 JPEG is decoded
    at 1/4 (256x160), and a 1920x1080 one at 1/8 (240x135, as hashing decodes it) rather
    than at 1/4 to keep 144 pixels: a quarter of the pixels for a thumbnail a little
    smaller than the tile."""
    width, height = entry.get("width") or 0, entry.get("height") or 0
    if not width or not height:
        return THUMB_DECODE_SIDE
    return max(1, min(THUMB_DECODE_SIDE, -(-THUMB_SIDE * min(width, height) // max(width, height))))


def _source(path: str, moved: dict[str, str]) -> str:
    backup = moved.get(path)
    return backup if backup and os.path.isfile(backup) else path


def _run_jobs(jobs: list[tuple[str, str, int]], workers: int) -> list[str]:
    from dedup_cli.fingerprint.hashing import worker_pool

    chunk = max(1, min(32, len(jobs) // (workers * 4)))
    with worker_pool(workers if len(jobs) >= _POOL_MIN_JOBS else 1) as pool:
        return list(pool.map(_write_thumbnail, jobs, chunksize=chunk))


def _write_thumbnail(job: tuple[str, str, int]) -> str:
    """Decode `source` once at reduced size (at least `decode_side` pixels on its shorter
    side), write the thumbnail to `target` through a temporary name; '' on success, else
    why not."""
    from PIL import Image

    from dedup_cli.errors import UnreadableImage
    from dedup_cli.media.video import VideoError, picture_of

    source, target, decode_side = job
    try:
        image = picture_of(source, THUMB_SIDE, THUMB_SIDE, decode_side)  # a video: its middle frame
        # Bilinear after the integer reductions (draft, reducing_gap): as sharp at this size
        # and about half the time of the default bicubic.
        image.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
        partial = target + ".partial"
        image.save(partial, "JPEG", quality=THUMB_QUALITY)
        os.replace(partial, target)
    except UnreadableImage as exc:
        return exc.reason
    except VideoError as exc:
        return str(exc)
    except OSError as exc:
        return exc.strerror or str(exc)
    return ""


# --- links to the pictures ------------------------------------------------------------------

def thumbnail_names(report: dict, run_folder: Path) -> dict[str, str]:
    """path -> thumbnail URL relative to the page ("thumbs/<key>.jpg") for the files
    whose thumbnail exists (one listing of thumbs/, not a stat per file)."""
    try:
        made = set(os.listdir(run_folder / THUMBS_FOLDER))
    except FileNotFoundError:
        return {}
    names = {}
    for entry in _entries(report):
        name = f"{thumbnail_key(entry)}.jpg"
        if name in made:
            names[entry["path"]] = f"{THUMBS_FOLDER}/{name}"
    return names


def file_links(report: dict, run_folder: Path, moved: dict[str, str]) -> dict[str, str]:
    """path -> a URL relative to the page of the picture itself, or of its backup in
    remove/ when the run moved it: what the page shows where there is no thumbnail, and
    what the comparison zooms into. Relative, so a run folder moved with its images
    still finds them; names that are not UTF-8 are encoded as their own bytes. `moved`:
    _journal_state's first part."""
    base = os.path.abspath(run_folder)
    # Most files lie under the images folder: its relative path is worked out once.
    root = os.path.abspath(report["settings"].get("images_path") or base).rstrip(os.sep) + os.sep
    to_root = os.path.relpath(root, base) + os.sep
    links = {}
    for entry in _entries(report):
        source = _source(entry["path"], moved)
        if source.startswith(root):
            relative = to_root + source[len(root):]
        else:
            relative = os.path.relpath(source, base)
        links[entry["path"]] = quote(os.fsencode(relative))
    return links


def display_path(path: str, images_path: str) -> str:
    """`path` relative to the run's images folder (what a person recognises), or as it is
    when it lies outside (a --reference folder elsewhere)."""
    root = str(images_path or "").rstrip(os.sep) + os.sep
    return path[len(root):] if root != os.sep and path.startswith(root) else path


# --- the page's data ----------------------------------------------------------------------

def page_data(run_folder: Path, report: dict) -> dict:
    """Everything the page shows, as plain data: run facts, settings, the keep policy in
    words, and per group its files (kept first) with facts, plan, reasons and pictures."""
    settings = report["settings"]
    moved, done = _journal_state(run_folder)
    pictures = Pictures(thumbnail_names(report, run_folder), file_links(report, run_folder, moved), done,
                        str(settings.get("images_path") or ""))
    return {
        "run": {"folder": str(Path(run_folder).absolute()), "created": report.get("created", ""),
                "tool_version": report.get("tool_version", ""), "summary": report.get("summary", {})},
        "settings": {key: settings.get(key) for key in (
            "images_path", "method", "hash_algorithm", "hash_size", "distance_metric", "threshold",
            "threshold_bits", "colour_check", "isometric", "keep_policy", "reference", "action",
            "video_frame_bits")},
        "policy": policy_text(settings),
        "keeper_reason": keeper_summary(settings),  # the same for every kept file: once
        "match": match_text(settings),
        "groups": [group_data(group, settings, pictures) for group in report["groups"]],
    }


@dataclass(frozen=True)
class Pictures:
    """What the page needs per path besides the report: thumbnail, link, done action."""

    thumbs: dict[str, str]
    links: dict[str, str]
    done: dict[str, str]
    images_path: str


def group_data(group: dict, settings: dict, pictures: Pictures) -> dict:
    """One group for the page: its files, kept ones first, each with the plan's choice."""
    keep, remove = group["keep"], group["remove"]
    index = {entry["path"]: number for number, entry in enumerate(keep)}
    files = [file_data(entry, "keep", pictures) for entry in keep]
    for entry in remove:
        keeper = keep[index[entry["nearest_keep"]]] if entry.get("nearest_keep") in index else None
        reason = video_keep_reason if group.get("media") == "video" else keep_reason
        files.append(file_data(entry, "remove", pictures) | {
            "bits": entry.get("bits"), "distance": entry.get("distance"),
            "nearest": index.get(entry.get("nearest_keep"), -1),
            "reason": reason(keeper, entry, settings) if keeper else "the plan names no kept file here"})
    return {"id": group["id"], "files": files, "media": group.get("media", "image")}


def file_data(entry: dict, plan: str, pictures: Pictures) -> dict:
    path = entry["path"]
    return {
        "path": path,
        "shown": display_path(path, pictures.images_path),
        "width": entry.get("width", 0),
        "height": entry.get("height", 0),
        "size": entry.get("size", 0),
        "mtime": format_time(entry.get("mtime_ns")),
        "format": file_format(path),
        "hash": entry.get("hash", ""),
        "thumb": pictures.thumbs.get(path),
        "src": pictures.links.get(path),
        "plan": plan,
        "done": pictures.done.get(path, ""),
    }


def file_format(path: str) -> str:
    """The image format a file name says (JPEG, PNG, ...), or its extension in capitals."""
    suffix = os.path.splitext(path)[1].lower()
    return FORMATS.get(suffix, suffix[1:].upper() or "unknown")


def format_time(mtime_ns) -> str:
    if mtime_ns is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(int(mtime_ns) / 1e9))


def human_size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def policy_text(settings: dict) -> str:
    """The keep policy of a run in words, criterion by criterion."""
    policy = settings.get("keep_policy", "resolution")
    order = ", then ".join(CRITERION_NAMES[c] for c in POLICY_CRITERIA.get(policy, ()))
    text = f"--keep {policy}: {order}"
    if settings.get("reference"):
        text = f"files under --reference come first; then {text}"
    return text


def match_text(settings: dict) -> str:
    """Why two files were called duplicates. The report keeps no orientation per pair, so
    an --isometric run says hash+colour too, with the orientations it allowed."""
    if settings.get("method") == "cnn":
        colour = "colour check passed" if settings.get("colour_check", True) else "colour check off"
        return f"CNN embeddings: cosine similarity >= {settings.get('threshold')} (distance = 1 - cosine); {colour}"
    rule = f"hash distance within {settings.get('threshold_bits')} bits ({settings.get('hash_algorithm')}, " \
           f"{settings.get('hash_size', 8) ** 2} bits)"
    if settings.get("isometric"):
        rule += " in one of the 8 rotations/mirrorings"
    colour = "colour check passed" if settings.get("colour_check", True) else "colour check off"
    return f"hash+colour: {rule}; {colour}" if settings.get("colour_check", True) else f"hash only: {rule}; {colour}"


def keeper_summary(settings: dict) -> str:
    return f"kept: the best of its group under --keep {settings.get('keep_policy', 'resolution')} " \
           "(each duplicate says what decided)"


def _under(path: str, folders) -> bool:
    return any(path.startswith(str(folder).rstrip(os.sep) + os.sep) for folder in folders or ())


def _compare(criterion: str, keeper: dict, other: dict) -> int:
    """-1 when the kept file wins on `criterion`, 1 when it loses, 0 on a tie."""
    values = {
        "pixels": lambda e: -e.get("width", 0) * e.get("height", 0),
        "size": lambda e: -e.get("size", 0),
        "older": lambda e: e.get("mtime_ns", 0),
        "newer": lambda e: -e.get("mtime_ns", 0),
        "path": lambda e: e["path"],
    }[criterion]
    first, second = values(keeper), values(other)
    return (first > second) - (first < second)


def _won_on(criterion: str, keeper: dict, other: dict) -> str:
    if criterion == "pixels":
        return f"more pixels: {keeper['width']}×{keeper['height']} against {other['width']}×{other['height']}"
    if criterion == "size":
        return f"the larger file: {human_size(keeper['size'])} against {human_size(other['size'])}"
    if criterion in ("older", "newer"):
        return (f"the {criterion} file: {format_time(keeper.get('mtime_ns'))} against "
                f"{format_time(other.get('mtime_ns'))}")
    return "its path sorts first"


def _lossless_over_lossy(keeper: dict, other: dict) -> str:
    """'PNG is lossless, JPEG is not' when the names say so, else ''."""
    mine, theirs = file_format(keeper["path"]), file_format(other["path"])
    return f"{mine} is lossless, {theirs} is not" if mine in LOSSLESS_BY_NAME and theirs in LOSSY_BY_NAME else ""


def _better_copy(keeper: dict, other: dict) -> str:
    formats = _lossless_over_lossy(keeper, other)
    if formats:
        return f"the better copy: {formats}"
    return "the better copy (colour over grey, more bits per channel, a lossless format or more animation " \
           "frames: the report does not say which)"


FACTS_DISAGREE = ("kept file chosen by the plan (the facts in the report disagree: files changed since, "
                  "or it was edited)")
DEPTH_NAMES = {16: "16-bit", 8: "8-bit", 7: "CMYK", 6: "a palette", 1: "1-bit"}


def _better_by_facts(keeper: dict, other: dict) -> tuple[int, str] | None:
    """(1, why) when the report's facts make `keeper` the better copy, (0, "") when they
    tie, (-1, "") when they favour `other`; None for a report without them. The order is
    grouping.keep_order's: colour over grey, more bits per channel, lossless, more frames."""
    names = ("colour", "depth", "lossless", "frames")
    if not all(name in keeper and name in other for name in names):
        return None
    for name in names:
        mine, theirs = int(keeper[name]), int(other[name])
        if mine == theirs:
            continue
        if mine < theirs:
            return -1, ""
        if name == "colour":
            return 1, "colour over grey"
        if name == "depth":
            return 1, f"{DEPTH_NAMES.get(mine, f'{mine}-bit')} over {DEPTH_NAMES.get(theirs, f'{theirs}-bit')}"
        if name == "lossless":
            formats = _lossless_over_lossy(keeper, other)
            return 1, formats or "a lossless format over a lossy one"
        return 1, f"more animation frames: {mine} against {theirs}"
    return 0, ""


TIE_NAMES = {"pixels": "pixels", "size": "file size", "older": "date", "newer": "date", "path": "path"}


def video_keep_reason(keeper: dict, other: dict, settings: dict) -> str:
    """Why `keeper` was kept rather than `other`, two videos of one group: videos are
    kept longest first (plan/video.video_keep_order: removing a longer copy because of a
    shorter one would lose footage), and only then by the keep policy, on facts the report
    does not all hold (the picture without its bars, the bitrate)."""
    from dedup_cli.fingerprint.video import DURATION_STEP

    reference = settings.get("reference") or ()
    if _under(keeper["path"], reference) and not _under(other["path"], reference):
        return "kept file chosen by: it is under a --reference folder, whose files are never removed"
    kept, removed = keeper.get("length_steps", 0), other.get("length_steps", 0)
    if kept > removed:
        seconds = f"{kept * DURATION_STEP:g} s against {removed * DURATION_STEP:g} s"
        return f"kept file chosen by: the longer video ({seconds})"
    return (f"kept file chosen by: as long a video, then --keep {settings.get('keep_policy', 'resolution')} "
            "on the picture without its bars, then the higher bitrate")


def keep_reason(keeper: dict, other: dict, settings: dict) -> str:
    """Why `keeper` was kept rather than `other` (both report entries), from the facts the
    report holds: the first criterion of the run's keep policy on which they differ. "The
    better copy" is read from each file's colour, depth, lossless and frames facts; a
    report written before they were recorded has none, and then it is inferred: it
    decided when the kept file loses on the next criterion the report does show, it may
    have decided when it wins there (both are said), and a lossless over a lossy format
    by name is taken as what it decided."""
    reference = settings.get("reference") or ()
    if _under(keeper["path"], reference) and not _under(other["path"], reference):
        return "kept file chosen by: it is under a --reference folder, whose files are never removed"
    ties: list[str] = []
    passed_better = False
    for criterion in POLICY_CRITERIA.get(settings.get("keep_policy", "resolution"), ("path",)):
        if criterion == "better":
            known = _better_by_facts(keeper, other)
            if known is None:  # a report without the facts: inferred, as below
                passed_better = True
                if _lossless_over_lossy(keeper, other):
                    return _with_ties(ties, _better_copy(keeper, other))
                continue
            verdict, why = known
            if verdict > 0:
                return _with_ties(ties, f"the better copy: {why}")
            if verdict < 0:
                return FACTS_DISAGREE
            ties.append("colour, bit depth, format and frames")
            continue
        verdict = _compare(criterion, keeper, other)
        if verdict == 0:
            ties.append(TIE_NAMES[criterion])
            continue
        if verdict < 0:
            won = _won_on(criterion, keeper, other)
            return _with_ties(ties, f"the better copy (colour, bit depth, format or frames) or, those being "
                                    f"equal, {won}" if passed_better else won)
        if passed_better:
            return _with_ties(ties, _better_copy(keeper, other))
        return FACTS_DISAGREE
    return _with_ties(ties, _better_copy(keeper, other) if passed_better else "first in the plan")


def _with_ties(ties: list[str], reason: str) -> str:
    tied = f"same {' and '.join(ties)}, then " if ties else ""
    return f"kept file chosen by: {tied}{reason}"
