"""How far colour variants and copies differ after the colour checks' global fit.

    python benchmarks/colour_variants.py FOLDER [FOLDER ...] [--share 0.1]

Each FOLDER holds labelled files and a truth.csv (file, group, transform), as
make_transforms.py writes them; files alone in their truth group are other pictures (the
colour variants other_hue and other_shade). For every pair of files within the default
pHash threshold that the colour checks accept, prints per kind of pair (copies of one
group, or a negative's kind against the picture it was made from) how many there are and
the percentiles of similarity.worst_share_distance: the mean error of the worst --share of
the 16x16 cells after the fit. A kind of variant that the grids could tell from copies
would lie above the copies' high percentiles.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO  # noqa: E402

sys.path.insert(0, str(REPO))

from dedup_cli.evaluate import read_truth  # noqa: E402
from dedup_cli.fingerprint.hashing import HashSettings, hash_collection  # noqa: E402
from dedup_cli.plan.similarity import MatchSettings, vetoed, worst_share_distance  # noqa: E402
from dedup_cli.search.index import IndexSettings, pairs_within  # noqa: E402
from dedup_cli.search.thresholds import default_threshold_bits  # noqa: E402


def folder_pairs(folder: Path, share: float) -> dict[str, list[float]]:
    """kind of pair -> worst_share_distance of each accepted pair of that kind."""
    groups, edits = read_truth(folder / "truth.csv", folder)
    members = Counter(groups.values())
    settings = HashSettings()
    hashed = hash_collection(sorted(groups), settings)
    bits = default_threshold_bits(settings)
    first, second, _ = pairs_within(hashed.packed, settings.n_bits, bits, IndexSettings())
    accepted = ~vetoed(hashed.colour[first], hashed.colour[second], MatchSettings(max_bits=bits))
    first, second = first[accepted], second[accepted]
    distances = worst_share_distance(hashed.colour[first], hashed.colour[second], share)
    kinds = defaultdict(list)
    for a, b, distance in zip(first.tolist(), second.tolist(), distances.tolist(), strict=True):
        (path_a, path_b) = hashed.paths[a], hashed.paths[b]
        (group_a, kind_a), (group_b, kind_b) = ((groups[path], edits.get(path, "")) for path in (path_a, path_b))
        if group_a == group_b:
            kinds["copies"].append(distance)
        else:
            alone = [kind for group, kind in ((group_a, kind_a), (group_b, kind_b)) if members[group] == 1]
            kinds[" & ".join(sorted(alone)) if alone else "other pictures"].append(distance)
    return kinds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", type=Path, nargs="+")
    parser.add_argument("--share", type=float, default=0.1)
    args = parser.parse_args()
    print(f"worst {args.share:g} of the cells after the fit, accepted pairs within the default threshold")
    print(f"{'folder':<28} {'pairs':<24} {'count':>6} {'p10':>6} {'p50':>6} {'p90':>6} {'p99':>6} {'max':>6}")
    for folder in args.folders:
        for kind, values in sorted(folder_pairs(folder, args.share).items()):
            p10, p50, p90, p99, top = np.percentile(values, [10, 50, 90, 99, 100])
            print(f"{folder.name:<28} {kind:<24} {len(values):>6} {p10:>6.1f} {p50:>6.1f} {p90:>6.1f} {p99:>6.1f} "
                  f"{top:>6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
