"""HashCache with hash_collection: reuse, invalidation, failures, corruption, sharing."""

import os
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import photo

import dedup_cli.fingerprint.hashing
from dedup_cli.errors import UnreadableImage
from dedup_cli.fingerprint.cache import HashCache, default_cache_path
from dedup_cli.fingerprint.hashing import FileStat, HashRecord, HashSettings, hash_collection

PHASH = HashSettings("phash", 8)


@pytest.fixture
def images(tmp_path) -> list[Path]:
    paths = []
    for seed in range(3):
        path = tmp_path / "lib" / f"pic{seed}.png"
        path.parent.mkdir(exist_ok=True)
        photo(seed).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def cache(tmp_path):
    cache = HashCache(tmp_path / "cache" / "hashes.sqlite")
    yield cache
    cache.close()


def no_decoding(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("load_image called although the cache should have answered")

    monkeypatch.setattr(dedup_cli.fingerprint.hashing, "load_image", refuse)


def test_second_run_comes_from_cache_with_identical_bits(images, cache, monkeypatch):
    first = hash_collection(images, PHASH, workers=1, cache=cache)
    assert first.from_cache == 0 and first.failures == []

    no_decoding(monkeypatch)
    second = hash_collection(images, PHASH, workers=1, cache=cache)

    assert second.from_cache == len(images)
    assert second.failures == []
    assert second.paths == first.paths
    assert np.array_equal(second.packed, first.packed)
    assert np.array_equal(second.width, first.width) and np.array_equal(second.height, first.height)


def test_cache_survives_reopening(images, tmp_path, monkeypatch):
    path = tmp_path / "cache" / "hashes.sqlite"
    first_cache = HashCache(path)
    first = hash_collection(images, PHASH, cache=first_cache)
    first_cache.close()

    no_decoding(monkeypatch)
    reopened = HashCache(path)
    second = hash_collection(images, PHASH, cache=reopened)
    reopened.close()
    assert second.from_cache == len(images)
    assert np.array_equal(second.packed, first.packed)


def test_rewritten_file_is_hashed_again(images, cache):
    first = hash_collection(images, PHASH, cache=cache)
    changed = images[1]
    before = os.stat(changed)
    photo(42).save(changed)
    os.utime(changed, ns=(before.st_atime_ns, before.st_mtime_ns + 5_000_000_000))

    second = hash_collection(images, PHASH, cache=cache)

    assert second.from_cache == len(images) - 1
    row = second.paths.index(str(changed))
    assert not np.array_equal(second.packed[row], first.packed[row])
    others = [i for i in range(len(images)) if i != row]
    assert np.array_equal(second.packed[others], first.packed[others])


def test_same_size_file_with_new_mtime_is_hashed_again(images, cache, monkeypatch):
    hash_collection(images, PHASH, cache=cache)
    info = os.stat(images[0])
    os.utime(images[0], ns=(info.st_atime_ns, info.st_mtime_ns + 1))

    calls, real_load_image = [], dedup_cli.fingerprint.hashing.load_image

    def counting_load_image(path, **kwargs):
        calls.append(path)
        return real_load_image(path, **kwargs)

    monkeypatch.setattr(dedup_cli.fingerprint.hashing, "load_image", counting_load_image)
    second = hash_collection(images, PHASH, cache=cache)

    assert second.from_cache == len(images) - 1
    assert calls == [str(images[0])]


@pytest.mark.parametrize("other", [HashSettings("dhash", 8), HashSettings("phash", 16),
                                   HashSettings("phash", 8, views=True)],
                         ids=["algorithm", "hash_size", "views"])
def test_different_settings_do_not_reuse_entries(images, cache, other):
    hash_collection(images, PHASH, cache=cache)

    result = hash_collection(images, other, cache=cache)

    assert result.from_cache == 0
    assert result.packed.shape == (len(images), other.n_bits // 8)
    assert hash_collection(images, other, cache=cache).from_cache == len(images)
    assert hash_collection(images, PHASH, cache=cache).from_cache == len(images)


def test_failures_are_not_cached_so_a_fixed_file_is_read_next_time(images, cache, monkeypatch):
    # Regression: a failure (say permission denied) was cached, and since fixing the
    # permission changes neither size nor mtime, the file stayed "unreadable" for good.
    real_load = dedup_cli.fingerprint.hashing.load_image

    def denied_for_first(path, *args, **kwargs):
        if path == str(images[0]):
            raise UnreadableImage(path, "permission denied")
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(dedup_cli.fingerprint.hashing, "load_image", denied_for_first)
    first = hash_collection(images, PHASH, workers=1, cache=cache)
    assert first.failures == [(str(images[0]), "permission denied")]

    monkeypatch.setattr(dedup_cli.fingerprint.hashing, "load_image", real_load)
    second = hash_collection(images, PHASH, workers=1, cache=cache)
    assert second.failures == [] and len(second.paths) == len(images)
    assert second.from_cache == len(images) - 1


@pytest.mark.parametrize("garbage", [b"not a database", os.urandom(4096)], ids=["text", "random"])
def test_corrupt_cache_is_moved_aside_and_replaced(images, tmp_path, garbage):
    path = tmp_path / "cache" / "hashes.sqlite"
    path.parent.mkdir()
    path.write_bytes(garbage)

    cache = HashCache(path)

    assert len(cache.warnings) == 1 and str(path) in cache.warnings[0]
    aside = [p for p in path.parent.iterdir() if p.name.startswith(path.name + ".corrupt-")]
    assert len(aside) == 1 and aside[0].read_bytes() == garbage
    assert hash_collection(images, PHASH, cache=cache).from_cache == 0
    assert hash_collection(images, PHASH, cache=cache).from_cache == len(images)
    cache.close()
    assert HashCache(path).warnings == []


def entries_for(name: str, count: int) -> list[tuple[FileStat, HashRecord]]:
    return [
        (FileStat(f"/{name}/{i}.png", 1000 + i, 10**18 + i),
         HashRecord(f"/{name}/{i}.png", bytes([i]) * 8, 64, 48, digest=bytes(16)))
        for i in range(count)
    ]


def test_two_caches_on_one_file_can_store_concurrently(tmp_path):
    path = tmp_path / "shared.sqlite"
    HashCache(path).close()  # an existing cache; creating one concurrently is tested below
    errors, warnings = [], []
    start = threading.Barrier(2)

    def writer(name: str) -> None:
        try:
            start.wait()
            cache = HashCache(path)  # sqlite connections belong to the thread that opened them
            for round_ in range(20):
                cache.store(entries_for(name, round_ + 1), PHASH)
            warnings.extend(cache.warnings)
            cache.close()
        except Exception as exc:  # reported below, from the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == [] and warnings == []
    cache = HashCache(path)
    wanted = [stat for name in ("first", "second") for stat, _ in entries_for(name, 20)]
    found = cache.lookup(wanted, PHASH)
    cache.close()
    assert set(found) == {stat.path for stat in wanted}
    assert found["/second/7.png"].packed_bits == bytes([7]) * 8


def test_opening_a_new_cache_waits_for_another_writer(tmp_path):
    # Regression: switching a new cache file to WAL failed at once with 'database is locked'
    # while another run held the write lock, so one of two runs lost its hashes to memory.
    path = tmp_path / "new.sqlite"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # as another run does while it creates the same cache file
    release = threading.Timer(0.3, other.execute, args=("COMMIT",))
    release.start()
    try:
        cache = HashCache(path)
    finally:
        release.join()
        other.close()
    assert cache.warnings == []
    cache.store(entries_for("late", 3), PHASH)
    cache.close()
    reopened = HashCache(path)
    assert len(reopened.lookup([stat for stat, _ in entries_for("late", 3)], PHASH)) == 3
    reopened.close()


def test_default_cache_path_honours_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "elsewhere"))
    assert default_cache_path() == tmp_path / "elsewhere" / "dedup" / "hashes.sqlite"


