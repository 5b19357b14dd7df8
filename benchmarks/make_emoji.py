"""Emoji skin-tone variants as hard negatives: same drawing, different colours.

    python benchmarks/make_emoji.py OUT [--font /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf]

Needs a colour emoji font (Debian: `apt-get install fonts-noto-color-emoji`); skips with a
message without one. Writes each emoji in its 6 tones (yellow default + 5 skin tones) on a
transparent background as PNG, plus a JPEG (flattened on white) and a half-size PNG of each as true duplicates,
and truth.csv (file, group, transform): every emoji-and-tone is its own group.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
TONES = {"yellow": "", "light": "\U0001f3fb", "medium-light": "\U0001f3fc", "medium": "\U0001f3fd",
         "medium-dark": "\U0001f3fe", "dark": "\U0001f3ff"}
BASES = {"thumbs-up": "\U0001f44d", "waving-hand": "\U0001f44b", "person": "\U0001f9d1", "baby": "\U0001f476",
         "folded-hands": "\U0001f64f", "raised-fist": "\u270a", "ok-hand": "\U0001f44c", "woman": "\U0001f469",
         "man": "\U0001f468", "ear": "\U0001f442", "flexed-biceps": "\U0001f4aa", "victory-hand": "\u270c"}


def render(text: str, font) -> Image.Image:
    canvas = Image.new("RGBA", (136, 128), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((4, 0), text, font=font, embedded_color=True)
    return canvas


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--font", type=Path, default=FONT)
    args = parser.parse_args()
    if not args.font.exists():
        print(f"skipped: no colour emoji font at {args.font} (apt-get install fonts-noto-color-emoji)")
        return 0
    font = ImageFont.truetype(str(args.font), 109)
    args.out.mkdir(parents=True)
    rows = []
    for base_name, base in BASES.items():
        for tone_name, tone in TONES.items():
            image = render(base + tone, font)
            group = f"{base_name}-{tone_name}"
            image.save(args.out / f"{group}.png")
            white = Image.new("RGBA", image.size, (255, 255, 255, 255))
            Image.alpha_composite(white, image).convert("RGB").save(args.out / f"{group}.jpg", quality=85)
            image.resize((68, 64), Image.Resampling.LANCZOS).save(args.out / f"{group}_small.png")
            rows += [{"file": f"{group}{suffix}", "group": group, "transform": kind}
                     for suffix, kind in ((".png", "original"), (".jpg", "jpeg"), ("_small.png", "resize"))]
    with open(args.out / "truth.csv", "x", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file", "group", "transform"])
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} files, {len(rows) // 3} distinct emoji in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
