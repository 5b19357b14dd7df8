"""Walk --images-path: decide which files are images and which are skipped, and why."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".bmp", ".dib", ".tif", ".tiff", ".webp"}
)
# Written into every output folder so that later scans never read backups or reports,
# wherever the user put --output-path (rule 6 of DESIGN.md).
OUTPUT_MARKER = ".dedup-output"


@dataclass
class ScanResult:
    """Image files found under `root` (sorted absolute paths) and what was passed over."""

    root: Path
    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def is_image_name(name: str) -> bool:
    """True when the file name has an image extension (any letter case)."""
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def scan_images(root: str | os.PathLike, exclude: tuple[str | os.PathLike, ...] = ()) -> ScanResult:
    """Find image files under `root`, recursively, without following symbolic links.

    Hidden files and folders (name starting with '.') are ignored; folders in `exclude`
    and folders carrying OUTPUT_MARKER (dedup's own output) are skipped and reported.
    """
    root_path = Path(root).absolute()
    excluded = {Path(p).resolve() for p in exclude}
    result = ScanResult(root=root_path)
    for dirpath, dirnames, filenames in os.walk(root_path, followlinks=False):
        kept_dirs = []
        for name in sorted(dirnames):
            path = Path(dirpath, name)
            reason = _skip_dir_reason(path, name, excluded)
            if reason is None:
                kept_dirs.append(name)
            elif reason:
                result.skipped.append((str(path), reason))
        dirnames[:] = kept_dirs
        for name in sorted(filenames):
            if name.startswith(".") or not is_image_name(name):
                continue
            path = Path(dirpath, name)
            if path.is_symlink():
                result.skipped.append((str(path), "symbolic link (not followed)"))
            else:
                result.files.append(path)
    result.files.sort()
    return result


def _skip_dir_reason(path: Path, name: str, excluded: set[Path]) -> str | None:
    """Why a folder is not entered: None to enter it, '' to skip it silently."""
    if path.is_symlink():
        return "symbolic link to a folder (not followed)"
    if name.startswith("."):
        return ""
    if path.resolve() in excluded or (path / OUTPUT_MARKER).exists():
        return "dedup output folder (never scanned)"
    return None