def test_default_cache_path_falls_back_to_home_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_path() == tmp_path / "home" / ".cache" / "dedup" / "hashes.sqlite"


@pytest.mark.parametrize("options", [(), ("--views", "y", "--isometric", "y")])
def test_a_second_run_reads_its_pairs_and_a_changed_library_finds_them_again(demo_copy, tmp_path, monkeypatch,
                                                                              options):
    from conftest import delete_report, groups_by_name

    import dedup_cli.plan.similarity as similarity

    report = delete_report(demo_copy, tmp_path / "out1", *options)
    first = groups_by_name(report)
    stored = list((default_cache_path().parent / "hashes.sqlite.pairs").glob("*.npz"))
    assert len(stored) == 1 and first
    # Unchanged library: the stored pairs stand in for the search and every colour check.
    calls = []
    for search in ("pairs_within", "cross_pairs"):
        real = getattr(similarity, search)
        monkeypatch.setattr(similarity, search, lambda *a, real=real, **k: calls.append(1) or real(*a, **k))
    assert groups_by_name(delete_report(demo_copy, tmp_path / "out2", *options)) == first and calls == []
    # A file changed: other hashes, another digest, the pairs found again and right.
    removed = Path(report["groups"][0]["remove"][0]["path"])
    photo(7).save(removed, format="PNG")  # another picture under the same name
    changed = groups_by_name(delete_report(demo_copy, tmp_path / "out3", *options))
    assert calls and changed != first and all(removed.name not in group[1] for group in changed)
    # A damaged stored file is passed over, not trusted, and not fatal: bytes that are no
    # array, and an array whose rows are not this library's.
    for damage in (lambda path: path.write_bytes(b"not an array"),
                   lambda path: np.savez(path, pairs=np.array([[0], [10**6], [3]]))):
        for path in (default_cache_path().parent / "hashes.sqlite.pairs").glob("*.npz"):
            damage(path)
        calls.clear()
        assert groups_by_name(delete_report(demo_copy, tmp_path / f"out-{id(damage)}", *options)) == changed
        assert calls


