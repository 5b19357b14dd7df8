"""--scheduler: the exact pair search and the hashing on a 2-worker Dask LocalCluster (on
localhost) give what a local run gives; a worker killed mid-run costs nothing but time."""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from dedup_cli import distributed as dedup_distributed
from dedup_cli.cli import main
from dedup_cli.fingerprint import hashing
from dedup_cli.fingerprint.cache import HashCache
from dedup_cli.search.index import IndexSettings, cross_pairs, pairs_within


def test_without_distributed_scheduler_says_what_to_install(tmp_path, monkeypatch):
    hashes = tmp_path / "hashes.csv"
    hashes.write_text("id,hash\na,0000000000000000\n")
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    result = CliRunner().invoke(main, ["match", "--hashes", str(hashes), "--threshold", "1", "--scheduler", "local"])
    assert result.exit_code == 2
    assert "pip install 'dedup-cli[dask]'" in result.output
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed", reason="the extra dask is not installed")
    cloudpickle = pytest.importorskip("cloudpickle")
    # The workers run this module's task wrappers: sent by value, as the workers cannot import tests.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  host="127.0.0.1") as local:
        yield local


@pytest.fixture
def client(cluster):
    from distributed import Client

    with Client(cluster) as connected:
        yield connected


def synthetic_hashes(count: int, seed: int = 3) -> np.ndarray:
    """Random 64-bit hashes, a tenth of them near copies (1 to 8 bits flipped) of others."""
    rng = np.random.default_rng(seed)
    packed = rng.integers(0, 256, size=(count, 8), dtype=np.uint8)
    copies = rng.choice(count, size=count // 10, replace=False)
    sources = rng.integers(0, count, size=len(copies))
    bits = np.unpackbits(packed[sources], axis=1)
    for row, flips in enumerate(rng.integers(1, 9, size=len(copies))):
        bits[row, rng.choice(64, size=flips, replace=False)] ^= 1
    packed[copies] = np.packbits(bits, axis=1)
    return packed


def write_list(path: Path, packed: np.ndarray, prefix: str) -> Path:
    path.write_text("id,hash\n" + "".join(f"{prefix}{row},{bytes(value).hex()}\n" for row, value in enumerate(packed)))
    return path


def match_lines(*args) -> list[str]:
    result = CliRunner().invoke(main, ["match", *[str(a) for a in args]], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


@pytest.fixture
def sent(monkeypatch) -> dict:
    """How many pair searches, block-pair tasks and hashing maps went to the cluster (so a
    test of the same output as a local run also shows that the run was not local)."""
    counts = {"pairs": 0, "tasks": 0, "hashing": 0}
    search, submit = dedup_distributed.iter_pairs, dedup_distributed._submit_block_pair
    pool_map = dedup_distributed.DaskPool.map

    def counted(key, function):
        def call(*args, **kwargs):
            counts[key] += 1
            return function(*args, **kwargs)
        return call

    monkeypatch.setattr(dedup_distributed, "iter_pairs", counted("pairs", search))
    monkeypatch.setattr(dedup_distributed, "_submit_block_pair", counted("tasks", submit))
    monkeypatch.setattr(dedup_distributed.DaskPool, "map", counted("hashing", pool_map))
    return counts


def test_block_pairs_are_the_local_pairs_in_the_same_order(client, monkeypatch, sent):
    packed = synthetic_hashes(3000)
    settings, on_cluster = IndexSettings(), IndexSettings(cluster=dedup_distributed.ClusterSearch(client))
    monkeypatch.setattr(dedup_distributed, "BLOCK_ROWS", 500)
    first, second, bits = pairs_within(packed, 64, 9, on_cluster)
    assert sent["tasks"] == 6 * 7 // 2  # 6 blocks: each with itself and with every later one
    expected = pairs_within(packed, 64, 9, settings)
    assert len(expected[0]) > 200
    for got, wanted in zip((first, second, bits), expected, strict=True):
        np.testing.assert_array_equal(got, wanted)
    queries = synthetic_hashes(700, seed=4)
    monkeypatch.setattr(dedup_distributed, "BLOCK_ROWS", 256)
    got = cross_pairs(packed, 64, queries, 12, on_cluster)
    for got_column, wanted in zip(got, cross_pairs(packed, 64, queries, 12, settings), strict=True):
        np.testing.assert_array_equal(got_column, wanted)


@pytest.mark.slow
def test_match_on_the_cluster_finds_the_local_pairs(cluster, tmp_path, sent):
    packed = synthetic_hashes(20_000)
    hashes = write_list(tmp_path / "hashes.csv", packed[:14_000], "a")
    against = write_list(tmp_path / "against.csv", packed[14_000:], "b")
    address = cluster.scheduler_address
    local = match_lines("--hashes", hashes, "--threshold", 10)
    remote = match_lines("--hashes", hashes, "--threshold", 10, "--scheduler", address)
    assert sent["pairs"] == 1
    assert len(local) > 500 and remote[0] == local[0] == "id_a,id_b,distance"
    assert sorted(remote) == sorted(local)
    local = match_lines("--hashes", hashes, "--against", against, "--threshold", 10)
    remote = match_lines("--hashes", hashes, "--against", against, "--threshold", 10, "--scheduler", address)
    assert len(local) > 100 and sorted(remote) == sorted(local)


def test_scheduler_from_the_environment(cluster, tmp_path, monkeypatch, sent):
    hashes = write_list(tmp_path / "hashes.csv", synthetic_hashes(2000), "a")
    monkeypatch.setenv("DEDUP_SCHEDULER", cluster.scheduler_address)
    remote = match_lines("--hashes", hashes, "--threshold", 8)
    assert sent["pairs"] == 1
    monkeypatch.delenv("DEDUP_SCHEDULER")
    assert sorted(remote) == sorted(match_lines("--hashes", hashes, "--threshold", 8))


def test_match_reads_its_blocks_from_a_shared_folder(cluster, tmp_path, monkeypatch):
    hashes = write_list(tmp_path / "hashes.csv", synthetic_hashes(3000), "a")
    shared = tmp_path / "shared"
    shared.mkdir()
    monkeypatch.setattr(dedup_distributed, "BLOCK_ROWS", 1000)
    carried, submit = [], dedup_distributed._submit_block_pair

    def recorded(client, queries, packed, *rest):
        carried.append((queries, packed))
        return submit(client, queries, packed, *rest)

    monkeypatch.setattr(dedup_distributed, "_submit_block_pair", recorded)
    remote = match_lines("--hashes", hashes, "--threshold", 9, "--scheduler", cluster.scheduler_address,
                         "--shared-folder", shared)
    assert len(carried) == 4 * 5 // 2  # 4 blocks (4 tasks a worker), each with itself and every later one
    assert all(isinstance(packed, str) and (queries is None or isinstance(queries, str)) for queries, packed in carried)
    assert len(remote) > 100 and sorted(remote) == sorted(match_lines("--hashes", hashes, "--threshold", 9))
    assert not list(shared.iterdir())  # the blocks are removed


def test_a_shared_folder_the_workers_cannot_read_is_named(tmp_path):
    with pytest.raises(dedup_distributed.SharedFolderUnreadable, match="cannot read .*missing.npy"):
        dedup_distributed.block_pair_task(None, str(tmp_path / "missing.npy"), 4, "mih", 40)
    hashes = write_list(tmp_path / "hashes.csv", synthetic_hashes(10), "a")
    result = CliRunner().invoke(main, ["match", "--hashes", str(hashes), "--threshold", "3", "--shared-folder",
                                       str(tmp_path)])
    assert result.exit_code == 2 and "--shared-folder" in result.output and "--scheduler" in result.output


def plan_of(run_output: Path) -> dict:
    (report,) = run_output.glob("*/report.json")
    data = json.loads(report.read_text())
    return {key: data[key] for key in ("summary", "groups", "unreadable", "skipped")}


@pytest.mark.slow
@pytest.mark.parametrize("views", [[], ["--isometric", "y", "--views", "y"]], ids=["plain", "isometric-views"])
def test_delete_plan_on_the_cluster_is_the_local_plan(cluster, demo_copy, tmp_path, sent, views):
    (demo_copy / "broken.jpg").write_bytes(b"\xff\xd8\xff not a picture")
    runs = {}
    for name, extra in (("local", []), ("dask", ["--scheduler", cluster.scheduler_address])):
        result = CliRunner().invoke(main, ["delete", "--images-path", str(demo_copy), "--output-path",
                                           str(tmp_path / name), "--no-cache", "--no-progress", "--review", "n",
                                           *views, *extra], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        runs[name] = result
        # The images were hashed, and their candidate pairs found, on the cluster.
        assert sent["hashing"] == (name == "dask")
        assert (sent["pairs"] >= 1 and sent["tasks"] >= 1) == (name == "dask")

    def printed(name):  # all but the report's path
        return [line for line in runs[name].output.splitlines() if not line.startswith("Report:")]

    assert printed("dask") == printed("local")
    assert f"Cannot read '{demo_copy / 'broken.jpg'}'" in runs["dask"].output
    local, remote = plan_of(tmp_path / "local"), plan_of(tmp_path / "dask")
    assert local["groups"] and remote == local


def die_the_first_time(marker: Path, task, *args):
    """Run `task`, except in the first call of all (the one that makes `marker`), which
    kills its own worker process as a crash would."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return task(*args)
    os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.slow
def test_a_worker_killed_during_the_pair_search_loses_nothing(client, tmp_path, monkeypatch):
    packed = synthetic_hashes(4000)
    monkeypatch.setattr(dedup_distributed, "block_pair_task", functools.partial(
        die_the_first_time, tmp_path / "killed", dedup_distributed.block_pair_task))
    monkeypatch.setattr(dedup_distributed, "BLOCK_ROWS", 1000)
    got = pairs_within(packed, 64, 10, IndexSettings(cluster=dedup_distributed.ClusterSearch(client)))
    assert (tmp_path / "killed").exists()
    for got_column, wanted in zip(got, pairs_within(packed, 64, 10, IndexSettings()), strict=True):
        np.testing.assert_array_equal(got_column, wanted)


@pytest.mark.slow
def test_a_worker_killed_during_hashing_loses_nothing_and_caches_once(client, small_library, tmp_path, monkeypatch):
    (small_library / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    paths = sorted(str(path) for path in small_library.rglob("*") if path.is_file())
    settings = hashing.HashSettings()
    local = hashing.hash_collection(paths, settings)
    stored = []
    original_store = HashCache.store
    monkeypatch.setattr(HashCache, "store", lambda cache, entries, settings: (
        stored.extend(stat.path for stat, _ in entries), original_store(cache, entries, settings))[-1])
    monkeypatch.setattr(hashing, "_hash_batch", functools.partial(
        die_the_first_time, tmp_path / "killed", hashing._hash_batch))
    cache = HashCache(tmp_path / "cache.sqlite")
    try:
        remote = hashing.hash_collection(paths, settings, batch_size=2, cache=cache,
                                         pool=dedup_distributed.DaskPool(client))
    finally:
        cache.close()
    assert (tmp_path / "killed").exists()
    assert remote.paths == local.paths and len(remote.paths) == len(paths) - 1
    np.testing.assert_array_equal(remote.packed, local.packed)
    np.testing.assert_array_equal(remote.colour, local.colour)
    assert remote.failures == local.failures and remote.failures[0][0].endswith("broken.png")
    assert sorted(stored) == sorted(remote.paths)  # each readable file written once, by this process


@pytest.mark.parametrize("command", [
    ["search", "--query", "{demo}/edits/bridge_70.jpg", "--format", "json"],
    ["search", "--query", "{demo}/edits/bridge_70.jpg", "--format", "json", "--views", "y"],
    ["evaluate", "--truth", "{demo}/truth.csv"],
])
def test_search_and_evaluate_on_the_cluster_print_what_they_print_locally(cluster, demo_copy, command, sent):
    arguments = [word.format(demo=demo_copy) for word in command] + ["--images-path", str(demo_copy), "--no-cache",
                                                                      "--no-progress"]
    local = CliRunner().invoke(main, arguments, catch_exceptions=False)
    assert not sent["hashing"] and not sent["tasks"]
    remote = CliRunner().invoke(main, arguments + ["--scheduler", cluster.scheduler_address], catch_exceptions=False)
    assert sent["hashing"] >= 1 and sent["tasks"] >= 1
    assert local.exit_code == remote.exit_code == 0, remote.output
    assert remote.stdout == local.stdout and local.stdout.strip()


def test_a_worker_process_gets_the_malloc_limits_of_a_process_without_dask(monkeypatch):
    # Regression: the nanny's MALLOC_TRIM_THRESHOLD_ cost hashing 28% more CPU.
    calls = []

    class FakeLibc:
        def mallopt(self, parameter, value):
            calls.append((parameter, value))
            return 1

    monkeypatch.setattr(dedup_distributed.ctypes, "CDLL", lambda name: FakeLibc())
    monkeypatch.setattr(dedup_distributed, "_prepared", False)
    assert dedup_distributed.on_worker(sum, [1, 2]) == 3
    dedup_distributed.on_worker(sum, [3])
    assert calls == [(dedup_distributed.M_MMAP_THRESHOLD, 32 << 20), (dedup_distributed.M_TRIM_THRESHOLD, 64 << 20)]


@pytest.mark.slow
def test_dedup_scheduler_local_starts_its_own_cluster_and_plans_as_a_local_run(demo_copy, tmp_path, monkeypatch, sent):
    # The README's `--scheduler local:N` and DEDUP_SCHEDULER, as a user runs them: dedup
    # starts a LocalCluster of its own, hashes and pairs there, and plans as a local run.
    pytest.importorskip("distributed", reason="the extra dask is not installed")
    local = CliRunner().invoke(main, ["delete", "--images-path", str(demo_copy), "--output-path",
                                      str(tmp_path / "local"), "--no-cache", "--no-progress", "--review", "n"],
                               catch_exceptions=False)
    monkeypatch.setenv("DEDUP_SCHEDULER", "local:2")
    remote = CliRunner().invoke(main, ["delete", "--images-path", str(demo_copy), "--output-path",
                                       str(tmp_path / "dask"), "--no-cache", "--no-progress", "--review", "n"],
                                catch_exceptions=False)
    assert local.exit_code == remote.exit_code == 0, remote.output
    assert sent["hashing"] and sent["pairs"] >= 1  # the work went to the cluster
    assert plan_of(tmp_path / "dask") == plan_of(tmp_path / "local")
    assert plan_of(tmp_path / "local")["groups"]
