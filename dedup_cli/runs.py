"""A run's folder and its report.json: made by a delete run, read back by apply and undo.

The record every later stage reads, so it lives below them all."""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

from dedup_cli.media.scan import OUTPUT_MARKER

REPORT_FORMAT_VERSION = 2  # 2: size, mtime_ns and content digest of every file


def create_run_folder(output_path: str | os.PathLike, command: str) -> Path:
    """Make a new, empty folder for this run under `output_path` (writes to disk).

    The folder name carries the time; a numeric suffix is added rather than ever
    reusing or overwriting an earlier run's folder.
    """
    output = Path(output_path).absolute()
    output.mkdir(parents=True, exist_ok=True)
    (output / OUTPUT_MARKER).touch(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for attempt in range(1, 10_000):
        name = f"{command}-{stamp}" if attempt == 1 else f"{command}-{stamp}-{attempt}"
        try:
            (output / name).mkdir()
        except FileExistsError:
            continue
        return output / name
    raise FileExistsError(f"no free run folder name under {output}")


def write_json(path: Path, data: dict, replace: bool = False) -> None:
    """Write a dict as JSON to a new file (never overwriting one), or with `replace` swap
    a run's own file atomically (a kill leaves the old version or the new, never half of
    one). Streamed: each item of a top-level list is encoded on a line of its own by the
    C encoder, so a report of 100,000 files is neither built as one string nor indented
    by the slow pure-Python encoder."""
    if not replace:
        with open(path, "x", encoding="utf-8") as handle:
            _dump(data, handle)
        return
    with replacing(path) as handle:
        _dump(data, handle)


@contextmanager
def replacing(path: Path):
    """A text handle whose content replaces `path` atomically when the block ends (written
    to `path`.partial, synced, then renamed): a reader or a kill sees the old file or the
    new one, never half of one. Writes to disk."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8") as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def _dump(data: dict, handle) -> None:
    handle.write("{")
    for number, (key, value) in enumerate(data.items()):
        handle.write(",\n  " if number else "\n  ")
        handle.write(json.dumps(key) + ": ")
        if isinstance(value, list) and value:
            handle.write("[")
            for index, item in enumerate(value):
                handle.write(",\n    " if index else "\n    ")
                handle.write(json.dumps(item))
            handle.write("\n  ]")
        else:
            handle.write(json.dumps(value, indent=2).replace("\n", "\n  "))
    handle.write("\n}\n")


def find_report(run: str | os.PathLike) -> Path:
    """The report.json of a run given as its folder or as the file itself."""
    path = Path(run)
    if path.is_dir():
        path = path / "report.json"
    if not path.is_file():
        from dedup_cli.errors import InputError

        raise InputError(f"'{run}' is neither a dedup run folder nor its report.json")
    return path


def read_report(path: str | os.PathLike) -> dict:
    """Read a report.json back, refusing formats this version does not know."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if data.get("format") != "dedup-report" or data.get("format_version") != REPORT_FORMAT_VERSION:
        raise ValueError(f"{path} is not a dedup report of format version {REPORT_FORMAT_VERSION}")
    return data