def test_no_cache_keeps_no_pairs(demo_copy, tmp_path):
    from conftest import delete_report

    delete_report(demo_copy, tmp_path / "out", "--no-cache")
    assert not (default_cache_path().parent / "hashes.sqlite.pairs").exists()


def test_pairs_are_not_kept_where_the_checks_code_cannot_be_read(demo_copy, tmp_path, monkeypatch):
    from conftest import delete_report, groups_by_name

    import dedup_cli.plan.similarity as similarity

    monkeypatch.setattr(similarity, "_CHECKS_MODULES", ("plan/no_such_module.py",))
    similarity._checks_code.cache_clear()
    try:
        assert groups_by_name(delete_report(demo_copy, tmp_path / "out"))
    finally:
        similarity._checks_code.cache_clear()
    assert not list((default_cache_path().parent / "hashes.sqlite.pairs").glob("*"))


def _rows_by_path(hashed) -> dict[str, tuple]:
    arrays = [hashed.packed, hashed.colour, hashed.digest, hashed.variants, hashed.views, hashed.view_colour]
    return {path: tuple(bytes(values[row]) for values in arrays) + (int(hashed.width[row]), int(hashed.size[row]))
            for row, path in enumerate(hashed.paths)}


def test_records_read_from_the_cache_a_chunk_at_a_time_keep_their_rows(tmp_path, monkeypatch):
    folder = tmp_path / "mixed"
    folder.mkdir()
    paths = []
    for seed in range(9):
        path = folder / f"pic{seed}.png"
        photo(seed).resize((60 + 7 * seed, 48 + 5 * seed)).save(path)
        paths.append(path)
        if seed % 3 == 1:  # unreadable files between readable ones
            broken = folder / f"broken{seed}.jpg"
            broken.write_bytes(b"not a picture")
            paths.append(broken)
    settings = HashSettings("phash", 8, isometric=True, views=True)
    expected = _rows_by_path(hash_collection(paths, settings))
    monkeypatch.setattr(dedup_cli.fingerprint.hashing, "_ASSEMBLE_CHUNK", 2)
    cache = HashCache(tmp_path / "chunks.sqlite")

    cold = hash_collection(paths, settings, cache=cache)
    half_cached = hash_collection(paths[::2], settings, cache=cache)  # every other file from the cache
    for path in paths[1::2]:
        os.utime(path, ns=(1, 1))  # these are hashed again, between cached ones
    warm = hash_collection(paths, settings, cache=cache)
    cache.close()

    assert _rows_by_path(cold) == expected
    assert _rows_by_path(half_cached) == {path: row for path, row in expected.items() if Path(path) in paths[::2]}
    assert {path: row[:-1] for path, row in _rows_by_path(warm).items()} == {
        path: row[:-1] for path, row in expected.items()}  # (the touched files' size is as before)
    assert [reason for _, reason in warm.failures] == ["not an image file Pillow can read"] * 3
    assert 0 < warm.from_cache < len(expected)


def test_a_cache_that_fails_while_read_hashes_everything(images, cache, monkeypatch):
    hash_collection(images, PHASH, cache=cache)
    rows = cache._current_rows

    def failing_after_one(*args, **kwargs):
        for number, row in enumerate(rows(*args, **kwargs)):
            if number == 1:
                raise sqlite3.DatabaseError("database disk image is malformed")
            yield row

    monkeypatch.setattr(cache, "_current_rows", failing_after_one)
    again = hash_collection(images, PHASH, cache=cache)

    assert again.from_cache == 0 and len(again.paths) == len(images)
    assert any("could not be read" in warning for warning in cache.warnings)
