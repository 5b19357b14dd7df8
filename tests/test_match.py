"""`dedup match` on hash lists: known pairs through the CLI, every kind of bad input
refused with its file and line (exit code 2, nothing written), and the reader itself."""

import csv
import io

import numpy as np
import pytest
from click.testing import CliRunner

from dedup_cli.cli import main
from dedup_cli.hashlist import HashListError, iter_matches, read_hash_lists, write_matches

ZERO = "0" * 16


def run(*args):
    return CliRunner().invoke(main, ["match", *[str(a) for a in args]], catch_exceptions=False)


def write(path, *lines, header="id,hash"):
    path.write_text("\n".join(([header] if header is not None else []) + list(lines)) + "\n")
    return path


def rows(text: str) -> set[tuple[str, str, int]]:
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0] == ["id_a", "id_b", "distance"]
    return {(a, b, int(d)) for a, b, d in lines[1:]}


@pytest.fixture
def small_list(tmp_path):
    # a-b 2 bits, a-c 4, b-c 2 (c = b with 2 more bits), d far from all.
    return write(tmp_path / "hashes.csv", f"a.jpg,{ZERO}", "b.jpg,0000000000000003", "c.jpg,000000000000000f",
                 "d.jpg,ffffffffffffff00")


def test_pairs_within_the_threshold_go_to_standard_output(small_list):
    result = run("--hashes", small_list, "--threshold", 2)
    assert result.exit_code == 0, result.output
    assert rows(result.stdout) == {("a.jpg", "b.jpg", 2), ("b.jpg", "c.jpg", 2)}
    assert "2 pairs within 2 bits among 4 hashes" in result.stderr


@pytest.mark.parametrize("tree_type", ["mih", "KDTree", "cKDTree"])
def test_every_tree_type_gives_the_same_pairs(small_list, tree_type):
    result = run("--hashes", small_list, "--threshold", 4, "--tree-type", tree_type)
    assert rows(result.stdout) == {("a.jpg", "b.jpg", 2), ("b.jpg", "c.jpg", 2), ("a.jpg", "c.jpg", 4)}


def test_against_pairs_each_hash_with_the_other_file_only(small_list, tmp_path):
    against = write(tmp_path / "b.csv", "x.png,0000000000000001", "y.png,ffffffffffffffff", f"z.png,{ZERO}")
    result = run("--hashes", small_list, "--against", against, "--threshold", 1)
    assert rows(result.stdout) == {("a.jpg", "x.png", 1), ("a.jpg", "z.png", 0), ("b.jpg", "x.png", 1)}
    assert "3 pairs within 1 bits among 4 hashes against 3" in result.stderr


def test_output_file_is_written_and_never_overwritten(small_list, tmp_path):
    output = tmp_path / "pairs.csv"
    result = run("--hashes", small_list, "--threshold", 2, "--output", output)
    assert result.exit_code == 0 and result.stdout == ""
    assert rows(output.read_text()) == {("a.jpg", "b.jpg", 2), ("b.jpg", "c.jpg", 2)}
    output.write_text("mine")
    result = run("--hashes", small_list, "--threshold", 2, "--output", output)
    assert result.exit_code == 2 and "exists" in result.stderr and str(output) in result.stderr
    assert output.read_text() == "mine"


def test_quoted_ids_with_commas_and_quotes_come_back_as_csv(tmp_path):
    hashes = write(tmp_path / "q.csv", f'"photos/a, b.jpg",{ZERO}', f'plain"quote.jpg,"{ZERO}"',
                   f'"x ""y"".jpg",{ZERO}')
    result = run("--hashes", hashes, "--threshold", 0)
    assert result.exit_code == 0, result.output
    assert rows(result.stdout) == {("photos/a, b.jpg", 'plain"quote.jpg', 0), ("photos/a, b.jpg", 'x "y".jpg', 0),
                                   ('plain"quote.jpg', 'x "y".jpg', 0)}


def test_long_hashes_crlf_lines_and_a_byte_order_mark(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, 32, dtype=np.uint8)
    near = base.copy()
    near[0] ^= 0b111  # 3 bits apart
    far = rng.integers(0, 256, 32, dtype=np.uint8)
    text = "id,hash\r\n" + "".join(f"{name},{h.tobytes().hex().upper()}\r\n"
                                   for name, h in (("base", base), ("near", near), ("far", far)))
    hashes = tmp_path / "long.csv"
    hashes.write_bytes(b"\xef\xbb\xbf" + text.encode())
    result = run("--hashes", hashes, "--threshold", 31)
    assert result.exit_code == 0, result.output
    assert rows(result.stdout) == {("base", "near", 3)}


def test_header_only_gives_no_pairs(tmp_path):
    result = run("--hashes", write(tmp_path / "empty.csv"), "--threshold", 5)
    assert result.exit_code == 0 and rows(result.stdout) == set()


