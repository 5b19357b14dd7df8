"""What --isometric and --views cost: whole `dedup delete` dry runs over one folder,
cold (no cache) and warm (from a filled cache), with each combination of the two options,
against the default run, and optionally against the default run of another checkout
(an earlier commit: the issue's "today's time").

    python benchmarks/bench_views.py FOLDER [--repeat 5] [--baseline DIR]

FOLDER defaults to bench-output/warm2521 (the generated, harder and variants sets of
make_transforms.py and 110 of make_emoji.py's files in one folder; skipped with a
message when absent). The runs alternate (every setting once, then again), and each
figure is the median over --repeat runs: wall time, CPU (user + system of the process
and its workers) and the peak memory of the largest process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from common import REPO, timed_process

SETTINGS = {
    "default": [],
    "--isometric y": ["--isometric", "y"],
    "--views y": ["--views", "y"],
    "both": ["--isometric", "y", "--views", "y"],
}


def run(command: list[str], env: dict) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak memory in MB of one command (common.timed_process)."""
    return timed_process(command, env)[:3]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", nargs="?", type=Path, default=REPO / "bench-output" / "warm2521")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="a checkout of another commit whose default run is timed beside (cold runs only)")
    args = parser.parse_args()
    if not args.folder.is_dir():
        print(f"skipped: {args.folder} is absent (pass a folder of images)")
        return 0
    script = Path(sys.executable).with_name("dedup")
    dedup = [str(script)] if script.exists() else [sys.executable, "-m", "dedup_cli"]
    contenders = {name: (dedup + ["delete", *options], os.environ.copy()) for name, options in SETTINGS.items()}
    if args.baseline:
        env = os.environ | {"PYTHONPATH": str(args.baseline.resolve())}
        contenders = {f"default at {args.baseline}": ([sys.executable, "-m", "dedup_cli", "delete"], env)} | contenders
    results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        output = ["--images-path", str(args.folder), "--output-path", os.path.join(scratch, "out")]
        caches = {name: ["--cache", os.path.join(scratch, f"cache{number}.sqlite")]
                  for number, name in enumerate(contenders)}
        for name, (command, env) in contenders.items():  # fill the caches, and the page cache
            run(command + output + caches[name], env)
        for _ in range(args.repeat):
            for name, (command, env) in contenders.items():
                results.setdefault((name, "cold"), []).append(run(command + output + ["--no-cache"], env))
                if not name.startswith("default at"):
                    results.setdefault((name, "warm"), []).append(run(command + output + caches[name], env))
    print(f"{args.folder}: whole dry runs, median of {args.repeat} (wall s, CPU s, peak MB), load average "
          f"{os.getloadavg()[0]:.2f} at the end")
    cold_default = statistics.median(wall for wall, _, _ in results[("default", "cold")])
    print(f"{'':28}{'cold wall':>10}{'CPU':>8}{'MB':>7}{'x default':>11}{'warm wall':>11}{'CPU':>7}{'MB':>6}")
    for name in contenders:
        cold = [statistics.median(column) for column in zip(*results[(name, "cold")], strict=True)]
        line = f"{name[:27]:28}{cold[0]:>10.2f}{cold[1]:>8.2f}{cold[2]:>7.0f}{cold[0] / cold_default:>11.2f}"
        if (name, "warm") in results:
            warm = [statistics.median(column) for column in zip(*results[(name, "warm")], strict=True)]
            line += f"{warm[0]:>11.2f}{warm[1]:>7.2f}{warm[2]:>6.0f}"
        print(line)
    if args.baseline:
        base = statistics.median(wall for wall, _, _ in results[(f"default at {args.baseline}", "cold")])
        for name in SETTINGS:
            wall = statistics.median(w for w, _, _ in results[(name, "cold")])
            print(f"cold {name}: {wall / base:.2f} x the default run at {args.baseline} (target for the views: <= 1.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
