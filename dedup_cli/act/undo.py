"""Put back what a run did, from its journal: moved, trashed and linked files return to
their paths byte for byte; an existing file is never overwritten.

Works on a run killed at any point: an action announced ("intent") but not confirmed is
resolved from what is on disk (the move protocol always leaves the bytes under one of the
two names). Idempotent: each restored file gets an "undone" line in the journal, and a
second undo finds nothing left to do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from dedup_cli.act.actions import Journal, move_file, read_journal
from dedup_cli.act.lock import FolderLock
from dedup_cli.errors import InputError
from dedup_cli.media.loading import content_digest
from dedup_cli.runs import find_report, read_report

_FINAL = ("done", "intent")  # states after which the file may need putting back


@dataclass
class UndoResult:
    """What undo did: restored paths, files already in place, and what it could not do."""

    run_folder: Path
    restored: list[str] = field(default_factory=list)
    in_place: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)


def undo_run(run: str | os.PathLike) -> UndoResult:
    """Restore every file the run in `run` (its folder or report.json) moved, trashed or
    replaced by a link (writes to disk, holding the images folder's lock)."""
    report_path = find_report(run)
    run_folder = report_path.parent
    report = read_report(report_path)
    entries = read_journal(run_folder / "journal.jsonl")
    if not entries:
        raise InputError(f"'{run_folder}' has no journal: it was a dry run, so there is nothing to undo")
    result = UndoResult(run_folder)
    with FolderLock(report["settings"]["images_path"], "undo"):
        journal = Journal(run_folder / "journal.jsonl")
        try:
            for intent, state, done in reversed(_last_actions(entries)):
                _undo_one(intent, state, done, journal, result)
        finally:
            journal.close()
    return result


def _last_actions(entries: list[dict]) -> list[tuple[dict, str, dict]]:
    """Per removed path, in journal order: its last intent line, the last state reached
    after it, and the line that confirmed it (or {})."""
    last: dict[str, list] = {}
    for entry in entries:
        if entry.get("action") == "backup-keep":
            continue
        path, state = entry["path"], entry.get("state")
        if state == "intent":
            last[path] = [entry, "intent", {}]
        elif path in last:
            last[path][1] = state
            if state == "done":
                last[path][2] = entry
    return [tuple(value) for value in last.values()]


def _undo_one(intent: dict, state: str, done: dict, journal: Journal, result: UndoResult) -> None:
    path = intent["path"]
    if state not in _FINAL:
        if state == "undone":
            result.in_place += 1
        return  # skipped or failed: the action never changed the file
    try:
        problem = _RESTORE[intent["action"]](intent, done)
    except OSError as exc:
        problem = f"could not restore: {exc.strerror or exc}"
    if problem == "in place":
        result.in_place += 1
        journal.write(action=intent["action"], path=path, state="undone")
        return
    if problem:
        result.problems.append((path, problem))
        return
    recorded = intent.get("digest")
    if recorded and content_digest(path).hex() != recorded:
        result.problems.append((path, "restored, but its bytes differ from the scan's"))
    result.restored.append(path)
    journal.write(action=intent["action"], path=path, state="undone")


def _exists(path: str) -> bool:
    return os.path.lexists(path)


def _restore_backup(path: str, backup: str, digest: str = "") -> str:
    """Bring `backup` back to `path`: '' when done, 'in place' when nothing was needed,
    else the reason it could not be done."""
    if not backup:
        return "no copy was kept"
    if _exists(path) and _exists(backup):
        # Killed between the link (or the copy, across file systems) and the unlink: the
        # file is still in place and the backup is a second name or copy of it.
        if os.path.samefile(path, backup) or (digest and content_digest(path).hex() == digest
                                               == content_digest(backup).hex()):
            os.unlink(backup)
            return "in place"
        return f"another file now exists at the path; the original stays at '{backup}'"
    if _exists(backup):
        move_file(backup, Path(path))
        return ""
    return "in place" if _exists(path) else f"neither the file nor its backup '{backup}' exists"


def _restore_move(intent: dict, done: dict) -> str:
    return _restore_backup(intent["path"], intent.get("destination", ""), intent.get("digest", ""))


def _restore_link(intent: dict, done: dict) -> str:
    path, backup, kept = intent["path"], intent.get("destination", ""), intent.get("kept", "")
    if _exists(path) and _is_our_link(path, kept, intent["action"]):
        if not (backup and _exists(backup)):
            return "replaced by a link without a backup (--backup-duplicate n): its own bytes are gone"
        os.unlink(path)
    return _restore_backup(path, backup, intent.get("digest", ""))


def _is_our_link(path: str, kept: str, action: str) -> bool:
    if action == "symlink":
        return os.path.islink(path) and os.readlink(path) == os.path.abspath(kept)
    try:
        return not os.path.islink(path) and os.path.samefile(path, kept)
    except OSError:
        return False


def _restore_trash(intent: dict, done: dict) -> str:
    from dedup_cli.act.trash import find_in_trash

    path = intent["path"]
    if _exists(path):
        return "in place"
    found = (Path(done["trashed"]), Path(done["trash_info"])) if done.get("trashed") else find_in_trash(path)
    if not found or not found[0].exists():
        return "in the desktop trash, where dedup cannot find it: restore it from the trash"
    move_file(str(found[0]), Path(path))
    found[1].unlink(missing_ok=True)
    return ""


def _restore_delete(intent: dict, done: dict) -> str:
    if _exists(intent["path"]):
        return "in place"
    return "deleted without a backup (--action delete): it cannot be restored"


_RESTORE = {
    "move": _restore_move,
    "hardlink": _restore_link,
    "symlink": _restore_link,
    "trash": _restore_trash,
    "delete": _restore_delete,
}