BAD_ROWS = [
    (f"a.jpg,{ZERO[:15]}", "line 2: the hash has 15 hex digits"),
    ("a.jpg,00000000000000g0", "line 2: the hash is not hexadecimal: '00000000000000g0'"),
    (f"a.jpg,{ZERO},extra", "line 2: expected 2 columns (id,hash), found 3"),
    ("a.jpg", "line 2: expected 2 columns (id,hash), found 1"),
    (f",{ZERO}", "line 2: the id is empty"),
    (f'"a.jpg,{ZERO}', "line 2: expected 2 columns (id,hash), found 1"),
]


@pytest.mark.parametrize(("line", "message"), BAD_ROWS)
def test_each_bad_row_is_named_with_file_and_line_and_nothing_is_written(tmp_path, line, message):
    hashes = write(tmp_path / "bad.csv", line, f"b.jpg,{ZERO}")
    output = tmp_path / "pairs.csv"
    result = run("--hashes", hashes, "--threshold", 3, "--output", output)
    assert result.exit_code == 2
    assert f"{hashes}: {message}" in result.stderr
    assert not output.exists() and result.stdout == ""


@pytest.mark.parametrize(("header", "message"), [
    (None, "line 1: the header must be 'id,hash'"),
    ("name,phash", "line 1: the header must be 'id,hash', not 'name,phash'"),
    ("", "line 1: no header"),
])
def test_a_missing_or_wrong_header_is_refused(tmp_path, header, message):
    hashes = write(tmp_path / "h.csv", f"a.jpg,{ZERO}", header=header)
    result = run("--hashes", hashes, "--threshold", 3)
    assert result.exit_code == 2 and f"{hashes}: {message}" in result.stderr


def test_an_empty_file_is_refused(tmp_path):
    hashes = tmp_path / "nothing.csv"
    hashes.write_bytes(b"")
    result = run("--hashes", hashes, "--threshold", 3)
    assert result.exit_code == 2 and f"{hashes}: line 1: no header" in result.stderr


def test_duplicate_ids_and_lengths_that_differ_from_the_rest_of_the_file(tmp_path):
    hashes = write(tmp_path / "h.csv", f"a.jpg,{ZERO}", f"b.jpg,{ZERO * 2}", f"c.jpg,{ZERO}", f"a.jpg,{ZERO}")
    result = run("--hashes", hashes, "--threshold", 3)
    assert result.exit_code == 2
    assert f"{hashes}: line 3: the hash has 32 hex digits, the file's other hashes 16" in result.stderr
    assert f"{hashes}: line 5: duplicate id 'a.jpg' (first on line 2)" in result.stderr


def test_problems_of_both_files_are_listed_together(tmp_path):
    first = write(tmp_path / "a.csv", "a.jpg,xyz0000000000000")
    second = write(tmp_path / "b.csv", f"b.jpg,{ZERO}", "c.jpg")
    result = run("--hashes", first, "--against", second, "--threshold", 3)
    assert result.exit_code == 2
    assert f"{first}: line 2:" in result.stderr and f"{second}: line 3:" in result.stderr


def test_files_of_different_hash_lengths_are_refused(tmp_path):
    first = write(tmp_path / "a.csv", f"a.jpg,{ZERO}")
    second = write(tmp_path / "b.csv", f"b.jpg,{ZERO * 4}")
    result = run("--hashes", first, "--against", second, "--threshold", 3)
    assert result.exit_code == 2 and "64 hex digits" in result.stderr and "both need hashes of one length" in (
        result.stderr)


def test_many_bad_rows_list_the_first_twenty_and_count_the_rest(tmp_path):
    hashes = write(tmp_path / "h.csv", *[f"img{k},nothex" for k in range(50)])
    result = run("--hashes", hashes, "--threshold", 3)
    assert result.exit_code == 2
    assert "50 bad rows" in result.stderr and "line 21:" in result.stderr and "line 22:" not in result.stderr
    assert "... and 30 more" in result.stderr


def test_the_reader_decodes_hex_as_packed_bytes_and_the_writer_streams_every_pair(tmp_path):
    rng = np.random.default_rng(4)
    packed = rng.integers(0, 256, size=(500, 8), dtype=np.uint8)
    packed[250:] = packed[:250] ^ (rng.random((250, 8)) < 0.02) * np.uint8(1)  # near copies
    write(tmp_path / "h.csv", *[f"row{k},{row.tobytes().hex()}" for k, row in enumerate(packed)])
    hashes, against = read_hash_lists(tmp_path / "h.csv")
    assert against is None and np.array_equal(hashes.packed, packed) and hashes.n_bits == 64
    stream = io.BytesIO()
    count = write_matches(stream, iter_matches(hashes, None, 2), hashes, None)
    found = rows(stream.getvalue().decode())
    distances = np.bitwise_count(packed[:, None, :] ^ packed[None, :, :]).sum(axis=-1)
    expected = {(f"row{i}", f"row{j}", int(distances[i, j])) for i, j in zip(*np.nonzero(distances <= 2)) if i < j}
    assert found == expected and count == len(expected) > 200


def test_the_reader_raises_its_own_error_with_every_problem(tmp_path):
    write(tmp_path / "h.csv", "a,zz", "b,yy")
    with pytest.raises(HashListError) as caught:
        read_hash_lists(tmp_path / "h.csv")
    assert [problem.line for problem in caught.value.problems] == [2, 3]
