"""Carry a plan out: backups, moves, trash, links, deletions and the journal.

The only module that changes the user's files (with undo.py, which puts them back). Every
action is written to the journal (and flushed to disk) before it happens and its
completion after; files are moved aside by default; nothing ever overwrites an existing
file; a file that changed since the scan (size, mtime or content digest), or whose kept
file did, is skipped (rule 4).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dedup_cli.media.loading import content_digest

ACTIONS = ("move", "trash", "hardlink", "symlink", "delete")
ASIDE_SUFFIX = ".dedup-aside"


@dataclass(frozen=True)
class FileState:
    """A file as the scan saw it: what "unchanged" means at action time."""

    path: str
    size: int
    mtime_ns: int
    digest: bytes

    @classmethod
    def of_row(cls, hashed, row: int) -> FileState:
        return cls(hashed.paths[row], int(hashed.size[row]), int(hashed.mtime_ns[row]), bytes(hashed.digest[row]))

    @classmethod
    def from_report(cls, entry: dict) -> FileState:
        return cls(entry["path"], int(entry["size"]), int(entry["mtime_ns"]), bytes.fromhex(entry["digest"]))


@dataclass(frozen=True)
class Step:
    """One planned removal and the kept file that justifies it."""

    remove: FileState
    keep: FileState


@dataclass(frozen=True)
class ActionSettings:
    """What to do with each duplicate. `backup`: with move, hardlink and symlink, the
    duplicate's bytes go to <run>/remove/ (undo can restore them); `backup_keep`: kept
    files are copied to <run>/keep/ first."""

    action: str = "move"
    backup: bool = True
    backup_keep: bool = False


@dataclass(frozen=True)
class Outcome:
    """What happened to one file."""

    action: str  # one of ACTIONS, or "backup-keep"
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
        self._handle = open(path, "a", encoding="utf-8")

    def write(self, **entry) -> None:
        self._handle.write(json.dumps(entry) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()


def read_journal(path: Path) -> list[dict]:
    """The journal's entries; a last line cut short by a kill is left out."""
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return entries


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


def _state_reason(state: FileState) -> str:
    return unchanged(state.path, state.size, state.mtime_ns, state.digest)


def backup_path(run_folder: Path, kind: str, images_root: Path, path: str) -> Path:
    """Where a file goes under run_folder/kind/, keeping its path relative to the root."""
    relative = Path(os.path.relpath(path, images_root))
    if relative.is_absolute() or ".." in relative.parts:
        relative = Path(*Path(path).absolute().parts[1:])
    return run_folder / kind / relative


def move_file(source: str, destination: Path) -> None:
    """Move without ever overwriting: a hard link then unlink on one file system (so one
    name always holds the bytes), else copy, check, unlink. On failure the source stays
    and no second copy is left behind."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    if destination.exists() and not destination.is_symlink() and os.path.samefile(source, destination):
        os.unlink(source)  # a move killed between its link and its unlink: finish it
        return
    if destination.exists() or destination.is_symlink():
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


def carry_out(steps: Iterable[Step], keeps: Iterable[FileState], images_root: Path, run_folder: Path,
              settings: ActionSettings) -> list[Outcome]:
    """Back up kept files (if asked), then act on each planned removal (writes to disk).
    A removal happens only when both it and its kept file are unchanged since the scan,
    checked right before the action (the caller holds the folder's lock)."""
    journal = Journal(run_folder / "journal.jsonl")
    outcomes: list[Outcome] = []
    try:
        if settings.backup_keep:
            outcomes.extend(_backup_keep(journal, state, images_root, run_folder) for state in keeps)
        for step in steps:
            outcomes.append(_remove(journal, step, images_root, run_folder, settings))
    finally:
        journal.close()
    return outcomes


def plan_steps(plan, hashed) -> tuple[list[Step], list[FileState]]:
    """The removals of a grouping.Plan as Steps, and its kept files."""
    steps = [Step(FileState.of_row(hashed, r.row), FileState.of_row(hashed, r.nearest_keep))
             for r in plan.removals]
    keeps = [FileState.of_row(hashed, row) for group in plan.groups for row in group.keep]
    return steps, keeps


def _backup_keep(journal, state: FileState, images_root, run_folder) -> Outcome:
    source = state.path
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


def _destination(step: Step, images_root, run_folder, settings: ActionSettings) -> str:
    """Where the duplicate's bytes go: the backup, an aside name for links without a
    backup, or nowhere (trash: the desktop decides; delete)."""
    source = step.remove.path
    if settings.action in ("move", "hardlink", "symlink") and settings.backup:
        return str(backup_path(run_folder, "remove", images_root, source))
    if settings.action in ("hardlink", "symlink"):
        return source + ASIDE_SUFFIX
    return ""


def _remove(journal, step: Step, images_root, run_folder, settings: ActionSettings) -> Outcome:
    source, action = step.remove.path, settings.action
    destination = _destination(step, images_root, run_folder, settings)
    reason = _state_reason(step.remove) or _kept_reason(step)
    if not reason and action == "hardlink" and not _same_device(step.keep.path, source):
        reason = "hard link refused: the kept file is on another file system"
    if reason:
        journal.write(action=action, path=source, state="skipped", reason=reason)
        return Outcome(action, source, destination, "skipped", reason)
    journal.write(action=action, path=source, destination=destination, kept=step.keep.path,
                  digest=step.remove.digest.hex(), state="intent")
    try:
        extra = _ACT[action](source, destination, step.keep.path)
    except Exception as exc:  # each failure is this one file's; the run goes on
        text = f"{type(exc).__name__}: {exc}" if not isinstance(exc, OSError) else str(exc)
        journal.write(action=action, path=source, state="failed", reason=text)
        return Outcome(action, source, destination, "skipped", text)
    journal.write(action=action, path=source, state="done", **(extra or {}))
    return Outcome(action, source, (extra or {}).get("trashed", destination), "done")


def _kept_reason(step: Step) -> str:
    reason = _state_reason(step.keep)
    return f"the kept file {step.keep.path}: {reason}" if reason else ""


def _same_device(kept: str, duplicate: str) -> bool:
    try:
        return os.stat(kept).st_dev == os.stat(os.path.dirname(duplicate) or ".").st_dev
    except OSError:
        return False


def _act_move(source: str, destination: str, kept: str):
    move_file(source, Path(destination))


def _act_delete(source: str, destination: str, kept: str):
    os.unlink(source)


def _act_trash(source: str, destination: str, kept: str):
    from send2trash import send2trash

    from dedup_cli.act.trash import find_in_trash

    send2trash(source)
    found = find_in_trash(source)
    return {"trashed": str(found[0]), "trash_info": str(found[1])} if found else None


def _act_link(kind: str):
    def link(source: str, destination: str, kept: str):
        """Move the duplicate's bytes to `destination`, put a link to the kept file in its
        place, and drop an aside copy (no backup) only once the link stands."""
        move_file(source, Path(destination))
        try:
            if kind == "symlink":
                os.symlink(os.path.abspath(kept), source)
            else:
                os.link(kept, source)
        except BaseException:
            move_file(destination, Path(source))  # roll back: the duplicate as it was
            raise
        if destination.endswith(ASIDE_SUFFIX):
            os.unlink(destination)
    return link


_ACT = {
    "move": _act_move,
    "delete": _act_delete,
    "trash": _act_trash,
    "hardlink": _act_link("hardlink"),
    "symlink": _act_link("symlink"),
}
