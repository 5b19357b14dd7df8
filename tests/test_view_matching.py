"""The cheaper paths through views and orientations give what the plain ones gave: hashes
and signatures computed for many boxes at once, the trim found in growing chunks, the
colour checks run in rounds of growing width, and a group walked from the pairs the
search accepted; and a pair matched in another view than the plain pictures needs
VIEW_MARGIN more bits of agreement."""

from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image, ImageOps

from dedup_cli.fingerprint.hashing import HashSettings, hash_boxes, hash_collection, phash_orientations
from dedup_cli.fingerprint.signature import colour_signature, colour_signatures
from dedup_cli.fingerprint.views import BORDER_TOLERANCE, LINE_UNIFORM_SHARE, crop_boxes, trim_box
from dedup_cli.plan.grouping import make_plan
from dedup_cli.plan.similarity import Matcher, MatchSettings

DEMO = Path(__file__).resolve().parent.parent / "datasets" / "demo" / "originals"
PICTURES = sorted(DEMO.glob("*.jpg"))[:4]
BOTH = HashSettings("phash", 8, isometric=True, views=True)


def _packed_phash(image: Image.Image) -> bytes:
    return np.packbits(np.asarray(imagehash.phash(image).hash, dtype=bool).ravel()).tobytes()


@pytest.mark.parametrize("path", PICTURES, ids=lambda path: path.name)
def test_boxes_hashed_together_are_imagehash_phash_of_each_box(path):
    with Image.open(path) as opened:
        picture = opened.convert("RGB")
    picture.thumbnail((400, 400))
    grey = picture.convert("L")
    boxes = [None, *crop_boxes(*grey.size), (3, 5, grey.width - 7, grey.height - 2)]

    together = hash_boxes(grey, HashSettings(), boxes)

    one_by_one = b"".join(_packed_phash(grey if box is None else grey.crop(box)) for box in boxes)
    assert together == one_by_one
    assert phash_orientations(grey, 8)[0] == _packed_phash(grey)
    assert colour_signatures(picture, boxes) == b"".join(colour_signature(picture, box) for box in boxes)


def _trim_reference(image: Image.Image):
    """The trim worked out line by line, the slow way."""
    pixels = np.asarray(image.convert("YCbCr")).astype(np.int16)
    height, width = pixels.shape[:2]

    def depth(lines, limit):
        colour = np.median(lines[0], axis=0)
        if np.abs(colour[1:] - 128).max() > 10:
            return 0
        count = 0
        for line in lines[:limit + 1]:
            if (np.abs(line - colour).max(axis=1) <= BORDER_TOLERANCE).mean() < LINE_UNIFORM_SHARE:
                break
            count += 1
        return count if 2 <= count <= limit else 0

    down, across = int(height * 0.2), int(width * 0.2)
    top, bottom = depth(pixels, down), depth(pixels[::-1], down)
    left, right = depth(pixels.transpose(1, 0, 2), across), depth(pixels.transpose(1, 0, 2)[::-1], across)
    return (left, top, width - right, height - bottom) if (top or bottom or left or right) else None


def test_the_trim_found_in_chunks_is_the_trim_found_line_by_line():
    rng = np.random.default_rng(7)
    with Image.open(PICTURES[0]) as opened:
        picture = opened.convert("RGB")
    picture.thumbnail((240, 240))
    checked = trimmed = 0
    for _ in range(40):
        border = tuple(int(side) for side in rng.integers(0, 70, 4))
        fill = (0, 0, 0) if rng.random() < 0.5 else (255, 255, 255)
        padded = ImageOps.expand(picture, border=border, fill=fill)
        found = trim_box(padded)
        assert found == _trim_reference(padded), border
        checked += 1
        trimmed += found is not None
    assert trimmed > checked / 2  # most of them had a border worth trimming


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> list[Path]:
    """Demo pictures with a padded, a cropped, a mirrored and a byte-identical copy each."""
    folder = tmp_path_factory.mktemp("views-library")
    paths = []
    for source in PICTURES:
        with Image.open(source) as opened:
            picture = opened.convert("RGB")
        picture.thumbnail((360, 360))
        stem = source.stem
        edits = {
            "original": picture,
            "padded": ImageOps.expand(picture, border=30, fill=(255, 255, 255)),
            "cropped": picture.crop((28, 20, picture.width - 28, picture.height - 20)),
            "mirrored": ImageOps.mirror(picture),
        }
        for name, edited in edits.items():
            edited.save(folder / f"{stem}_{name}.jpg", quality=90)
            paths.append(folder / f"{stem}_{name}.jpg")
        (folder / f"{stem}_twin.jpg").write_bytes((folder / f"{stem}_original.jpg").read_bytes())
        paths.append(folder / f"{stem}_twin.jpg")
    return paths


def _plan_rows(plan):
    return sorted((group.keep, tuple(sorted((r.row, r.nearest_keep, r.bits) for r in group.remove)))
                  for group in plan.groups)


def test_a_group_walked_from_the_found_pairs_is_planned_as_when_tried_again(library, monkeypatch):
    hashed = hash_collection(library, BOTH)
    settings = MatchSettings(max_bits=14)

    walked = make_plan(hashed, settings)
    walk_views = Matcher.walk_views

    def trying_again(self, rows):
        self._walk_source = None  # as before the walk read the found pairs
        return walk_views(self, rows)

    monkeypatch.setattr(Matcher, "walk_views", trying_again)
    tried_again = make_plan(hashed, settings)

    assert _plan_rows(walked) == _plan_rows(tried_again)
    assert sum(len(group.remove) for group in walked.groups) >= 3 * len(PICTURES)  # copies and twins found


