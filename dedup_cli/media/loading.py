"""Open one image safely: EXIF orientation, colour modes, alpha, size limits, reduced decoding.

Every failure becomes an UnreadableImage carrying the path and a short reason, so one bad
file never stops a run (rule 5 of DESIGN.md).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass

from PIL import ExifTags, Image, ImageFile, ImageStat

from dedup_cli.errors import UnreadableImage

# Bump when decoding changes in a way that can change hashes: the hash cache keys on it.
DECODER_VERSION = 9  # 9: content digest and image facts in every record
# Pillow's own guard stops at ~179 MP; JPEGs are decoded at reduced size, so allow more.
MAX_PIXELS = 400_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow warns above this and refuses above twice it
ImageFile.LOAD_TRUNCATED_IMAGES = False


def _register_heif() -> str:
    """Let Pillow open HEIC/HEIF (iPhone photos) through pillow-heif; '' when it is
    installed, else why HEIF files will be reported as unreadable. AVIF is Pillow's own."""
    try:
        import pillow_heif
    except ImportError:
        return "HEIC/HEIF support is not installed (pip install pillow-heif)"
    pillow_heif.register_heif_opener()
    return ""


HEIF_MISSING = _register_heif()

_REDUCIBLE = ("L", "RGB", "YCbCr", "RGBA", "LA")  # modes decoded images are box-reduced in
_TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


# Formats that store the pixels as they were (WebP only in its lossless VP8L form).
LOSSLESS_FORMATS = frozenset({"PNG", "TIFF", "BMP", "DIB", "GIF", "PPM", "TGA", "QOI"})
GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"})
DIGEST_BYTES = 16


@dataclass(frozen=True)
class ImageFacts:
    """What makes one copy of a picture a better one to keep than another of the same
    size: colour, bit depth, a lossless format, animation frames (from the file header)."""

    grey_mode: bool = False  # the file stores one channel (L, 16-bit grey, 1-bit ...)
    depth: int = 8  # bits per channel: 16 for 16-bit, 7 for CMYK (a print conversion), 6 for a palette
    lossless: bool = False
    frames: int = 1


@dataclass(frozen=True)
class LoadedImage:
    """A decoded image ready for hashing and the facts about the file it came from."""

    image: Image.Image  # oriented, maybe reduced; mode as requested ('colour': RGB, YCbCr or L)
    width: int  # full size once EXIF orientation is applied
    height: int
    facts: ImageFacts = ImageFacts()


def content_digest(path: str | os.PathLike) -> bytes:
    """BLAKE2b (16 bytes) of the file's bytes: what "unchanged since the scan" means at
    action time, where size and mtime can be forged or coincide."""
    digest = hashlib.blake2b(digest_size=DIGEST_BYTES)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.digest()


