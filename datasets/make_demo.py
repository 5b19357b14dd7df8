#!/usr/bin/env python3
"""Build the small demo collection ``datasets/demo/`` for ``dedup``.

The demo holds 13 distinct originals and 34 near-duplicate copies of them,
spread over nested folders with mixed-case extensions, so that a recursive,
case-insensitive scan, EXIF orientation handling and several file formats all
get exercised.  ``datasets/demo/truth.csv`` (columns ``file,group,note``)
labels every image: files sharing a ``group`` are near-duplicates of each
other, ``note`` names the transform (``original``, ``resize 0.6``,
``jpeg q45``, ``crop l2% t3% r4% b3%``, ``exif-rotated 6``, ``format webp``).

Where the images come from: the freely licensed sets of the shared benchmark
folder (``../shared/bench`` beside the repository, see its README.md):

* ``wallpapers/`` (Debian packages mate-backgrounds and
  lomiri-wallpapers-20.04): six photos/artworks, downscaled so the longest
  side is at most 1024 px and saved as JPEG quality 90;
* ``pdq-testdata/`` (facebook/ThreatExchange, BSD): the bridge photo
  ``bridge-mods/aaa-orig.jpg``, downscaled the same way;
* ``exif-orientation/`` (MIT): ``Landscape_1.jpg`` copied as is, plus
  ``Landscape_6.jpg`` and ``Landscape_8.jpg``, real copies of the same picture
  stored rotated with EXIF orientation 6 and 8;
* ``flags/iso-320x240/`` (public domain): five flags that stay clearly
  different in greyscale, copied as is.

All other copies are made here from the demo originals.  Licence files of the
sources go to ``demo/LICENSES/``, and ``demo/LICENSES/SOURCES.md`` lists every
original with its source path and licence.

The output is deterministic (fixed parameters, a fixed random seed for the
crop margins, no timestamps written): rerunning gives byte-identical files
with the same Pillow/libjpeg/libwebp versions.  After building, the script
checks the result with imagehash (pHash after EXIF transpose), prints the
distance of each copy to its original and the smallest distance between
distinct groups; it exits non-zero if two distinct groups are 20 bits or
closer, or if an EXIF-rotated copy does not match its original's orientation.

Usage::

    python datasets/make_demo.py [--bench ../shared/bench] [--out datasets/demo]
                                 [--force] [--no-check]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import random
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from PIL import ExifTags, Image, ImageOps

REPO = Path(__file__).resolve().parent.parent
DEFAULT_BENCH = REPO.parent / "shared" / "bench"
DEFAULT_OUT = REPO / "datasets" / "demo"

SEED = 20240611
MAX_SIDE = 1024
ORIGINAL_QUALITY = 90  # JPEG quality of downscaled originals and derived copies
MIN_DISTINCT_BITS = 20  # distinct groups must be further apart than this

# Licence files copied to demo/LICENSES/: bench path -> name in LICENSES/.
LICENCE_FILES = {
    "mate": (
        "wallpapers/mate-backgrounds/COPYRIGHT",
        "wallpapers-mate-backgrounds-COPYRIGHT",
    ),
    "lomiri": (
        "wallpapers/lomiri-wallpapers-20.04/COPYRIGHT",
        "wallpapers-lomiri-wallpapers-20.04-COPYRIGHT",
    ),
    "pdq": ("pdq-testdata/LICENSE", "pdq-testdata-LICENSE"),
    "exif": ("exif-orientation/LICENSE", "exif-orientation-LICENSE"),
    "flags": (
        "flags/iso-flags-png-320x240.copyright",
        "flags-iso-flags-png-320x240.copyright",
    ),
}


@dataclass(frozen=True)
class Original:
    group: str  # group name in truth.csv
    file: str  # path inside demo/
    source: str  # path inside bench/
    how: str  # "downscale" (to MAX_SIDE, JPEG q90) or "copy" (byte copy)
    licence: str  # short licence statement for SOURCES.md
    licence_key: str  # key into LICENCE_FILES


@dataclass(frozen=True)
class Copy:
    group: str
    file: str  # path inside demo/; the suffix picks the format
    op: str  # resize | jpeg | crop | exif | format | bench
    arg: float | int | str | None = None


MATE = "wallpapers/mate-backgrounds/usr/share/backgrounds/mate"
BARBIN = "GPL-2+, (c) 2008 Charles Barbin (mate-backgrounds)"

ORIGINALS = [
    Original(
        "aqua",
        "originals/aqua.jpg",
        f"{MATE}/nature/Aqua.jpg",
        "downscale",
        BARBIN,
        "mate",
    ),
    Original(
        "storm",
        "originals/storm.jpg",
        f"{MATE}/nature/Storm.jpg",
        "downscale",
        "GPL-2+, (c) 2008 Sergey Nazarov (mate-backgrounds)",
        "mate",
    ),
    Original(
        "ladybird",
        "originals/ladybird.jpg",
        f"{MATE}/nature/LadyBird.jpg",
        "downscale",
        BARBIN,
        "mate",
    ),
    Original(
        "yellowflower",
        "originals/yellowflower.jpg",
        f"{MATE}/nature/YellowFlower.jpg",
        "downscale",
        BARBIN,
        "mate",
    ),
    Original(
        "elephants",
        "originals/elephants.jpg",
        f"{MATE}/abstract/Elephants.jpg",
        "downscale",
        "GPL-2+, (c) 2020 Wyng Stancikaite (mate-backgrounds)",
        "mate",
    ),
    Original(
        "kleiber",
        "originals/kleiber.jpg",
        "wallpapers/lomiri-wallpapers-20.04/usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg",
        "downscale",
        "CC-BY-SA-3.0, (c) 2021 Lukas Baubkus (lomiri-wallpapers 20.04)",
        "lomiri",
    ),
    Original(
        "bridge",
        "originals/bridge.jpg",
        "pdq-testdata/bridge-mods/aaa-orig.jpg",
        "downscale",
        "BSD-3-Clause, (c) Meta Platforms, Inc. and affiliates (facebook/ThreatExchange)",
        "pdq",
    ),
    Original(
        "landscape",
        "originals/landscape.jpg",
        "exif-orientation/Landscape_1.jpg",
        "copy",
        "MIT, (c) 2010 Dave Perrett (exif-orientation-examples)",
        "exif",
    ),
]
FLAG_LICENCE = (
    "public domain (Brett Roper; linuxmint/flags, Debian package iso-flags-png-320x240)"
)
for _code, _name in [
    ("jp", "japan"),
    ("ca", "canada"),
    ("gr", "greece"),
    ("np", "nepal"),
    ("pk", "pakistan"),
]:
    ORIGINALS.append(
        Original(
            f"flag-{_name}",
            f"originals/flags/{_name}.png",
            f"flags/iso-320x240/{_code}.png",
            "copy",
            FLAG_LICENCE,
            "flags",
        )
    )

# Near-duplicate copies.  Folders: edits/ (resize, crop), camera/ (EXIF-rotated,
# upper-case .JPG), archive/ (recompressed), exports/web/ (other formats, two
# levels deep) and exports/print/2019/ (three levels deep).
COPIES = [
    # aqua: 5 copies
    Copy("aqua", "edits/aqua_small.jpg", "resize", 0.6),
    Copy("aqua", "archive/aqua_q45.jpg", "jpeg", 45),
    Copy("aqua", "edits/cropped/aqua_crop.jpg", "crop"),
    Copy("aqua", "camera/IMG_2041.JPG", "exif", 6),
    Copy("aqua", "exports/web/aqua.webp", "format"),
    # storm: 3 copies
    Copy("storm", "edits/storm_800px.jpg", "resize", 0.78),
    Copy("storm", "archive/storm_q55.jpeg", "jpeg", 55),
    Copy("storm", "exports/web/Storm.PNG", "format"),
    # ladybird: 4 copies
    Copy("ladybird", "archive/ladybird_q40.jpg", "jpeg", 40),
    Copy("ladybird", "camera/IMG_2077.JPG", "exif", 8),
    Copy("ladybird", "edits/cropped/ladybird_crop.jpg", "crop"),
    Copy("ladybird", "exports/web/ladybird.png", "format"),
    # yellowflower: 4 copies
    Copy("yellowflower", "edits/yellowflower_half.jpg", "resize", 0.5),
    Copy("yellowflower", "archive/yellowflower_q60.jpg", "jpeg", 60),
    Copy("yellowflower", "edits/cropped/yellowflower_crop.jpg", "crop"),
    Copy("yellowflower", "exports/print/2019/yellowflower.tif", "format"),
    # elephants: 3 copies
    Copy("elephants", "edits/cropped/elephants_crop.jpg", "crop"),
    Copy("elephants", "archive/elephants_q50.jpg", "jpeg", 50),
    Copy("elephants", "camera/IMG_2101.JPG", "exif", 6),
    # kleiber: 4 copies
    Copy("kleiber", "exports/web/kleiber.gif", "format"),
    Copy("kleiber", "edits/kleiber_80.jpg", "resize", 0.8),
    Copy("kleiber", "edits/cropped/kleiber_crop.jpg", "crop"),
    Copy("kleiber", "camera/IMG_2113.JPG", "exif", 8),
    # bridge: 4 copies
    Copy("bridge", "edits/bridge_70.jpg", "resize", 0.7),
    Copy("bridge", "camera/DSC00412.JPG", "exif", 8),
    Copy("bridge", "archive/bridge_q40.jpg", "jpeg", 40),
    Copy("bridge", "exports/print/2019/bridge.bmp", "format"),
    # landscape: 4 copies (two are the bench's own EXIF-rotated files)
    Copy(
        "landscape",
        "camera/Landscape_6.jpg",
        "bench",
        "exif-orientation/Landscape_6.jpg",
    ),
    Copy(
        "landscape",
        "camera/Landscape_8.jpg",
        "bench",
        "exif-orientation/Landscape_8.jpg",
    ),
    Copy("landscape", "edits/landscape_55.jpg", "resize", 0.55),
    Copy("landscape", "exports/web/landscape.WebP", "format"),
    # flags: one copy each for three of the five
    Copy("flag-canada", "archive/flags/canada.jpg", "format"),
    Copy("flag-nepal", "archive/flags/NEPAL.BMP", "format"),
    Copy("flag-pakistan", "exports/web/flag-pakistan.webp", "format"),
]

FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".gif": "GIF",
}


# --------------------------------------------------------------------------- helpers


def fmt_of(path: Path) -> str:
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise SystemExit(f"make_demo: no format for suffix of {path}") from None


def save(
    img: Image.Image,
    path: Path,
    quality: int = ORIGINAL_QUALITY,
    exif: bytes | None = None,
) -> None:
    """Save img in the format given by path's suffix, without metadata or timestamps."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = fmt_of(path)
    # Pillow writes some of im.info back out (a JPEG comment, for one): drop it
    # so that only pixels (and the EXIF passed in) reach the file.
    img = img.copy()
    img.info = {}
    if fmt == "JPEG":
        kwargs = {"quality": quality}
        if exif is not None:
            kwargs["exif"] = exif
        img.convert("RGB").save(path, "JPEG", **kwargs)
    elif fmt == "PNG":
        img.save(path, "PNG", compress_level=9)
    elif fmt == "WEBP":
        img.save(path, "WEBP", quality=80, method=4)
    elif fmt == "BMP":
        img.convert("RGB").save(path, "BMP")
    elif fmt == "TIFF":
        img.convert("RGB").save(path, "TIFF", compression="tiff_lzw")
    elif fmt == "GIF":
        pal = img.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        pal.save(path, "GIF")
    else:  # pragma: no cover - FORMATS and save() are kept in step
        raise AssertionError(fmt)


