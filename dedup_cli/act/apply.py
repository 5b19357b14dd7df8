"""Carry out a saved plan later: `dedup apply RUN [--decisions FILE]`.

A dry run's report.json is a contract: every file in it has its size, mtime and content
digest. Applying it re-checks each file and each kept file right before acting, skips and
reports what changed, and lets a reviewed decisions file move the keep choice within a
group, never so that a group keeps nothing and never removing a file that no kept file
lies within the threshold of. The same command finishes a real run that was killed:
what its journal shows done is not done again.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dedup_cli.act import actions
from dedup_cli.act.actions import ActionSettings, FileState, Step
from dedup_cli.act.lock import FolderLock
from dedup_cli.errors import InputError
from dedup_cli.runs import find_report, read_report, write_json
from dedup_cli.search.index import hamming

DECISIONS = ("keep", "remove")


@dataclass
class ApplyResult:
    """What apply decided and did."""

    run_folder: Path
    outcomes: list[actions.Outcome] = field(default_factory=list)
    already_done: int = 0
    notes: list[str] = field(default_factory=list)
    record: Path | None = None

    @property
    def removed(self) -> int:
        return sum(1 for o in self.outcomes if o.status == "done" and o.action in actions.ACTIONS)

    @property
    def skipped(self) -> list[actions.Outcome]:
        return [o for o in self.outcomes if o.status != "done"]


def read_decisions(path: str | os.PathLike) -> dict[str, str]:
    """path -> 'keep' or 'remove' from a JSON object (or one under the key "decisions");
    raises InputError naming the file and the first bad entry."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"Cannot read decisions '{path}': {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("decisions"), dict):
        data = data["decisions"]
    if not isinstance(data, dict):
        raise InputError(f"Decisions '{path}' must be a JSON object of path -> \"keep\" or \"remove\"")
    for name, decision in data.items():
        if decision not in DECISIONS:
            raise InputError(f"Decisions '{path}': {name!r} has {decision!r}; use \"keep\" or \"remove\"")
    return data


def plan_from_report(report: dict, decisions: dict[str, str] | None = None
                     ) -> tuple[list[Step], list[FileState], list[str]]:
    """The removals and kept files of a report, after `decisions`, with notes on the
    decisions that could not be followed."""
    decisions = decisions or {}
    max_bits = int(report["settings"]["threshold_bits"])
    planned = {f["path"] for g in report["groups"] for f in (*g["keep"], *g["remove"])}
    notes = [f"'{path}' is not in the plan; its decision is ignored" for path in decisions if path not in planned]
    steps: list[Step] = []
    keeps: list[FileState] = []
    for group in report["groups"]:
        group_steps, group_keeps, group_notes = _decide_group(group, decisions, max_bits)
        steps += group_steps
        keeps += group_keeps
        notes += group_notes
    return steps, keeps, notes


def _decide_group(group: dict, decisions: dict[str, str], max_bits: int):
    members = [*group["keep"], *group["remove"]]
    default = {f["path"]: "keep" for f in group["keep"]} | {f["path"]: "remove" for f in group["remove"]}
    chosen = {path: decisions.get(path, choice) for path, choice in default.items()}
    kept = [f for f in members if chosen[f["path"]] == "keep"]
    if not kept:
        return ([], [FileState.from_report(f) for f in members],
                [f"group {group['id']}: the decisions would keep none of its files; left as it is"])
    steps, notes = [], []
    nearest_planned = {r["path"]: r["nearest_keep"] for r in group["remove"]}
    for entry in members:
        if chosen[entry["path"]] != "remove":
            continue
        keeper = _justifying_keep(entry, kept, nearest_planned.get(entry["path"]), max_bits)
        if keeper is None:
            notes.append(f"'{entry['path']}': no kept file within the threshold after the decisions; kept")
            kept.append(entry)
            continue
        steps.append(Step(FileState.from_report(entry), FileState.from_report(keeper)))
    return steps, [FileState.from_report(f) for f in kept], notes


def _justifying_keep(entry: dict, kept: list[dict], planned_keep: str | None, max_bits: int) -> dict | None:
    """The kept file a removal stands on: the plan's own when it is still kept, else the
    nearest kept file whose hash is within the threshold. A video (an entry listing the
    videos it `pairs_with`) stands only on one of those that is at least as long: a video
    pair is no distance between two hashes, and a shorter copy lacks footage."""
    for candidate in kept:
        if candidate["path"] == planned_keep:
            return candidate
    if "pairs_with" in entry:
        return next((candidate for candidate in kept if candidate["path"] in entry["pairs_with"]
                     and candidate.get("length_steps", 0) >= entry.get("length_steps", 0)), None)
    mine = np.frombuffer(bytes.fromhex(entry["hash"]), dtype=np.uint8)
    best, best_bits = None, max_bits + 1
    for candidate in kept:
        theirs = np.frombuffer(bytes.fromhex(candidate["hash"]), dtype=np.uint8)
        bits = int(hamming(mine, theirs)) if len(theirs) == len(mine) else max_bits + 1
        if bits < best_bits:
            best, best_bits = candidate, bits
    return best


def apply_run(run: str | os.PathLike, decisions: dict[str, str] | None = None,
              settings: ActionSettings | None = None) -> ApplyResult:
    """Carry out the plan saved in `run` (a run folder or its report.json), after
    `decisions` (writes to disk, holding the images folder's lock). `settings` default to
    the run's own action (move for a dry run)."""
    report_path = find_report(run)
    run_folder = report_path.parent
    report = read_report(report_path)
    settings = settings or _run_settings(report)
    steps, keeps, notes = plan_from_report(report, decisions)
    done = {e["path"] for e in actions.read_journal(run_folder / "journal.jsonl")
            if e.get("state") == "done" and e.get("action") in actions.ACTIONS}
    result = ApplyResult(run_folder, notes=notes, already_done=sum(1 for s in steps if s.remove.path in done))
    steps = [step for step in steps if step.remove.path not in done]
    images_root = Path(report["settings"]["images_path"])
    if not images_root.is_dir():
        raise InputError(f"The images folder of this run, '{images_root}', is not there any more")
    with FolderLock(images_root, "apply"):
        result.outcomes = actions.carry_out(steps, keeps, images_root, run_folder, settings)
    result.record = _write_record(run_folder, result, settings, decisions)
    return result


def _run_settings(report: dict) -> ActionSettings:
    settings = report["settings"]
    action = settings.get("action", "move")
    return ActionSettings(action, settings.get("backup_duplicate", True), settings.get("backup_keep", False))


def _write_record(run_folder: Path, result: ApplyResult, settings: ActionSettings, decisions) -> Path:
    """apply-<time>.json in the run folder: what this apply did (never overwritten)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = run_folder / f"apply-{stamp}.json"
    number = 1
    while path.exists():
        number += 1
        path = run_folder / f"apply-{stamp}-{number}.json"
    write_json(path, {
        "format": "dedup-apply",
        "action": settings.action,
        "decisions": decisions or {},
        "removed": result.removed,
        "already_done": result.already_done,
        "notes": result.notes,
        "actions": [o.to_json() for o in result.outcomes],
    })
    return path
