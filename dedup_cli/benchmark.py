"""Turn a folder of originals into a labelled near-duplicate benchmark (images + truth.csv).

Each original gets copies under standard edits (resize, recompression, a small crop ...)
and harder ones (grey, mirror, rotation, padding, a 10% crop; and, when named, a 15% crop,
a letterbox, a large watermark and logos); truth.csv (file, group,
transform) says which files are copies of which original. Writes only into `out`.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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
        for name in kinds:
            transform = TRANSFORMS[name]
            path = out / f"{group}_{name}{transform.extension}"
            save_copy(image, transform, path)
            rows.append({"file": path.name, "group": group, "transform": name, "source": str(source)})
    with open(out / "truth.csv", "x", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file", "group", "transform", "source"])
        writer.writeheader()
        writer.writerows(rows)
    return rows
