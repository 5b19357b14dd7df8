"""Hashes: golden values from imagehash, the fast decode path, parallel == serial."""

import shutil

import imagehash
import numpy as np
import pytest
from conftest import DATA
from PIL import Image

from dedup_cli.fingerprint.hashing import ALGORITHMS, HashSettings, hash_collection, hash_file, hash_image, hash_many
from dedup_cli.search.index import hamming

# imagehash 4.3.2 on tests/data/imagehash.png, straight from the file (../shared/bench/README.md).
GOLDEN = {
    ("average_hash", 8): "ffd7918181c9ffff",
    ("phash", 8): "ba8c84536bd3c366",
    ("dhash", 8): "0026273b2b19550e",
    ("whash", 8): "ffd391818181a5e7",
    ("phash", 16): "fa418c6984ee53b46b3293cec34d6663992638b43cd1e4f0c66c67cd919cda56",
}


@pytest.mark.parametrize(("algorithm", "size"), sorted(GOLDEN))
def test_full_size_hash_matches_imagehash_golden_value(algorithm, size):
    image = Image.open(DATA / "imagehash.png")
    assert hash_image(image, HashSettings(algorithm, size)).hex() == GOLDEN[(algorithm, size)]
    assert str(getattr(imagehash, algorithm)(image, hash_size=size)) == GOLDEN[(algorithm, size)]


def test_full_decode_hashes_the_full_size_picture(tmp_path):
    # Sharp random blocks: the reduced decode moves pHash on most of these seeds, so the
    # full decode must really decode every pixel to equal imagehash on the whole picture.
    for seed in (0, 3, 4, 5):
        pixels = np.random.default_rng(seed).integers(0, 256, (150, 200, 3), dtype=np.uint8)
        path = tmp_path / f"blocks{seed}.jpg"
        Image.fromarray(pixels).resize((2400, 1800), Image.Resampling.NEAREST).save(path, quality=92)
        settings = HashSettings("phash", 8, full_decode=True)
        expected = hash_image(Image.open(path).convert("L"), settings)
        assert hash_file(str(path), settings).packed_bits == expected


@pytest.mark.parametrize(("algorithm", "size"), sorted(GOLDEN))
def test_fast_path_stays_close_to_imagehash(algorithm, size):
    record = hash_file(str(DATA / "imagehash.png"), HashSettings(algorithm, size))
    golden = np.frombuffer(bytes.fromhex(GOLDEN[(algorithm, size)]), dtype=np.uint8)
    distance = int(hamming(np.frombuffer(record.packed_bits, dtype=np.uint8), golden))
    assert distance <= 0.1 * size * size
    assert (record.width, record.height) == (1200, 600)


def test_every_algorithm_gives_hash_size_squared_bits(small_library):
    path = str(next(small_library.glob("*.png")))
    for name in ALGORITHMS:
        for size in (8, 16):
            assert len(hash_file(path, HashSettings(name, size)).packed_bits) == size * size // 8


def test_parallel_batches_give_the_same_hashes_as_serial(small_library, tmp_path):
    (small_library / "broken.jpg").write_bytes(b"not really a jpeg")
    paths = sorted(str(p) for p in small_library.rglob("*") if p.is_file())
    settings = HashSettings("dhash", 8)
    serial = hash_many(paths, settings, workers=1, batch_size=3)
    parallel = hash_many(paths, settings, workers=2, batch_size=2)
    assert serial == parallel
    assert [r.path for r in parallel] == paths
    assert sum(r.packed_bits is None for r in parallel) == 1


def test_progress_reports_every_file(small_library):
    paths = sorted(str(p) for p in small_library.rglob("*.*"))
    seen = []
    hash_collection(paths, HashSettings(), workers=2, batch_size=2, on_progress=seen.append)
    assert sum(seen) == len(paths)


def test_collection_keeps_failures_apart_with_reasons(small_library):
    (small_library / "empty.png").write_bytes(b"")
    shutil.copy(DATA / "imagehash-LICENSE", small_library / "licence.jpg")
    paths = sorted(str(p) for p in small_library.rglob("*.*"))
    hashed = hash_collection(paths, HashSettings(), workers=1)
    reasons = dict(hashed.failures)
    assert len(hashed.paths) == len(paths) - 2
    assert "empty" in reasons[str(small_library / "empty.png")]
    assert "not an image" in reasons[str(small_library / "licence.jpg")]
    assert hashed.bits.shape == (len(hashed.paths), 64)
