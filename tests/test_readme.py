"""Every `$ dedup ...` line of the README runs as written (from a copy of the repo layout)."""

import re
import shlex
import shutil

import pytest
from click.testing import CliRunner
from conftest import DEMO, REPO

from dedup_cli.cli import main

COMMANDS = [
    line[2:].strip()
    for line in (REPO / "README.md").read_text().splitlines()
    if line.startswith("$ dedup ") and "~" not in line  # lines on the user's own folders are examples
]


def test_readme_shows_commands():
    assert len(COMMANDS) >= 5
    assert {shlex.split(c)[1] for c in COMMANDS} >= {"delete", "search", "show", "evaluate"}


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_runs(command, tmp_path, monkeypatch):
    shutil.copytree(DEMO, tmp_path / "datasets" / "demo")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, shlex.split(command)[1:])
    assert result.exit_code == 0, result.output
    assert not re.search(r"Traceback|Error", result.output)