def test_a_pair_matched_in_another_view_needs_the_view_margin(library):
    hashed = hash_collection(library, BOTH)
    row = {Path(path).name: number for number, path in enumerate(hashed.paths)}
    stem = PICTURES[0].stem
    original, copies = row[f"{stem}_original.jpg"], [row[f"{stem}_{name}.jpg"] for name in ("padded", "cropped")]

    no_margin = Matcher(hashed, MatchSettings(max_bits=14, view_margin=0))
    bits, _, how = no_margin.accepted_views(copies, original)
    assert (how != 0).all() and (bits <= 14).all()  # found through a view, not as plain pictures

    for copy, found in zip(copies, bits.tolist(), strict=True):
        just_out = Matcher(hashed, MatchSettings(max_bits=14, view_margin=14 - found + 1))
        just_in = Matcher(hashed, MatchSettings(max_bits=14, view_margin=14 - found))
        assert just_out.accepted_views([copy], original)[0][0] > 14
        assert just_in.accepted_views([copy], original)[0][0] == found
        pairs = set(zip(*just_out.pairs()[:2], strict=True))
        assert (min(copy, original), max(copy, original)) not in pairs


class _ScriptedMatcher(Matcher):
    """A matcher whose colour checks veto the candidates listed, counting each look."""

    def __init__(self, hashed, vetoed_candidates):
        super().__init__(hashed, MatchSettings(max_bits=14))
        self.vetoed_candidates, self.looks = vetoed_candidates, []

    def _vetoed(self, first, second, how):
        self.looks.append(len(first))
        return self.vetoed_candidates[first]  # `first` carries each candidate's number here


def test_rounds_of_growing_width_choose_the_first_candidate_not_vetoed(library):
    hashed = hash_collection(library[:2], HashSettings())
    rng = np.random.default_rng(3)
    sizes = rng.integers(1, 60, 300)
    group = np.repeat(np.arange(len(sizes)), sizes)
    vetoed = rng.random(len(group)) < 0.8
    matcher = _ScriptedMatcher(hashed, vetoed)
    candidate = np.arange(len(group))

    starts, chosen = matcher._first_accepted(group, candidate, candidate, np.ones(len(group), dtype=np.int64))

    expected = []
    for start, size in zip(np.cumsum(sizes) - sizes, sizes, strict=True):
        kept = np.flatnonzero(~vetoed[start:start + size])
        expected.append(start + kept[0] if len(kept) else -1)
    assert chosen.tolist() == expected
    assert starts.tolist() == (np.cumsum(sizes) - sizes).tolist()
    assert len(matcher.looks) <= 5  # 1, 4, 16, 64: not one round per candidate (59 here)


def test_with_verify_a_view_match_beyond_the_margin_is_no_match_by_the_hash_alone(library):
    from dedup_cli.plan.verify import VERIFIED_HOW, VerifyingMatcher

    hashed = hash_collection(library, HashSettings("phash", 8, views=True))
    row = {Path(path).name: number for number, path in enumerate(hashed.paths)}
    original, copy = row[f"{PICTURES[0].stem}_original.jpg"], row[f"{PICTURES[0].stem}_cropped.jpg"]
    found = int(Matcher(hashed, MatchSettings(max_bits=14, view_margin=0)).accepted_views([copy], original)[0][0])
    assert 0 < found <= 14

    matcher = VerifyingMatcher(hashed, MatchSettings(max_bits=14, verify_bits=6, view_margin=14 - found + 1))
    bits, _, how = matcher.accepted_views([copy], original)

    assert bits[0] > 14 or how[0] >= VERIFIED_HOW  # rejected, or vouched for by the features
    assert (min(copy, original), max(copy, original)) not in set(
        zip(*Matcher(hashed, MatchSettings(max_bits=14, view_margin=14 - found + 1)).pairs()[:2], strict=True))


def test_dropping_colour_vetoed_view_candidates_during_the_search_finds_the_same_pairs(library, monkeypatch):
    import dedup_cli.search.index
    from dedup_cli.plan import coarse_kernel

    hashed = hash_collection(library, BOTH)
    settings = MatchSettings(max_bits=14)
    as_before = Matcher(hashed, settings)
    assert not as_before._prefilter_views()
    expected = as_before.pairs()

    monkeypatch.setattr(dedup_cli.search.index, "SMALL_COMPARISONS", 0)  # as if the collection were large
    checked = []
    global_errors = coarse_kernel.global_errors

    def counted(colour, first, second, *args, **kwargs):
        errors = global_errors(colour, first, second, *args, **kwargs)
        checked.append((len(first), int((errors > settings.colour_threshold).sum())))
        return errors

    monkeypatch.setattr(coarse_kernel, "global_errors", counted)
    prefiltered = Matcher(hashed, settings)
    assert prefiltered._prefilter_views()
    found = prefiltered.pairs()

    assert [values.tolist() for values in found] == [values.tolist() for values in expected]
    assert sum(count for count, _ in checked) > 0
    assert _plan_rows(make_plan(hashed, settings, matcher=prefiltered)) == _plan_rows(make_plan(hashed, settings))
