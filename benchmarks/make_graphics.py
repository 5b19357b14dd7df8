"""Simple graphics as hard negatives: logos, icons and symbols made of a few flat shapes,
all distinct, with true copies of each.

    python benchmarks/make_graphics.py OUT [--count 150] [--seed 7]

Each graphic is 320x240: one to three shapes (discs, bars, boxes, triangles, rings,
letters) in black, white or a strong colour, on white, on black, or on transparency (as
logos ship, flattened by the reader). Written as PNG, plus a JPEG (quality 85) and a
half-size PNG of it as its true duplicates; truth.csv (file, group, transform) makes
every graphic its own group. Hashes see little in such pictures, and black and white is
all the colour many have: what the views (trimmed borders, centre crops) may pair wrongly.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

SIZE = (320, 240)
COLOURS = [(0, 0, 0), (255, 255, 255), (200, 30, 30), (30, 90, 200), (20, 150, 60), (240, 200, 20)]
GROUNDS = ["white", "black", "clear-white", "clear-black"]  # clear: transparent, shapes in white or black


def graphic(rng: random.Random) -> tuple[Image.Image, str]:
    """A graphic, and the ground it was drawn on (GROUNDS)."""
    ground = rng.choice(GROUNDS)
    if ground.startswith("clear"):
        canvas = Image.new("RGBA", SIZE, (255, 255, 255, 0))
        inks = [(255, 255, 255) if ground == "clear-white" else (0, 0, 0)]
    else:
        canvas = Image.new("RGBA", SIZE, (255, 255, 255, 255) if ground == "white" else (0, 0, 0, 255))
        inks = [colour for colour in COLOURS if colour != ((255, 255, 255) if ground == "white" else (0, 0, 0))]
    draw = ImageDraw.Draw(canvas)
    for _ in range(rng.randint(1, 3)):
        ink = (*rng.choice(inks), 255)
        left, top = rng.randint(0, SIZE[0] - 60), rng.randint(0, SIZE[1] - 60)
        right, bottom = rng.randint(left + 40, SIZE[0]), rng.randint(top + 40, SIZE[1])
        kind = rng.choice(["disc", "bar", "box", "triangle", "ring", "letter"])
        if kind == "disc":
            draw.ellipse((left, top, right, bottom), fill=ink)
        elif kind == "bar":
            middle = (top + bottom) // 2
            draw.rectangle((left, middle - 12, right, middle + 12), fill=ink)
        elif kind == "box":
            draw.rectangle((left, top, right, bottom), fill=ink)
        elif kind == "triangle":
            draw.polygon([(left, bottom), ((left + right) // 2, top), (right, bottom)], fill=ink)
        elif kind == "ring":
            draw.ellipse((left, top, right, bottom), outline=ink, width=rng.randint(6, 16))
        else:
            font = ImageFont.load_default(size=rng.randint(60, 140))
            draw.text((left, top), rng.choice("ABCDEFGHKMNPRSTWXZ0123456789"), fill=ink, font=font)
    return canvas, ground


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=150)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for number in range(args.count):
        picture, ground = graphic(rng)
        stem = f"graphic{number:03d}"
        picture.save(args.out / f"{stem}.png")
        # Flattened as a reader shows it: white shapes on transparency on black, others on white.
        behind = (0, 0, 0, 255) if ground == "clear-white" else (255, 255, 255, 255)
        flat = Image.alpha_composite(Image.new("RGBA", SIZE, behind), picture).convert("RGB")
        flat.save(args.out / f"{stem}.jpg", quality=85)
        picture.resize((SIZE[0] // 2, SIZE[1] // 2), Image.Resampling.LANCZOS).save(args.out / f"{stem}_small.png")
        rows += [(f"{stem}.png", stem, "original"), (f"{stem}.jpg", stem, "jpeg"), (f"{stem}_small.png", stem, "half")]
    with open(args.out / "truth.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "group", "transform"])
        writer.writerows(rows)
    print(f"{len(rows)} files, {args.count} graphics in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
