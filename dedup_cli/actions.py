"""Carry a plan out: backups, moves, deletions and the journal.

The only module that changes the user's files. Every removal is written to the journal
(and flushed to disk) before it happens; files are moved aside by default; nothing ever
overwrites an existing file; a file that changed since the scan is skipped (rule 4).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from dedup_cli.loading import content_digest


@dataclass(frozen=True)
class Outcome:
    """What happened to one file."""

    action: str  # "move", "delete", "backup-keep"
    path: str
    destination: str
    status: str  # "done" or "skipped"
    reason: str = ""

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v != ""}


class Journal:
    """Append-only JSON lines, flushed and fsynced before each action it announces."""

    def __init__(self, path: Path):
        self.path = path
        self._handle = open(path, "x", encoding="utf-8")

    def write(self, **entry) -> None:
        self._handle.write(json.dumps(entry) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()


def unchanged(path: str, size: int, mtime_ns: int, digest: bytes | None = None) -> str:
    """'' when the file still has the size, mtime and (if given) content digest seen at
    scan time, else why not. Size and mtime alone miss a file replaced by another with
    the same size and a restored mtime."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return "file is gone since the scan"
    except OSError as exc:
        return f"cannot check file: {exc.strerror or exc}"
    if info.st_size != size or info.st_mtime_ns != mtime_ns:
        return "file changed since the scan"
    if digest is not None:
        try:
            if content_digest(path) != digest:
                return "file content changed since the scan (same size and time)"
        except OSError as exc:
            return f"cannot read file to check it: {exc.strerror or exc}"
    return ""


def backup_path(run_folder: Path, kind: str, images_root: Path, path: str) -> Path:
    """Where a file goes under run_folder/kind/, keeping its path relative to the root."""
    relative = Path(os.path.relpath(path, images_root))
    if relative.is_absolute() or ".." in relative.parts:
        relative = Path(*Path(path).absolute().parts[1:])
    return run_folder / kind / relative


def _move(source: str, destination: Path) -> None:
    """Move without ever overwriting: rename on one file system, else copy, check, unlink."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    if destination.exists():
        raise FileExistsError(f"destination exists: {destination}")
    try:
        os.link(source, destination)  # fails if destination exists: no overwrite race
    except OSError:
        if destination.exists():
            raise
    else:
        try:
            os.unlink(source)
        except OSError:
            os.unlink(destination)  # the source stays; no stray second name in remove/
            raise
        return
    try:  # another file system: copy, check, then remove the source
        with open(source, "rb") as reader, open(destination, "xb") as writer:
            shutil.copyfileobj(reader, writer)
        shutil.copystat(source, destination)
        if os.path.getsize(destination) != os.path.getsize(source):
            raise OSError(f"copy of {source} is incomplete")
        os.unlink(source)
    except BaseException:
        if os.path.exists(source) and destination.exists():
            os.unlink(destination)
        raise


def carry_out(plan, hashed, images_root: Path, run_folder: Path,
              backup_keep: bool, backup_duplicate: bool) -> list[Outcome]:
    """Back up kept files (if asked), then move or delete each planned removal (writes to
    disk). A removal happens only when both it and the file kept for it are unchanged."""
    journal = Journal(run_folder / "journal.jsonl")
    outcomes: list[Outcome] = []
    try:
        if backup_keep:
            for group in plan.groups:
                for row in group.keep:
                    outcomes.append(_backup_keep(journal, hashed, row, images_root, run_folder))
        for removal in plan.removals:
            outcomes.append(_remove(journal, hashed, removal, images_root, run_folder, backup_duplicate))
    finally:
        journal.close()
    return outcomes


def _stat_reason(hashed, row: int) -> str:
    return unchanged(hashed.paths[row], int(hashed.size[row]), int(hashed.mtime_ns[row]), bytes(hashed.digest[row]))


def _backup_keep(journal, hashed, row, images_root, run_folder) -> Outcome:
    source = hashed.paths[row]
    destination = backup_path(run_folder, "keep", images_root, source)
    journal.write(action="backup-keep", path=source, destination=str(destination), state="intent")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        if destination.exists():
            raise FileExistsError(f"destination exists: {destination}")
        shutil.copy2(source, destination)
    except OSError as exc:
        journal.write(action="backup-keep", path=source, state="skipped", reason=str(exc))
        return Outcome("backup-keep", source, str(destination), "skipped", str(exc))
    journal.write(action="backup-keep", path=source, state="done")
    return Outcome("backup-keep", source, str(destination), "done")


def _remove(journal, hashed, removal, images_root, run_folder, backup_duplicate) -> Outcome:
    source = hashed.paths[removal.row]
    action = "move" if backup_duplicate else "delete"
    destination = backup_path(run_folder, "remove", images_root, source) if backup_duplicate else None
    reason = _stat_reason(hashed, removal.row)
    kept_reason = _stat_reason(hashed, removal.nearest_keep)
    if not reason and kept_reason:
        reason = f"the kept file {hashed.paths[removal.nearest_keep]}: {kept_reason}"
    if reason:
        journal.write(action=action, path=source, state="skipped", reason=reason)
        return Outcome(action, source, str(destination or ""), "skipped", reason)
    journal.write(action=action, path=source, destination=str(destination or ""), state="intent")
    try:
        if destination is None:
            os.unlink(source)
        else:
            _move(source, destination)
    except OSError as exc:
        journal.write(action=action, path=source, state="failed", reason=str(exc))
        return Outcome(action, source, str(destination or ""), "skipped", str(exc))
    journal.write(action=action, path=source, state="done")
    return Outcome(action, source, str(destination or ""), "done")
