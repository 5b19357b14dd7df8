"""The benchmark scripts the README shows for views and simple graphics run as written, on
small inputs: the generator writes what its truth file says, and the cost benchmark prints
a row for every setting."""

import csv
import subprocess
import sys

import pytest
from click.testing import CliRunner
from conftest import DEMO, REPO

from dedup_cli.cli import main


def _script(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=REPO, check=False)


def test_make_graphics_writes_distinct_graphics_and_their_copies(tmp_path):
    made = _script("benchmarks/make_graphics.py", tmp_path / "graphics", "--count", "6")
    assert made.returncode == 0, made.stderr

    with open(tmp_path / "graphics" / "truth.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 18 and len({row["group"] for row in rows}) == 6
    assert {row["transform"] for row in rows} == {"original", "jpeg", "half"}
    assert all((tmp_path / "graphics" / row["file"]).is_file() for row in rows)
    evaluated = CliRunner().invoke(main, ["evaluate", "--images-path", str(tmp_path / "graphics"), "--truth",
                                          str(tmp_path / "graphics" / "truth.csv"), "--output-path",
                                          str(tmp_path / "out"), "--no-cache", "--format", "json"])
    assert evaluated.exit_code == 0, evaluated.output
    assert '"files_in_truth": 18' in evaluated.output


@pytest.mark.slow
def test_bench_views_prints_every_setting_against_the_default(tmp_path):
    result = _script("benchmarks/bench_views.py", DEMO, "--repeat", "1")

    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[2:]}
    assert set(rows) == {"default", "--isometric", "--views", "both"}
    assert rows["default"].split()[4] == "1.00"  # the default against itself