def load(path: Path) -> Image.Image:
    """Open an image and apply its EXIF orientation, fully loaded."""
    with Image.open(path) as im:
        out = ImageOps.exif_transpose(im)
        out.load()
    return out


def downscale(img: Image.Image, max_side: int = MAX_SIDE) -> Image.Image:
    w, h = img.size
    scale = max_side / max(w, h)
    if scale >= 1:
        return img.copy()
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return img.convert("RGB").resize(size, Image.Resampling.LANCZOS)


def rotated_for_exif(img: Image.Image, orientation: int) -> Image.Image:
    """Pixels to store so that applying EXIF ``orientation`` gives back img."""
    # exif_transpose undoes 6 with ROTATE_270 and 8 with ROTATE_90, so store
    # the opposite rotation.
    if orientation == 6:
        return img.transpose(Image.Transpose.ROTATE_90)
    if orientation == 8:
        return img.transpose(Image.Transpose.ROTATE_270)
    raise ValueError(f"unsupported orientation {orientation}")


def exif_bytes(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    return exif.tobytes()


# --------------------------------------------------------------------------- build


def make_copy(
    c: Copy, original: Image.Image, bench: Path, dest: Path, rng: random.Random
) -> str:
    """Write one copy to dest and return its truth.csv note."""
    if c.op == "bench":
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bench / str(c.arg), dest)
        with Image.open(dest) as im:
            orientation = im.getexif().get(ExifTags.Base.Orientation)
        return f"exif-rotated {orientation} (bench file {c.arg})"
    if c.op == "resize":
        w, h = original.size
        size = (round(w * float(c.arg)), round(h * float(c.arg)))
        save(original.resize(size, Image.Resampling.LANCZOS), dest)
        return f"resize {c.arg:g}"
    if c.op == "jpeg":
        if fmt_of(dest) != "JPEG":
            raise SystemExit(f"make_demo: jpeg copy needs a JPEG name: {c.file}")
        save(original, dest, quality=int(c.arg))
        return f"jpeg q{c.arg}"
    if c.op == "crop":
        left, top, right, bottom = (rng.randint(2, 4) for _ in range(4))
        w, h = original.size
        box = (
            round(w * left / 100),
            round(h * top / 100),
            w - round(w * right / 100),
            h - round(h * bottom / 100),
        )
        save(original.crop(box), dest)
        return f"crop l{left}% t{top}% r{right}% b{bottom}%"
    if c.op == "exif":
        orientation = int(c.arg)
        if fmt_of(dest) != "JPEG":
            raise SystemExit(
                f"make_demo: EXIF-rotated copy needs a JPEG name: {c.file}"
            )
        save(
            rotated_for_exif(original, orientation), dest, exif=exif_bytes(orientation)
        )
        return f"exif-rotated {orientation}"
    if c.op == "format":
        img = original
        note = f"format {fmt_of(dest).lower()}"
        if img.mode in ("RGBA", "LA", "P") and fmt_of(dest) in ("JPEG", "BMP"):
            # Like most converters that cannot store alpha (and like a browser shows
            # it): flatten onto white.
            rgba = img.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            img = Image.alpha_composite(white, rgba).convert("RGB")
            note += " (flattened on white)"
        save(img, dest)
        return note
    raise SystemExit(f"make_demo: unknown op {c.op!r}")


