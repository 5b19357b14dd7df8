"""Measure a dry run against a labelled truth.csv: pair and removal precision/recall.

Pure apart from reading the truth file; the plan comes from the same code as `delete`.
"""

from __future__ import annotations

import csv
import itertools
import os
from collections import Counter, defaultdict
from pathlib import Path

from dedup_cli.errors import InputError


def read_truth(path: str | os.PathLike, root: str | os.PathLike) -> tuple[dict[str, str], dict[str, str]]:
    """Map absolute file path -> group, and -> kind of edit (from a `note` or
    `transform` column, when present). Paths in the file are relative to `root`."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"file", "group"} <= set(reader.fieldnames):
                raise InputError(f"Truth file '{path}' needs the columns file,group")
            rows = list(reader)
    except OSError as exc:
        raise InputError(f"Cannot read truth file '{path}': {exc.strerror or exc}") from exc
    base = Path(root).absolute()
    groups, kinds = {}, {}
    for row in rows:
        absolute = str(base / row["file"])
        groups[absolute] = row["group"]
        kind = row.get("transform") or row.get("note")
        if kind:
            kinds[absolute] = kind
    return groups, kinds


def _pairs(groups_of_files) -> set[tuple[str, str]]:
    pairs = set()
    for members in groups_of_files:
        pairs.update(itertools.combinations(sorted(members), 2))
    return pairs


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 1.0


def score(plan, hashed, truth: dict[str, str], kinds: dict[str, str], links=None) -> dict:
    """Compare a plan with the truth; files outside the truth are ignored.

    Grouped pairs are the pairs of files in one group of the plan (a kept file and the
    files removed because of it); linked pairs, when `links` (row pairs, as
    Matcher.pairs gives) is passed, are all pairs the matcher calls duplicates, as peers
    count pairs within their threshold.
    """
    known = [p for p in hashed.paths if p in truth]
    members_by_truth = defaultdict(list)
    for path in truth:
        members_by_truth[truth[path]].append(path)
    true_pairs = _pairs(members_by_truth.values())
    predicted_groups = [[hashed.paths[r] for r in g.rows if hashed.paths[r] in truth] for g in plan.groups]
    predicted_pairs = _pairs(predicted_groups)
    hits = true_pairs & predicted_pairs
    removed = {hashed.paths[r.row] for r in plan.removals} & set(known)
    kept = set(known) - removed
    kept_groups = Counter(truth[p] for p in kept)
    good_removals = [p for p in removed if kept_groups[truth[p]] > 0]
    redundant = sum(max(0, n - 1) for n in Counter(truth[p] for p in known).values())
    lost = sorted(g for g in {truth[p] for p in known} if kept_groups[g] == 0)
    linked = {}
    if links is not None:
        linked_pairs = {tuple(sorted((hashed.paths[i], hashed.paths[j]))) for i, j in zip(*links)}
        linked_pairs = {pair for pair in linked_pairs if pair[0] in truth and pair[1] in truth}
        linked_hits = len(linked_pairs & true_pairs)
        linked = {"linked_pairs": len(linked_pairs), "linked_false_pairs": len(linked_pairs - true_pairs),
                  "linked_precision": _ratio(linked_hits, len(linked_pairs)),
                  "linked_recall": _ratio(linked_hits, len(true_pairs))}
    recall_by_kind, negatives_by_kind = _by_kind(plan, hashed, truth, kinds)
    return linked | {
        "files": len(hashed.paths),
        "files_in_truth": len(truth),
        "unreadable_in_truth": sorted(p for p, _ in hashed.failures if p in truth),
        "true_pairs": len(true_pairs),
        "predicted_pairs": len(predicted_pairs),
        "correct_pairs": len(hits),
        "false_pairs": len(predicted_pairs - true_pairs),
        "pair_precision": _ratio(len(hits), len(predicted_pairs)),
        "pair_recall": _ratio(len(hits), len(true_pairs)),
        "removed": len(removed),
        "wrongly_removed": sorted(set(removed) - set(good_removals)),
        "removal_precision": _ratio(len(good_removals), len(removed)),
        "removal_recall": _ratio(len(good_removals), redundant),
        "groups_losing_every_member": lost,
        "recall_by_kind": recall_by_kind,
        "negatives_by_kind": negatives_by_kind,
        "false_pair_examples": sorted(predicted_pairs - true_pairs)[:20],
    }


def _by_kind(plan, hashed, truth, kinds) -> tuple[dict[str, dict], dict[str, dict]]:
    """Per kind of edit, in one pass over the files:
    - copies (files with others in their truth group): how many share a predicted group
      with at least one other member of their truth group (were detected as a copy at all);
    - hard negatives (files alone in their truth group: a colour variant, another flag):
      how many share a predicted group with any other file, and how many the plan
      removes. Such a kind has no copies to find, so it counts mistakes."""
    group_of_row = {row: number for number, group in enumerate(plan.groups) for row in group.rows}
    truth_members = Counter(truth[p] for p in hashed.paths if p in truth)
    removed_rows = {removal.row for removal in plan.removals}
    totals, found, alone, paired, removed = Counter(), Counter(), Counter(), Counter(), Counter()
    for row, path in enumerate(hashed.paths):
        if path not in kinds:
            continue
        kind, number = kinds[path], group_of_row.get(row)
        if truth_members[truth[path]] == 1:
            alone[kind] += 1
            paired[kind] += number is not None  # a plan's group always has a removal
            removed[kind] += row in removed_rows
            continue
        totals[kind] += 1
        if number is not None:
            same = sum(1 for r in plan.groups[number].rows if truth.get(hashed.paths[r]) == truth[path])
            found[kind] += same > 1
    recall = {kind: {"files": totals[kind], "found": found[kind], "recall": _ratio(found[kind], totals[kind])}
              for kind in sorted(totals)}
    negatives = {kind: {"files": alone[kind], "paired": paired[kind], "removed": removed[kind]}
                 for kind in sorted(alone)}
    return recall, negatives


def run_evaluate(options, truth_path, keep_policy: str = "resolution", on_progress=None, on_total=None) -> dict:
    """Dry-run the delete pipeline on the files of truth_path (images and videos, as
    options.media says) and score the plan."""
    from dedup_cli.pipeline import collect, on_cluster, plan_collection, settings_dict

    truth, kinds = read_truth(truth_path, options.images_path)
    with on_cluster(options) as connected:
        # Unlabelled files in the folder would link labelled ones through chains: leave them out.
        collection = collect(connected, on_progress=on_progress, on_total=on_total, only=set(truth))
        planned = plan_collection(collection, connected, keep_policy, with_links=True)
    result = score(planned.plan, planned.hashed, truth, kinds, planned.links)
    result["settings"] = settings_dict(options) | {"keep_policy": keep_policy}
    if collection.model_sha256:
        result["settings"]["model_sha256"] = collection.model_sha256
    result["notes"] = collection.notes
    return result
