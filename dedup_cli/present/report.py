"""The run folder and what goes in it: the original tool's CSVs and a versioned report.json."""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path

from dedup_cli import __version__
from dedup_cli.runs import REPORT_FORMAT_VERSION, create_run_folder, write_json


def threshold_label(threshold: float) -> str:
    """Threshold as it appears in file names: 10, 3.16, 0.5."""
    return f"{threshold:g}"


@dataclass
class DeleteReport:
    """Everything a delete run decided and did, ready to be written or printed."""

    settings: dict
    summary: dict
    groups: list[dict] = field(default_factory=list)
    unreadable: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    actions: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "format": "dedup-report",
            "format_version": REPORT_FORMAT_VERSION,
            "tool_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "settings": self.settings,
            "summary": self.summary,
            "groups": self.groups,
            "unreadable": self.unreadable,
            "skipped": self.skipped,
            "actions": self.actions,
        }


def build_groups(plan, hashed, metric) -> list[dict]:
    """The plan as plain data: each group with its kept file(s) and justified removals.
    Each file carries the facts the keep order's "better copy" reads (colour, bits per
    channel, a lossless format, animation frames), so a reader can say what decided."""
    from dedup_cli.plan.grouping import in_colour

    rows = sorted({row for group in plan.groups for row in (*group.keep, *(r.row for r in group.remove))})
    colour = dict(zip(rows, in_colour(hashed, rows).tolist())) if rows else {}  # noqa: B905

    def describe(row):
        _, depth, lossless, frames = (int(value) for value in hashed.facts[row])
        return {
            "path": hashed.paths[row],
            "width": int(hashed.width[row]),
            "height": int(hashed.height[row]),
            "size": int(hashed.size[row]),
            "mtime_ns": int(hashed.mtime_ns[row]),
            "digest": hashed.digest_hex(row),
            "hash": hashed.hex(row),
            "colour": bool(colour[row]),
            "depth": depth,
            "lossless": bool(lossless),
            "frames": frames,
        }

    groups = []
    for number, group in enumerate(plan.groups, start=1):
        removals = [
            {
                **describe(removal.row),
                "nearest_keep": hashed.paths[removal.nearest_keep],
                "bits": removal.bits,
                "distance": round(float(metric.from_bits(removal.bits)), 6),
                "view": removal.view,
            }
            for removal in group.remove
        ]
        groups.append({"id": number, "keep": [describe(row) for row in group.keep], "remove": removals})
    return groups


def write_delete_report(run_folder: Path, report: DeleteReport, size_label: int | str, threshold: float
                        ) -> tuple[dict, dict]:
    """Write the keep/remove CSVs and report.json into `run_folder` (report.json replaces
    the one a real run writes before it acts); returns their paths and the data of
    report.json (for the review page, which so need not read the file back)."""
    label = threshold_label(threshold)
    keep_csv = run_folder / f"duplicates_keep_{size_label}_dist_{label}.csv"
    remove_csv = run_folder / f"duplicates_remove_{size_label}_dist_{label}.csv"
    _write_csv(
        keep_csv,
        ["path", "group", "width", "height", "size", "hash"],
        ([k["path"], g["id"], k["width"], k["height"], k["size"], k["hash"]] for g in report.groups for k in g["keep"]),
    )
    _write_csv(
        remove_csv,
        ["path", "group", "nearest_keep", "distance", "bits", "size", "hash", "view"],
        (
            [r["path"], g["id"], r["nearest_keep"], r["distance"], r["bits"], r["size"], r["hash"], r["view"]]
            for g in report.groups
            for r in g["remove"]
        ),
    )
    report_json = run_folder / "report.json"
    data = report.to_json()
    write_json(report_json, data, replace=report_json.exists())
    return {"keep_csv": str(keep_csv), "remove_csv": str(remove_csv), "report": str(report_json)}, data


def write_search_matches(output_path, result) -> str:
    """matches.csv (query, path, distance, bits, width, height, and with --views the views
    that matched) of a query-folder search in a new run folder; returns its path."""
    folder = create_run_folder(output_path, "search")
    path = folder / "matches.csv"
    views = ["view"] if result.views else []
    _write_csv(path, ["query", "path", "distance", "bits", "width", "height", *views],
               ([query, m.path, round(m.distance, 6), m.bits, m.width, m.height, *([m.view] if views else [])]
                for query, found in result.queries.items() for m in found))
    return str(path)


def _write_csv(path: Path, header: list[str], rows) -> None:
    # surrogateescape: a file name that is not UTF-8 is written as its own bytes, so the
    # CSV names the very file (report.json escapes such names as \udcXX, which Python
    # turns back into the same bytes with os.fsencode).
    with open(path, "x", newline="", encoding="utf-8", errors="surrogateescape") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


