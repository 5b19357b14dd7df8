"""Every `$ dedup ...` line of the README runs as written (from a copy of the repo layout)."""

import csv
import json
import re
import shlex
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import DEMO, REPO, cnn_unavailable

from dedup_cli.cli import main

COMMANDS = [
    line[2:].strip()
    for line in (REPO / "README.md").read_text().splitlines()
    if line.startswith("$ dedup ") and "~" not in line  # lines on the user's own folders are examples
]


def test_readme_shows_commands():
    assert len(COMMANDS) >= 5
    assert {shlex.split(c)[1] for c in COMMANDS} >= {"delete", "search", "show", "evaluate"}


def check_output(command: str, output: str) -> None:
    """What the README says each command gives on the demo set."""
    words = shlex.split(command)
    if "datasets/demo-videos" in command:
        check_video_output(words, output)
    elif words[1] == "delete":
        assert "Scanned 47 images" in output and "Dry run" in output
        assert Path(re.search(r"Review: (\S+)", output).group(1)).is_file()
        if "euclidean" in words:
            assert "Threshold: 3 euclidean (9 bits of 64)" in output
        if "cnn" in words:
            assert "Threshold: cosine similarity >= 0.8 (CNN embeddings" in output
        if "--views" in words:  # the run hashed the views, and each removal says which matched
            report = json.loads(Path(re.search(r"Report: (\S+)", output).group(1)).read_text())
            assert report["settings"]["views"] is True
            assert all("view" in r for g in report["groups"] for r in g["remove"])
        if "--verify" in words:  # the run took the second look (the demo needs none of it)
            report = json.loads(Path(re.search(r"Report: (\S+)", output).group(1)).read_text())
            assert report["settings"]["verify"] is True and report["settings"]["verify_bits"] == 6
    elif words[1] == "search" and "json" in words:
        matches = json.loads(output)["matches"]
        assert 1 <= len(matches) <= int(words[words.index("--nearest-neighbors") + 1])
        assert all("bridge" in m["path"] or "DSC00412" in m["path"] for m in matches)
    elif words[1] == "search" and "csv" in words:
        rows = list(csv.DictReader(output.splitlines()))
        assert {Path(r["query"]).name: Path(r["path"]).name for r in rows}["bridge_70.jpg"] == "bridge.jpg"
    elif words[1] == "search":
        assert "bridge_70.jpg" in output
        if "--views" in words:  # a column says which views matched: whole pictures, for these copies
            assert output.splitlines()[0].split() == ["distance", "bits", "size", "view", "path"]
            assert all(line.split()[3] == "whole" for line in output.splitlines()[1:])
        if "cnn" in words:  # distances in 1 - cosine, not bits
            assert re.search(r"^\s*0\.\d{4}\s", output, re.M)
    elif words[1] == "show":
        assert Path(re.search(r"t-SNE coordinates: (\S+)", output).group(1)).is_file()
        assert Path(re.search(r"interactive map: (\S+)", output).group(1)).is_file()
    elif words[1] == "match":
        lines = output.splitlines()
        assert lines[0] == "id_a,id_b,distance" and len(lines) > 40
        assert "archive/bridge_q40.jpg,originals/bridge.jpg,0" in lines
    elif "json" in words:
        assert json.loads(output)["linked_recall"] == 1.0
    else:
        assert "linked pairs: precision 1.0000, recall 1.0000" in output
        if "cnn" in words:
            assert "CNN embeddings, threshold cosine similarity >= 0.8" in output


def check_video_output(words: list[str], output: str) -> None:
    """What the README says the video commands give on datasets/demo-videos."""
    if words[1] == "delete":
        assert "Scanned 7 videos: 7 fingerprinted" in output and "1 groups of the same video, 5 to remove" in output
    elif words[1] == "search":
        assert "walk.mp4" in output and "other.mp4" not in output
    else:
        assert "grouped pairs: precision 1.0000, recall 1.0000" in output


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_runs(command, tmp_path, monkeypatch):
    if "--method cnn" in command and cnn_unavailable():
        pytest.skip(cnn_unavailable())
    shutil.copytree(DEMO, tmp_path / "datasets" / "demo")
    if "demo-videos" in command:
        pytest.importorskip("av")
        shutil.copytree(DEMO.parent / "demo-videos", tmp_path / "datasets" / "demo-videos")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, shlex.split(command)[1:])
    assert result.exit_code == 0, result.output
    assert not re.search(r"Traceback|Error", result.output)
    check_output(command, result.stdout)


def test_every_test_the_safety_table_names_exists():
    section = (REPO / "README.md").read_text().split("## Safety", 1)[1].split("\n## ", 1)[0]
    named = 0
    for cell in re.findall(r"\| (`test_[^|]+)\|\n", section):
        module = None
        for reference in re.findall(r"`([^`]+)`", cell):
            file_part, _, test = reference.partition("::")
            module = file_part or module
            source = (REPO / "tests" / module).read_text()
            if test:
                assert f"def {test}(" in source, reference
                named += 1
    assert named >= 15
