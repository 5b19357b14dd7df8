"""CNN embeddings of image files: decode small, run the ONNX model, unit vectors out.

Each file is decoded upright (EXIF orientation applied, transparency flattened, as for
hashes: media/loading.py) at the least size that still covers the model's 224 x 224
input (JPEGs through libjpeg's DCT scaling), squeezed to 224 x 224 (the whole picture: a
centre crop would hide padding and crops), and run through EfficientNet-Lite0 in
onnxruntime. The 1280 pooled features are scaled to unit length, so a dot product is the
cosine similarity, and kept as float16 (2.5 KB a file; the cosine moves by about 1e-4).

Files are embedded in batches over worker processes with one onnxruntime thread each:
one process decodes while another runs the network, which two threads in one session
cannot do.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from dedup_cli.errors import UnreadableImage
from dedup_cli.fingerprint.cnn_model import FEATURES, INPUT_SIDE, RUNTIME_INSTALL, ModelError, checked_model
from dedup_cli.fingerprint.hashing import FileStat, gather_batches, worker_pool
from dedup_cli.media.loading import DECODER_VERSION, describe_error, load_image

PREPROCESS_VERSION = 1  # bumped when decoding or scaling for the model changes (part of the cache key)
EMBEDDING_DTYPE = np.float16
DECODE_SIDE = INPUT_SIDE  # least shorter side decoded (0: every pixel, which bench_cnn.py compares)


@dataclass(frozen=True)
class EmbeddingSettings:
    """Which model file embeds (its path and sha256); part of every cache key."""

    model_path: str
    model_sha256: str

    @property
    def cache_key(self) -> str:
        return f"{self.model_sha256}-{DECODER_VERSION}.{PREPROCESS_VERSION}"


def require_runtime() -> None:
    """Raise ModelError with the install command when onnxruntime is missing."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise ModelError(f"--method cnn needs onnxruntime, which is not installed: {RUNTIME_INSTALL}") from exc


def open_model(path: str | os.PathLike | None = None) -> EmbeddingSettings:
    """The runtime and the checked model file (cnn_model.checked_model), or ModelError."""
    require_runtime()
    model, sha = checked_model(path)
    return EmbeddingSettings(str(model), sha)


def model_input(path: str) -> np.ndarray:
    """(224, 224, 3) uint8 RGB of the whole upright picture; raises UnreadableImage."""
    from PIL import Image

    loaded = load_image(path, min_side=DECODE_SIDE, mode="RGB")
    image = loaded.image.resize((INPUT_SIDE, INPUT_SIDE), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def unit_rows(features: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (an all-zero row stays zero)."""
    features = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def new_session(model_path: str, threads: int = 1):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])


@dataclass(frozen=True)
class EmbeddingRecord:
    """One file's unit embedding as float16 bytes, or why there is none."""

    path: str
    vector: bytes | None
    error: str = ""


_SESSION = None  # the worker's onnxruntime session, made once by _open_session


def _open_session(model_path: str, threads: int) -> None:
    """This process's onnxruntime session (in a worker: its start-up, see worker_pool)."""
    global _SESSION
    _SESSION = new_session(model_path, threads)


def embed_batch(paths: Sequence[str]) -> list[EmbeddingRecord]:
    """Embed `paths` with this process's session; failures come back as values."""
    pixels, decoded, failed = [], [], {}
    for path in paths:
        try:
            pixels.append(model_input(path))
            decoded.append(path)
        except UnreadableImage as exc:
            failed[path] = exc.reason
        except Exception as exc:  # odd pixels are one file's failure, never the run's
            failed[path] = f"embedding failed: {describe_error(exc)}"
    vectors = {}
    if decoded:
        features = _SESSION.run(None, {"pixels": np.stack(pixels)})[0]
        for path, row in zip(decoded, unit_rows(features).astype(EMBEDDING_DTYPE)):  # noqa: B905
            vectors[path] = row.tobytes()
    return [EmbeddingRecord(path, vectors.get(path), failed.get(path, "")) for path in paths]


def embed_many(paths: Sequence[str], settings: EmbeddingSettings, workers: int = 1, batch_size: int = 16,
               on_progress: Callable[[int], None] | None = None) -> list[EmbeddingRecord]:
    """Embed `paths` in batches over `workers` processes; records in the order of `paths`."""
    batch_size = max(1, min(batch_size, -(-len(paths) // (4 * max(1, workers)))))
    batches = [list(paths[i:i + batch_size]) for i in range(0, len(paths), batch_size)]
    records: list[EmbeddingRecord] = []
    if not batches:
        return records
    if workers <= 1 or len(batches) <= 1:
        _open_session(settings.model_path, max(1, workers))
        results = map(embed_batch, batches)
        return gather_batches(results, records, on_progress)
    with worker_pool(min(workers, len(batches)), _open_session, (settings.model_path, 1)) as pool:
        return gather_batches(pool.map(embed_batch, batches), records, on_progress)


def embed_collection(paths: Sequence[str], sizes: np.ndarray, mtimes: np.ndarray, settings: EmbeddingSettings,
                     workers: int = 1, batch_size: int = 16, cache=None,
                     on_progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, dict[str, str], int]:
    """(n, 1280) float16 unit embeddings of `paths` (rows in their order; a failed file's
    row is zero), the failures by path, and how many came from `cache` (a HashCache,
    keyed by path, size, mtime and settings.cache_key)."""
    stats = [FileStat(path, int(size), int(mtime)) for path, size, mtime in zip(paths, sizes, mtimes)]  # noqa: B905
    cached = cache.lookup_embeddings(stats, settings.cache_key) if cache is not None else {}
    if on_progress and cached:
        on_progress(len(cached))
    fresh = {r.path: r for r in embed_many([s.path for s in stats if s.path not in cached], settings, workers,
                                           batch_size, on_progress)}
    if cache is not None:
        cache.store_embeddings([(stat, fresh[stat.path].vector) for stat in stats
                                if stat.path in fresh and fresh[stat.path].vector is not None], settings.cache_key)
    embeddings = np.zeros((len(stats), FEATURES), dtype=EMBEDDING_DTYPE)
    failures = {}
    for row, stat in enumerate(stats):
        vector = cached.get(stat.path) or fresh[stat.path].vector
        if vector is None:
            failures[stat.path] = fresh[stat.path].error
        else:
            embeddings[row] = np.frombuffer(vector, dtype=EMBEDDING_DTYPE)
    return embeddings, failures, len(cached)

