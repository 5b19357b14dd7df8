"""Walk --images-path: decide which files are images and which are skipped, and why."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from dedup_cli.media.video import ANIMATED_EXTENSIONS, VIDEO_EXTENSIONS

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".bmp", ".dib", ".tif", ".tiff", ".webp",
     ".heic", ".heif", ".hif", ".avif"}
)
# Pictures dedup cannot decode: listed as skipped, with the reason, rather than passed over
# in silence as if they were not pictures at all.
UNSUPPORTED_IMAGE_EXTENSIONS = {
    **dict.fromkeys((".cr2", ".cr3", ".nef", ".arw", ".dng", ".orf", ".rw2", ".raf", ".pef", ".srw", ".raw"),
                    "camera raw format (not supported; convert it or keep it out of the scan)"),
    ".psd": "Photoshop document (not supported)",
    ".jxl": "JPEG XL (not supported by this Pillow)",
    ".svg": "vector image (not supported)",
}
# Which files a command looks at (--media): videos never pair with images either way.
MEDIA = ("image", "video", "all")
# Written into every output folder so that later scans never read backups or reports,
# wherever the user put --output-path (rule 6 of DESIGN.md).
OUTPUT_MARKER = ".dedup-output"


@dataclass
class ScanResult:
    """Image files found under `root` (sorted absolute paths), video files (`videos`,
    sorted too: animated GIF and WebP files among them) and what was passed over."""

    root: Path
    files: list[Path] = field(default_factory=list)
    videos: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def scan_images(root: str | os.PathLike, exclude: tuple[str | os.PathLike, ...] = ()) -> ScanResult:
    """Find image and video files under `root`, recursively, without following symbolic
    links. A GIF or WebP is a video when it has more than one frame (its header is read).

    Hidden files and folders (name starting with '.') are ignored; folders in `exclude`
    and folders carrying OUTPUT_MARKER (dedup's own output) are skipped and reported.
    Folders are listed with os.scandir, whose entries know a symbolic link without a
    system call (100,000 files: 100,000 lstat calls fewer than asking each path).
    """
    root_path = Path(root).absolute()
    excluded = {Path(p).resolve() for p in exclude}
    result = ScanResult(root=root_path)
    pending = [str(root_path)]  # depth first, each folder's subfolders in name order
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as error:
            where = error.filename or folder
            result.skipped.append((str(where), f"cannot list folder: {(error.strerror or str(error)).lower()}"))
            continue
        subfolders = []
        for entry in entries:
            if _is_folder(entry):
                path = Path(entry.path)
                reason = _skip_dir_reason(path, entry.name, excluded, entry.is_symlink())
                if reason is None:
                    subfolders.append(entry.path)
                elif reason:
                    result.skipped.append((str(path), reason))
        for entry in entries:
            if not _is_folder(entry):
                _sort_file(entry, result)
        pending.extend(reversed(subfolders))
    result.files.sort()
    result.videos.sort()
    return result


def _is_folder(entry: os.DirEntry) -> bool:
    """A folder, or a symbolic link to one (reported, never followed)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _sort_file(entry: os.DirEntry, result: ScanResult) -> None:
    """Add one directory entry to the images to hash, the videos, the skipped files, or neither."""
    name = entry.name
    extension = os.path.splitext(name)[1].lower()
    if name.startswith("."):
        return
    if extension in UNSUPPORTED_IMAGE_EXTENSIONS:
        result.skipped.append((entry.path, UNSUPPORTED_IMAGE_EXTENSIONS[extension]))
    elif extension in IMAGE_EXTENSIONS or extension in VIDEO_EXTENSIONS:
        if entry.is_symlink():
            result.skipped.append((entry.path, "symbolic link (not followed)"))
        else:
            (result.videos if _is_video(entry.path, extension) else result.files).append(Path(entry.path))


def _is_video(path: str, extension: str) -> bool:
    """A video file, or a GIF or WebP with more than one frame (a short video: one header
    read, no frame decoded)."""
    if extension in VIDEO_EXTENSIONS:
        return True
    if extension not in ANIMATED_EXTENSIONS:
        return False
    from dedup_cli.media.animation import is_animated  # Pillow, only once a GIF or WebP is met

    return is_animated(path)


def _skip_dir_reason(path: Path, name: str, excluded: set[Path], symlink: bool) -> str | None:
    """Why a folder is not entered: None to enter it, '' to skip it silently."""
    if symlink:
        return "symbolic link to a folder (not followed)"
    if name.startswith("."):
        return ""
    if path.resolve() in excluded:
        return "dedup output folder (never scanned)"
    try:
        if (path / OUTPUT_MARKER).exists():
            return "dedup output folder (never scanned)"
    except OSError as exc:  # a folder that cannot be searched (no x permission)
        return f"cannot enter folder: {(exc.strerror or str(exc)).lower()}"
    return None