def load_image(path: str | os.PathLike, min_side: int = 0, mode: str = "L") -> LoadedImage:
    """Decode `path` upright, in `mode`, keeping at least `min_side` pixels on the shorter
    side when the image has them (0 means full size).

    `mode` is 'L', 'RGB', 'YCbCr' or 'colour': whichever of YCbCr (JPEG's own planes, no
    colour conversion), RGB or L (a grey image) is cheapest to get.

    JPEGs are decoded with DCT scaling (`draft`), other formats shrunk by integer box
    reduction before any further work.
    Raises UnreadableImage with the reason when the file cannot be used.
    """
    try:
        if os.path.getsize(path) == 0:
            raise UnreadableImage(path, "empty file (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            warnings.filterwarnings("ignore", message="Palette images with Transparency")
            with Image.open(path) as img:
                return _decode(img, min_side, mode)
    except UnreadableImage:
        raise
    except Exception as exc:  # Pillow raises many types; each one is a per-file failure
        raise UnreadableImage(path, describe_error(exc)) from exc


def describe_error(exc: BaseException) -> str:
    """A short, human reason for a decoding failure."""
    text = str(exc)
    if isinstance(exc, Image.UnidentifiedImageError):
        if HEIF_MISSING and str(getattr(exc, "filename", "") or text).lower().endswith((".heic", ".heif", ".hif")):
            return HEIF_MISSING
        return "not an image file Pillow can read"
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return f"image too large to decode safely: {text.split(' could be')[0].strip()}"
    if "truncated" in text or isinstance(exc, EOFError):
        return "truncated or damaged image data"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def image_facts(img: Image.Image) -> ImageFacts:
    """The header facts of an opened, not yet decoded image."""
    mode = img.mode
    if mode.startswith(("I;16", "I", "F")) or _stored_bits(img) >= 16:
        depth = 16
    elif mode == "1":
        depth = 1
    elif mode in ("P", "PA"):
        depth = 6
    elif mode == "CMYK":
        depth = 7
    else:
        depth = 8
    lossless = img.format in LOSSLESS_FORMATS or (img.format == "WEBP" and _webp_lossless(img))
    return ImageFacts(mode in GREY_MODES, depth, lossless, max(1, int(getattr(img, "n_frames", 1) or 1)))


def _stored_bits(img: Image.Image) -> int:
    """Bits per sample the file stores (Pillow opens 16-bit RGB PNG and TIFF as 8-bit RGB)."""
    try:
        if img.format == "PNG":
            position = img.fp.tell()
            img.fp.seek(24)
            bits = img.fp.read(1)[0]
            img.fp.seek(position)
            return bits
        if img.format == "TIFF":
            return int(max(img.tag_v2.get(258, (8,))))
    except Exception:  # an odd header only costs the depth preference
        pass
    return 8


def _webp_lossless(img: Image.Image) -> bool:
    """True when a WebP file's first image chunk is VP8L (lossless)."""
    try:
        handle = img.fp
        position = handle.tell()
        handle.seek(12)
        header = handle.read(64)
        handle.seek(position)
    except Exception:
        return False
    return header[:4] == b"VP8L" or (header[:4] == b"VP8X" and b"VP8L" in header)


def _decode(img: Image.Image, min_side: int, mode: str) -> LoadedImage:
    width, height = img.size
    if width * height > MAX_PIXELS:
        raise UnreadableImage(img.filename, f"image too large ({width}x{height} pixels)")
    facts = image_facts(img)
    orientation = _orientation(img)
    if img.format == "JPEG" and min_side:
        draft_mode = "YCbCr" if mode == "colour" else mode
        img.draft(draft_mode if img.mode in ("RGB", "L") else None, (min_side, min_side))
    img.load()
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode not in _REDUCIBLE:
        img = _to_mode(img, mode)  # 16-bit, CMYK, 1-bit ... first
    # Reducing before flattening is exact: Pillow averages premultiplied colours, which is
    # what averaging the flattened pixels gives. It spares a full-size composite.
    img = _to_mode(reduce_to(img, min_side), mode)
    if orientation in _TRANSPOSE_FOR_ORIENTATION:
        img = img.transpose(_TRANSPOSE_FOR_ORIENTATION[orientation])
        if orientation >= 5:
            width, height = height, width
    return LoadedImage(image=img, width=width, height=height, facts=facts)


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(ExifTags.Base.Orientation, 1))
    except Exception:  # a damaged EXIF block should not make the pixels unusable
        return 1


def reduce_to(img: Image.Image, min_side: int) -> Image.Image:
    """Integer box reduction so the shorter side stays >= min_side (0: as it is)."""
    if not min_side:
        return img
    factor = min(img.size) // min_side
    if factor < 2 or img.mode not in _REDUCIBLE:
        return img
    return img.reduce(factor)


def _to_mode(img: Image.Image, mode: str) -> Image.Image:
    """Convert any Pillow mode to `mode` ('colour' accepts RGB, YCbCr or L as they are).

    Transparency is flattened onto white, as a browser shows the image and as most tools
    convert it to JPEG, or onto black when nothing would show on white (white logos kept
    only in the alpha channel). Dropping alpha instead, as imagehash's convert('L') does,
    hashes colour values nobody sees, and resized emoji grow dark halos where edge pixels
    are translucent.
    """
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        img = flatten_transparency(img)
    if img.mode.startswith("I;16"):
        img = img.point(lambda value: value / 257).convert("L")
    if img.mode in ("I", "F"):
        img = img.convert("L")  # clipped to 0-255, as imagehash's convert('L') does
    if img.mode not in ("RGB", "L", "YCbCr"):
        img = img.convert("RGB")  # CMYK and 1-bit expanded (_decode expands palettes first)
    if mode == "colour" or img.mode == mode:
        return img
    return img.convert(mode)


def flatten_transparency(img: Image.Image) -> Image.Image:
    """Composite a transparent image onto white, or onto black when on white nothing would
    show (a white logo kept only in the alpha channel, as dark themes ship them)."""
    rgba = img.convert("RGBA")
    alpha = rgba.getchannel("A")
    if alpha.getextrema()[0] == 255:
        return rgba.convert("RGB")  # opaque after all: nothing to blend
    on_white = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    invisible = ImageStat.Stat(on_white.convert("L")).stddev[0] < _INVISIBLE_STD
    if invisible and ImageStat.Stat(alpha).stddev[0] >= _INVISIBLE_STD:
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba).convert("RGB")
    return on_white


_INVISIBLE_STD = 2.0  # luminance spread below which a flattened picture shows nothing
