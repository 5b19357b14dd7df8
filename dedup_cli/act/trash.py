"""Where send2trash put a file on a freedesktop.org desktop (Linux), so undo can bring it back.

The trash specification keeps each trashed file under <trash>/files/<name> with a
<trash>/info/<name>.trashinfo whose Path= line holds the original path (URL-quoted;
relative to the volume's top folder in a per-volume trash). Elsewhere (macOS, Windows)
nothing is found and undo says to restore the file from the trash by hand.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import unquote_to_bytes


def _trash_folders(path: str) -> list[tuple[Path, Path | None]]:
    """(trash folder, top folder for relative Path= lines or None) that may hold `path`."""
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    folders: list[tuple[Path, Path | None]] = [(Path(data_home) / "Trash", None)]
    top = Path(os.path.dirname(os.path.abspath(path)))
    while not os.path.ismount(top) and top != top.parent:
        top = top.parent
    uid = os.getuid()
    folders += [(top / ".Trash" / str(uid), top), (top / f".Trash-{uid}", top)]
    return folders


def find_in_trash(path: str) -> tuple[Path, Path] | None:
    """(trashed file, its .trashinfo) of the latest trashing of `path`, or None."""
    if sys.platform != "linux":
        return None
    wanted = os.fsencode(os.path.abspath(path))
    name = os.path.basename(path)
    best: tuple[float, Path, Path] | None = None
    for trash, top in _trash_folders(path):
        info_folder = trash / "info"
        try:
            candidates = [entry for entry in os.scandir(info_folder)
                          if entry.name.startswith(name) and entry.name.endswith(".trashinfo")]
        except OSError:
            continue
        for entry in candidates:
            if _original(Path(entry.path), top) != wanted:
                continue
            stamp = entry.stat().st_mtime
            trashed = trash / "files" / entry.name[: -len(".trashinfo")]
            if best is None or stamp > best[0]:
                best = (stamp, trashed, Path(entry.path))
    return (best[1], best[2]) if best else None


def _original(info: Path, top: Path | None) -> bytes | None:
    """The original path a .trashinfo names, as bytes."""
    try:
        text = info.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("Path="):
            original = unquote_to_bytes(line[len("Path="):].strip())
            if not original.startswith(b"/") and top is not None:
                original = os.fsencode(str(top)) + b"/" + original
            return original
    return None
