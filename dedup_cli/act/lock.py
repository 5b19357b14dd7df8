"""One real run at a time per images folder: advisory locks keyed by resolved paths.

Two real runs on one folder with opposite keep policies could each remove the file the
other keeps, emptying a group (rule 7 of DESIGN.md). A run that changes files holds an
exclusive lock on its images folder and shared locks on every folder above it, so runs
on nested folders exclude each other too while runs on sibling folders do not. The locks
are `fcntl.flock` locks on files in the state folder: the kernel drops them when the
process ends, however it ends (SIGKILL included), so a crash never leaves a stale lock.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from dedup_cli.errors import DedupError


class FolderBusy(DedupError):
    """Another real run holds the lock of a folder this run would change."""


def state_folder() -> Path:
    """$XDG_STATE_HOME/dedup, or ~/.local/state/dedup; a private folder under the system's
    temporary folder when that one cannot be created (no or a read-only $HOME)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    for folder in (Path(base) / "dedup", Path(tempfile.gettempdir()) / f"dedup-{os.getuid()}"):
        try:
            (folder / "locks").mkdir(parents=True, exist_ok=True)
            if os.access(folder / "locks", os.W_OK):
                return folder
        except OSError:
            continue
    raise DedupError("Cannot create a folder for run locks (tried $XDG_STATE_HOME, ~/.local/state and the "
                     "temporary folder); set XDG_STATE_HOME to a writable folder")


def _lock_file(folder: Path) -> Path:
    key = hashlib.sha256(os.fsencode(str(folder))).hexdigest()[:32]
    return state_folder() / "locks" / f"{key}.lock"


class FolderLock:
    """Held while a run changes files under `folder` (a context manager).

    Raises FolderBusy at once, naming the other run's process, when another run holds
    the folder, a folder above it or one below it.
    """

    def __init__(self, folder: str | os.PathLike, purpose: str = "delete"):
        self.folder = Path(folder).resolve()
        self.purpose = purpose
        self._handles: list = []

    def __enter__(self) -> FolderLock:
        import fcntl

        try:
            for ancestor in reversed(self.folder.parents):  # top down, always in one order
                self._take(ancestor, fcntl.LOCK_SH)
            handle = self._take(self.folder, fcntl.LOCK_EX)
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()} {self.purpose} {self.folder}\n")
            handle.flush()
        except BaseException:
            self.release()
            raise
        return self

    def _take(self, folder: Path, mode: int):
        import fcntl

        handle = open(_lock_file(folder), "a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), mode | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise FolderBusy(f"Another dedup run is changing files in or around '{self.folder}' "
                             f"(holder: {holder}); wait for it to finish, then run again") from None
        self._handles.append(handle)
        return handle

    def release(self) -> None:
        for handle in reversed(self._handles):
            handle.close()  # closing the descriptor drops its flock
        self._handles.clear()

    def __exit__(self, *exc_info) -> None:
        self.release()
