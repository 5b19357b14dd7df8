"""runs.write_json: the run records apply and undo read back."""

import json

import pytest

from dedup_cli.runs import write_json


def test_a_record_round_trips_with_one_line_per_list_item(tmp_path):
    groups = [{"id": n, "path": f"p\udcff{n}.jpg", "bits": [1, 2]} for n in range(500)]
    data = {"format": "dedup-report", "groups": groups, "empty": [],
            "summary": {"scanned": 3, "nested": {"a": [1]}}, "name": "café"}
    path = tmp_path / "report.json"
    write_json(path, data)
    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == data
    group_lines = [line for line in text.splitlines() if line.lstrip().startswith('{"id"')]
    assert len(group_lines) == 500
    with pytest.raises(FileExistsError):  # never overwrites unless asked to replace
        write_json(path, {"other": 1})
    write_json(path, {"other": 1}, replace=True)
    assert json.loads(path.read_text()) == {"other": 1}
    assert not path.with_name("report.json.partial").exists()
