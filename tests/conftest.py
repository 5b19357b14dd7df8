"""Shared fixtures: real image files written into tmp_path, and the bundled demo set."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "datasets" / "demo"
DATA = Path(__file__).resolve().parent / "data"
BENCH = REPO.parent / "shared" / "bench"


def _cnn_model() -> Path:
    """The CNN model as the user (or CI's `make model`) built it: looked up before the
    isolated_cache fixture moves the cache folder."""
    from dedup_cli.fingerprint.cnn_model import model_path

    return model_path()


CNN_MODEL = _cnn_model()


def cnn_unavailable() -> str:
    """Why the CNN tests cannot run here ('' when they can)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "onnxruntime is not installed (pip install 'dedup-cli[cnn]')"
    if not CNN_MODEL.is_file():
        return f"the CNN model is not built ({CNN_MODEL}); run `make model`"
    return ""


@pytest.fixture
def cnn():
    """Skip unless --method cnn can run: onnxruntime installed and the model built."""
    reason = cnn_unavailable()
    if reason:
        pytest.skip(reason)
    return CNN_MODEL


def photo(seed: int, size=(320, 240)) -> Image.Image:
    """A smooth random 'photo': low-frequency noise upsampled, distinct per seed."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC)


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under root (to prove nothing changed)."""
    digests = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath, name)
            digests[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


@pytest.fixture
def demo_copy(tmp_path) -> Path:
    """A private copy of datasets/demo that a test may change."""
    target = tmp_path / "demo"
    shutil.copytree(DEMO, target)
    return target


@pytest.fixture
def small_library(tmp_path) -> Path:
    """Three distinct pictures, each with near-duplicate copies, plus one loner."""
    root = tmp_path / "library"
    (root / "sub" / "deeper").mkdir(parents=True)
    for seed in range(3):
        original = photo(seed)
        original.save(root / f"pic{seed}.png")
        original.resize((240, 180)).save(root / "sub" / f"pic{seed}_small.jpg", quality=85)
        original.save(root / "sub" / "deeper" / f"pic{seed}_q50.JPG", quality=50)
    photo(99).save(root / "loner.webp")
    return root


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Never touch the user's real cache folder from a test."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    if CNN_MODEL.is_file():  # the model is read-only input, not cache state
        monkeypatch.setenv("DEDUP_CNN_MODEL", str(CNN_MODEL))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))


CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
HOSTILE_NAME = "<img src=x onerror=alert(1)>.jpg"
# Headless, offline and quiet: no sandbox (root in CI), no GPU, no QUIC, no first-run or
# background traffic, no component updates, no sync.
CHROMIUM_ARGUMENTS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                      "--disable-background-networking", "--disable-component-update", "--disable-sync",
                      "--disable-dev-shm-usage", "--window-size=1280,900")


def browser_missing() -> str:
    """Why the browser tests cannot run here, or '' when they can."""
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        return "needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "needs selenium (pip install -e .[test])"
    return ""


def start_chromium(profile: Path, downloads: Path | None = None):
    """Headless Chromium driven by Selenium through Debian's chromedriver, with a fresh
    profile in `profile` (Selenium Manager never runs: driver and browser are given, so
    nothing is downloaded), saving downloads into `downloads`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (*CHROMIUM_ARGUMENTS, f"--user-data-dir={profile}"):
        options.add_argument(argument)
    if downloads is not None:
        options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                                  "download.prompt_for_download": False})
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


@pytest.fixture
def chromium(tmp_path):
    """start_chromium with downloads in tmp_path/downloads (driver.downloads)."""
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = start_chromium(tmp_path / "chromium-profile", downloads)
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


def run(*args):
    """The dedup command line on `args` (exceptions propagate, so a traceback is a failure)."""
    from click.testing import CliRunner

    from dedup_cli.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def delete_report(images: Path, output: Path, *extra) -> dict:
    """report.json of a successful `dedup delete` on `images` (the newest run folder in `output`)."""
    import json

    result = run("delete", "--images-path", images, "--output-path", output, "--no-progress", *extra)
    assert result.exit_code == 0, result.output
    folder = max(p for p in output.iterdir() if p.is_dir())
    return json.loads((folder / "report.json").read_text())


def groups_by_name(report: dict) -> list[tuple[str, list[str]]]:
    """A report's groups as (kept file name, sorted removed file names), sorted."""
    return sorted((Path(g["keep"][0]["path"]).name, sorted(Path(r["path"]).name for r in g["remove"]))
                  for g in report["groups"])
