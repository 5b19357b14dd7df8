"""Self-contained HTML pages in run folders: a template from the package, the data as JSON.

A page loads nothing from the network: its CSS and JavaScript are in the template and
its data is embedded in a `<script type="application/json">` element, so it opens from
the file system with no server.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

DATA_MARKER = "/*PAGE-DATA*/"

# Inside a <script> element only "</script" (or "<!--") ends or breaks the element, so
# the characters that start them are written as JSON escapes; & keeps it valid XHTML too.
# U+2028/2029 are already escaped by ensure_ascii.
_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def embed_json(data) -> str:
    """`data` as JSON text that is safe inside a `<script>` element, whatever its strings
    hold (a file named `</script><img onerror=...>.jpg` stays a string). Names that are
    not UTF-8 (lone surrogates) come out as \\udcXX escapes, as in report.json."""
    return json.dumps(data, ensure_ascii=True, separators=(",", ":")).translate(_SCRIPT_SAFE)


def render(template_name: str, data) -> str:
    """The packaged template `present/templates/<template_name>` with `data` embedded at its
    DATA_MARKER. Raises FileNotFoundError when the package lacks the template."""
    template = resources.files("dedup_cli.present").joinpath("templates", template_name).read_text(encoding="utf-8")
    if template.count(DATA_MARKER) != 1:
        raise ValueError(f"template {template_name} must hold {DATA_MARKER} exactly once")
    before, after = template.split(DATA_MARKER)
    return before + embed_json(data) + after


def save_page(path: Path, text: str) -> None:
    """Write `text` to `path` (writes to disk) through a temporary name, so a reader or a
    kill never sees half a page; replaces `path` if it exists (callers decide whether it may)."""
    from dedup_cli.runs import replacing

    with replacing(Path(path)) as handle:
        handle.write(text)


def file_uri(path: str | os.PathLike) -> str:
    """The file:// URI of `path` (absolute), for printing and for opening in a browser."""
    return Path(path).absolute().as_uri()
