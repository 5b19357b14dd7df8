"""scan_images: which files are images, which are skipped, and why."""

import os
from pathlib import Path

import pytest
from conftest import photo

from dedup_cli.media.scan import OUTPUT_MARKER, scan_images


def write_image(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = photo(seed, size=(32, 24))
    image.save(path, format={".jpg": "JPEG", ".jpeg": "JPEG"}.get(path.suffix.lower()))
    return path


def skipped_reasons(result) -> dict[str, str]:
    return dict(result.skipped)


def test_finds_images_recursively_with_any_extension_case(tmp_path):
    names = ["a.JPG", "sub/b.Png", "sub/c.webp", "sub/deeper/d.tif", "e.bmp", "sub/f.gif", "sub/deeper/g.jpeg"]
    for seed, name in enumerate(names):
        write_image(tmp_path / name, seed)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub" / "meta.json").write_text("{}")

    result = scan_images(tmp_path)

    assert result.root == tmp_path.absolute()
    assert result.files == sorted((tmp_path / name).absolute() for name in names)
    assert all(path.is_absolute() for path in result.files)
    assert result.skipped == []


def test_results_are_absolute_and_sorted_for_a_relative_root(tmp_path, monkeypatch):
    names = {"z.png", "a/y.png", "m.png", "a/b/x.png"}
    for name in names:
        write_image(tmp_path / "lib" / name)
    monkeypatch.chdir(tmp_path)

    result = scan_images("lib")

    assert all(path.is_absolute() for path in result.files)
    assert result.files == sorted(result.files)
    assert {path.relative_to(tmp_path / "lib").as_posix() for path in result.files} == names


def test_symbolic_links_are_not_followed_and_are_reported(tmp_path):
    outside = tmp_path / "outside"
    write_image(outside / "real.png")
    write_image(outside / "folder" / "inner.png")
    root = tmp_path / "lib"
    write_image(root / "own.png")
    os.symlink(outside / "real.png", root / "link.png")
    os.symlink(outside / "folder", root / "linked_folder", target_is_directory=True)

    result = scan_images(root)

    assert result.files == [root / "own.png"]
    reasons = skipped_reasons(result)
    assert set(reasons) == {str(root / "link.png"), str(root / "linked_folder")}
    assert all("symbolic link" in reason for reason in reasons.values())


def test_excluded_folder_is_skipped_with_a_reason(tmp_path):
    root = tmp_path / "lib"
    write_image(root / "keep.png")
    write_image(root / "backups" / "old.png")

    result = scan_images(root, exclude=(root / "backups",))

    assert result.files == [root / "keep.png"]
    reasons = skipped_reasons(result)
    assert list(reasons) == [str(root / "backups")]
    assert reasons[str(root / "backups")]


@pytest.mark.parametrize("output_folder", ["dedup-out", "a/b/c/dedup-out"])
def test_folder_with_output_marker_is_skipped_without_being_excluded(tmp_path, output_folder):
    root = tmp_path / "lib"
    write_image(root / "keep.png")
    write_image(root / "a" / "b" / "c" / "keep_too.png")
    output = root / output_folder
    write_image(output / "backup.png")
    write_image(output / "inside" / "backup2.png")
    (output / OUTPUT_MARKER).write_text("")

    result = scan_images(root)

    assert result.files == [root / "a" / "b" / "c" / "keep_too.png", root / "keep.png"]
    reasons = skipped_reasons(result)
    assert list(reasons) == [str(output)]
    assert "output" in reasons[str(output)]


def test_hidden_files_and_folders_are_ignored(tmp_path):
    root = tmp_path / "lib"
    write_image(root / "visible.png")
    write_image(root / ".hidden.png")
    write_image(root / ".thumbnails" / "thumb.png")
    write_image(root / "sub" / ".also_hidden.jpg")

    result = scan_images(root)

    assert result.files == [root / "visible.png"]
    assert all(".thumbnails" not in path and "hidden" not in path for path, _ in result.skipped)