def write_sources_md(path: Path) -> None:
    lines = [
        "# Sources of the demo images",
        "",
        "Every original in `datasets/demo/` comes from the shared benchmark folder",
        "(`../shared/bench` beside the repository); the paths below are relative to it.",
        "The near-duplicate copies listed in `../truth.csv` are derived from these",
        "originals by `datasets/make_demo.py` (resize, JPEG recompression, crop,",
        "EXIF-rotation, format change), except `camera/Landscape_6.jpg` and",
        "`camera/Landscape_8.jpg`, which are byte copies of",
        "`exif-orientation/Landscape_6.jpg` and `exif-orientation/Landscape_8.jpg`.",
        "Derived files are distributed under the same licence as their original.",
        "",
        "Images marked *downscaled* were resized so that the longest side is at most",
        f"{MAX_SIDE} px and saved as JPEG quality {ORIGINAL_QUALITY}; the others are byte copies.",
        "",
        "| demo file | source (under bench/) | how | licence | licence file |",
        "|---|---|---|---|---|",
    ]
    for o in ORIGINALS:
        how = "downscaled" if o.how == "downscale" else "copied"
        lic_file = LICENCE_FILES[o.licence_key][1]
        lines.append(
            f"| `{o.file}` | `{o.source}` | {how} | {o.licence} | `{lic_file}` |"
        )
    lines += [
        "",
        "Licence files (copied unchanged from the sources):",
        "",
    ]
    used = [LICENCE_FILES[key] for key in {o.licence_key for o in ORIGINALS}]
    for src, name in sorted(used, key=lambda item: item[1]):
        lines.append(f"- `{name}`: from `{src}`")
    lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def build(bench: Path, out: Path) -> list[tuple[str, str, str]]:
    """Create every file of the demo; return the truth rows (file, group, note)."""
    rng = random.Random(SEED)
    rows: list[tuple[str, str, str]] = []
    originals: dict[str, Image.Image] = {}

    for o in ORIGINALS:
        src = bench / o.source
        dest = out / o.file
        dest.parent.mkdir(parents=True, exist_ok=True)
        if o.how == "copy":
            shutil.copyfile(src, dest)
        else:
            save(downscale(load(src)), dest)
        originals[o.group] = load(dest)
        rows.append((o.file, o.group, "original"))

    for c in COPIES:
        note = make_copy(c, originals[c.group], bench, out / c.file, rng)
        rows.append((c.file, c.group, note))

    lic_dir = out / "LICENSES"
    lic_dir.mkdir(parents=True, exist_ok=True)
    for key in sorted({o.licence_key for o in ORIGINALS}):
        src, name = LICENCE_FILES[key]
        shutil.copyfile(bench / src, lic_dir / name)
    write_sources_md(lic_dir / "SOURCES.md")

    order = {o.group: i for i, o in enumerate(ORIGINALS)}
    rows.sort(key=lambda r: (order[r[1]], r[2] != "original", r[0]))
    with open(out / "truth.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["file", "group", "note"])
        writer.writerows(rows)
    return rows


# --------------------------------------------------------------------------- check


def check(out: Path, rows: list[tuple[str, str, str]]) -> bool:
    """Print pHash distances; return False if the demo breaks its own design."""
    try:
        import imagehash
    except ImportError:
        print("make_demo: imagehash not installed, skipping the check", file=sys.stderr)
        return True

    ok = True
    # every image file under out must be labelled
    labelled = {r[0] for r in rows}
    on_disk = {
        p.relative_to(out).as_posix()
        for p in out.rglob("*")
        if p.is_file() and p.suffix.lower() in FORMATS
    }
    if on_disk != labelled:
        print(
            f"MISMATCH truth.csv vs files: missing={sorted(on_disk - labelled)} "
            f"extra={sorted(labelled - on_disk)}"
        )
        ok = False

    hashes = {}
    for file, _group, _note in rows:
        hashes[file] = imagehash.phash(load(out / file))
    orig_of = {r[1]: r[0] for r in rows if r[2] == "original"}

    print(f"{'copy':44s} {'group':14s} {'note':44s} bits")
    for file, group, note in rows:
        if note == "original":
            continue
        d = hashes[file] - hashes[orig_of[group]]
        flag = "" if d <= 10 else "  (>10)"
        print(f"{file:44s} {group:14s} {note:44s} {d:3d}{flag}")
        if note.startswith("exif-rotated"):
            with Image.open(out / file) as im:
                stored = im.size
            shown = load(out / file).size
            want = load(out / orig_of[group]).size
            if shown != want or stored != (want[1], want[0]):
                print(
                    f"  EXIF CHECK FAILED: stored {stored}, shown {shown}, original {want}"
                )
                ok = False

    pairs = [
        (hashes[a] - hashes[b], a, b)
        for a, b in itertools.combinations(sorted(orig_of.values()), 2)
    ]
    d, a, b = min(pairs)
    print(f"\nmin distance between distinct originals: {d} bits ({a} vs {b})")
    if d <= MIN_DISTINCT_BITS:
        print(
            f"  TOO CLOSE: distinct originals must be > {MIN_DISTINCT_BITS} bits apart"
        )
        ok = False
    group_of = {r[0]: r[1] for r in rows}
    cross = min(
        (hashes[a] - hashes[b], a, b)
        for a, b in itertools.combinations(sorted(hashes), 2)
        if group_of[a] != group_of[b]
    )
    print(
        f"min distance between any two files of distinct groups: {cross[0]} bits "
        f"({cross[1]} vs {cross[2]})"
    )
    if cross[0] <= MIN_DISTINCT_BITS:
        print(
            f"  TOO CLOSE: files of distinct groups must be > {MIN_DISTINCT_BITS} bits apart"
        )
        ok = False
    within = [hashes[f] - hashes[orig_of[g]] for f, g, n in rows if n != "original"]
    print(
        f"copies: {len(within)}, within 10 bits: {sum(x <= 10 for x in within)}, "
        f"max {max(within)} bits"
    )
    return ok


# --------------------------------------------------------------------------- main


def prepare_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise SystemExit(f"make_demo: {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise SystemExit(
                f"make_demo: {out} is not empty; use --force to rebuild it"
            )
        # guard against deleting something that is clearly not a demo folder
        forbidden = {
            Path("/").resolve(),
            Path.home().resolve(),
            REPO,
            REPO.parent,
            REPO / "datasets",
        }
        if (
            out in forbidden
            or (out / ".git").exists()
            or out in Path(__file__).resolve().parents
        ):
            raise SystemExit(f"make_demo: refusing to delete {out}")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bench",
        type=Path,
        default=DEFAULT_BENCH,
        help=f"benchmark image folder (default: {DEFAULT_BENCH})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"output folder (default: {DEFAULT_OUT})",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="delete and recreate the output folder if it is not empty",
    )
    parser.add_argument(
        "--no-check", action="store_true", help="skip the imagehash sanity check"
    )
    args = parser.parse_args(argv)

    bench = args.bench.resolve()
    out = args.out.resolve()
    missing = [o.source for o in ORIGINALS if not (bench / o.source).is_file()]
    if missing:
        print(
            f"make_demo: bench folder {bench} lacks: {', '.join(missing)}",
            file=sys.stderr,
        )
        return 2
    prepare_out(out, args.force)
    rows = build(bench, out)
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(
        f"wrote {len(rows)} images ({sum(r[2] == 'original' for r in rows)} originals) "
        f"to {out}, {total / 1e6:.2f} MB"
    )
    if args.no_check:
        return 0
    return 0 if check(out, rows) else 1


if __name__ == "__main__":
    sys.exit(main())
