"""Turn a folder of originals into a labelled near-duplicate benchmark (images + truth.csv).

Each original gets copies under standard edits (resize, recompression, a small crop ...)
and harder ones (grey, mirror, rotation, padding, a 10% crop; and, when named, a 15% crop,
a letterbox, a large watermark, logos and a colour balance); truth.csv (file, group,
transform) says which files are copies of which original. When named, colour variants
(the picture's main coloured region in another hue, or in another shade of its hue: a
product in another colour, another skin tone) are written as pictures of their own,
each alone in its truth group: hard negatives. Writes only into `out`.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

from dedup_cli.media.loading import load_image


@dataclass(frozen=True)
class Transform:
    """One edit: how to change the pixels and how to store the result."""

    name: str
    edit: Callable[[Image.Image], Image.Image]
    extension: str = ".jpg"
    save_options: tuple = (("quality", 90),)
    standard: bool = True  # False for the edits a global hash is not expected to survive
    default: bool = True  # False: made only when asked for by name (make_benchmark's kinds)
    exif_orientation: int = 0  # store with this EXIF orientation (pixels rotated to match)
    negative: bool = False  # True: the result is another picture (its own truth group), not a copy


def _scale(image: Image.Image, factor: float) -> Image.Image:
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return image.resize(size, Image.Resampling.LANCZOS)


def _thumbnail(image: Image.Image) -> Image.Image:
    copy = image.copy()
    copy.thumbnail((160, 160), Image.Resampling.LANCZOS)
    return copy


def _crop(fraction: float) -> Callable[[Image.Image], Image.Image]:
    def crop(image: Image.Image) -> Image.Image:
        dx, dy = round(image.width * fraction), round(image.height * fraction)
        return image.crop((dx, dy, image.width - dx, image.height - dy))
    return crop


def _watermark(image: Image.Image) -> Image.Image:
    marked = image.convert("RGBA")
    layer = Image.new("RGBA", marked.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    size = max(10, image.height // 14)
    font = ImageFont.load_default(size=size)
    text = "(c) dedup sample"
    box = draw.textbbox((0, 0), text, font=font)
    position = (image.width - (box[2] - box[0]) - size, image.height - (box[3] - box[1]) - size)
    draw.text(position, text, font=font, fill=(255, 255, 255, 170), stroke_width=1, stroke_fill=(0, 0, 0, 120))
    return Image.alpha_composite(marked, layer).convert("RGB")


def _logo(image: Image.Image, share: float, opacity: int) -> Image.Image:
    """A logo (a ring around a square, in white with a dark outline) over the lower right
    corner, `share` of the shorter side wide, `opacity` of 255."""
    marked = image.convert("RGBA")
    layer = Image.new("RGBA", marked.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    side = max(8, round(min(image.size) * share))
    left, top = image.width - side - side // 4, image.height - side - side // 4
    outline = (0, 0, 0, opacity // 2)
    draw.ellipse((left, top, left + side, top + side), outline=(255, 255, 255, opacity), width=max(2, side // 8))
    draw.ellipse((left - 1, top - 1, left + side + 1, top + side + 1), outline=outline, width=1)
    inner = side // 3
    draw.rectangle((left + inner, top + inner, left + side - inner, top + side - inner), fill=(255, 255, 255, opacity),
                   outline=outline)
    return Image.alpha_composite(marked, layer).convert("RGB")


def _big_watermark(image: Image.Image) -> Image.Image:
    """Text across the middle, a fifth of the height tall, half opaque."""
    marked = image.convert("RGBA")
    layer = Image.new("RGBA", marked.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    font = ImageFont.load_default(size=max(10, image.height // 5))
    text = "SAMPLE"
    box = draw.textbbox((0, 0), text, font=font)
    position = ((image.width - (box[2] - box[0])) // 2, (image.height - (box[3] - box[1])) // 2)
    draw.text(position, text, font=font, fill=(255, 255, 255, 128))
    return Image.alpha_composite(marked, layer).convert("RGB")


def _letterbox(image: Image.Image) -> Image.Image:
    """Black bars above and below, an eighth of the height each (a wide frame shown taller)."""
    bar = round(image.height / 8)
    return ImageOps.expand(image, border=(0, bar, 0, bar), fill=(0, 0, 0))


def _blur(image: Image.Image) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(radius=max(1.0, min(image.size) / 300)))


def _colour_balance(image: Image.Image) -> Image.Image:
    """A warmer white balance: red up 8%, blue down 12%, over the whole picture."""
    red, green, blue = image.convert("RGB").split()
    return Image.merge("RGB", (red.point(lambda v: min(255, round(v * 1.08))), green,
                               blue.point(lambda v: round(v * 0.88))))


# The hue band (of 256) around the most common saturated hue that a colour variant
# changes, and the share of the pixels that band must cover for a variant to be made: at
# least enough to be seen, at most half (a change of most of the picture is a global edit,
# which a copy may receive, not a variant whose other parts stay as they were).
VARIANT_HUE_BAND = 16
VARIANT_SHARE = (0.08, 0.5)


def _main_colour_region(hsv: np.ndarray) -> np.ndarray | None:
    """A soft mask (0..1) of the picture's main coloured region: the saturated pixels
    within VARIANT_HUE_BAND of their most common hue; None when they cover less or more
    of the picture than VARIANT_SHARE allows (it has no region of one colour to vary)."""
    hue, saturation, value = (hsv[..., channel].astype(np.int32) for channel in range(3))
    coloured = (saturation >= 70) & (value >= 40)
    if not coloured.any():
        return None
    counts = np.bincount(hue[coloured] // 8, minlength=32)
    centre = int(np.argmax(counts)) * 8 + 4
    near = np.abs((hue - centre + 128) % 256 - 128) <= VARIANT_HUE_BAND
    region = coloured & near
    if not VARIANT_SHARE[0] <= region.mean() <= VARIANT_SHARE[1]:
        return None
    # Soft edges, as a recoloured object has (and no JPEG ringing from a hard one).
    mask = Image.fromarray((region * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.5))
    return np.asarray(mask, dtype=np.float32)[..., None] / 255.0


def _colour_variant(change) -> Callable[[Image.Image], Image.Image]:
    """A variant of the picture whose main coloured region is changed by `change` (HSV
    planes in and out) and the rest left alone; the picture itself when it has none."""
    def variant(image: Image.Image) -> Image.Image:
        hsv = np.asarray(image.convert("RGB").convert("HSV"))
        mask = _main_colour_region(hsv)
        if mask is None:
            return image
        changed = np.asarray(Image.fromarray(change(hsv.copy()), "HSV").convert("RGB"), dtype=np.float32)
        original = np.asarray(image.convert("RGB"), dtype=np.float32)
        return Image.fromarray(np.rint(original + mask * (changed - original)).astype(np.uint8))
    return variant


def _other_hue(hsv: np.ndarray) -> np.ndarray:
    """A third of the colour wheel on (a red shirt in blue)."""
    hsv[..., 0] = (hsv[..., 0].astype(np.int32) + 85) % 256
    return hsv


def _other_shade(hsv: np.ndarray) -> np.ndarray:
    """The same hue a shade darker and more saturated (the next skin tone)."""
    hsv[..., 1] = np.minimum(255, np.rint(hsv[..., 1] * 1.25)).astype(np.uint8)
    hsv[..., 2] = np.rint(hsv[..., 2] * 0.78).astype(np.uint8)
    return hsv


def has_colour_variant(image: Image.Image) -> bool:
    """Whether the picture has a main coloured region for a colour variant to change."""
    return _main_colour_region(np.asarray(image.convert("RGB").convert("HSV"))) is not None


def _pad(image: Image.Image) -> Image.Image:
    border = round(min(image.size) * 0.1)
    return ImageOps.expand(image, border=border, fill=(255, 255, 255))


TRANSFORMS: dict[str, Transform] = {t.name: t for t in (
    Transform("resize", lambda im: _scale(im, 0.5)),
    Transform("thumbnail", _thumbnail),
    Transform("jpeg_q40", lambda im: im, save_options=(("quality", 40),)),
    Transform("png", lambda im: im, ".png", ()),
    Transform("webp", lambda im: im, ".webp", (("quality", 80),)),
    Transform("brightness", lambda im: ImageEnhance.Brightness(im).enhance(1.25)),
    Transform("contrast", lambda im: ImageEnhance.Contrast(im).enhance(0.8)),
    Transform("crop", _crop(0.03)),
    Transform("blur", _blur),
    Transform("watermark", _watermark),
    # Orientation 6 tells viewers to turn the stored pixels 90 degrees clockwise, so they
    # are stored turned 90 degrees counter-clockwise (Pillow's ROTATE_90).
    Transform("exif_rotated", lambda im: im.transpose(Image.Transpose.ROTATE_90), exif_orientation=6),
    Transform("grey", lambda im: im.convert("L"), standard=False),
    Transform("mirror", ImageOps.mirror, standard=False),
    Transform("rotate90", lambda im: im.transpose(Image.Transpose.ROTATE_90), standard=False),
    Transform("padding", _pad, standard=False),
    Transform("crop10", _crop(0.10), standard=False),
    # More of the harder edits, made only when named (make_transforms.py --kinds).
    Transform("crop15", _crop(0.15), standard=False, default=False),
    Transform("letterbox", _letterbox, standard=False, default=False),
    Transform("watermark_big", _big_watermark, standard=False, default=False),
    Transform("logo_small", lambda im: _logo(im, 0.15, 160), standard=False, default=False),
    Transform("logo_large", lambda im: _logo(im, 0.3, 220), standard=False, default=False),
    Transform("colour_balance", _colour_balance, standard=False, default=False),
    # Colour variants: other pictures, made only for originals that have a main colour.
    Transform("other_hue", _colour_variant(_other_hue), ".png", (), standard=False, default=False, negative=True),
    Transform("other_shade", _colour_variant(_other_shade), ".png", (), standard=False, default=False,
              negative=True),
)}
DEFAULT_KINDS = tuple(name for name, t in TRANSFORMS.items() if t.default)
STANDARD = tuple(name for name, t in TRANSFORMS.items() if t.standard)


def save_copy(image: Image.Image, transform: Transform, path: Path) -> None:
    """Apply `transform` to an upright RGB image and write it to `path` (new file)."""
    edited = transform.edit(image)
    options = dict(transform.save_options)
    if transform.exif_orientation:
        exif = Image.Exif()
        exif[ExifTags.Base.Orientation] = transform.exif_orientation
        options["exif"] = exif
    with open(path, "xb") as handle:
        edited.save(handle, format=Image.registered_extensions()[transform.extension], **options)


def make_benchmark(originals: list[Path], out: Path, kinds: tuple[str, ...] = DEFAULT_KINDS,
                   max_side: int = 1024) -> list[dict]:
    """Write each original (upright, at most `max_side` pixels) and its edited copies into
    `out`, plus truth.csv; returns the truth rows. Unreadable originals are skipped."""
    out.mkdir(parents=True, exist_ok=False)
    rows = []
    for number, source in enumerate(originals):
        try:
            image = load_image(source, mode="RGB").image
        except Exception:
            continue
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        group = f"g{number:04d}"
        original = out / f"{group}_original.jpg"
        save_copy(image, Transform("original", lambda im: im, save_options=(("quality", 92),)), original)
        rows.append({"file": original.name, "group": group, "transform": "original", "source": str(source)})
        varies = any(TRANSFORMS[name].negative for name in kinds) and has_colour_variant(image)
        for name in kinds:
            transform = TRANSFORMS[name]
            if transform.negative and not varies:
                continue  # its variant would be the picture itself: no negative
            path = out / f"{group}_{name}{transform.extension}"
            save_copy(image, transform, path)
            rows.append({"file": path.name, "group": f"{group}-{name}" if transform.negative else group,
                         "transform": name, "source": str(source)})
    with open(out / "truth.csv", "x", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file", "group", "transform", "source"])
        writer.writeheader()
        writer.writerows(rows)
    return rows
