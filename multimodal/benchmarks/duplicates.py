"""A labelled set of near-duplicate pictures, and precision/recall of the groups ingest makes of it.

Each *scene* is a distinct procedurally drawn photo (a smooth textured background, shapes, lines and
grain, from its own seed). Of each, the set holds the original and copies that are the *same picture*
(cropped by at most 10 %, rescaled, JPEG at quality 30-95, turned by up to 5 degrees) and *similar
shots* (a view shifted over 60-70 % of it, a different exposure), plus unrelated scenes on their own.
`duplicates_measure` ingests it into a corpus through the real ingest service and compares the groups
ingest made with the truth, pair by pair:

- "same": pairs of items put in one same-picture group, against pairs of copies of one scene's picture;
- "similar": pairs in one similar-shot group, against pairs of pictures of one scene (copies and shots).
"""
from __future__ import annotations

import io
import itertools
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

SCENE_SIZE = (256, 192)


@dataclass(frozen=True)
class LabelledPicture:
    name: str
    data: bytes
    scene: int  # the scene it shows
    copy_of: int | None  # the scene whose picture it is a copy of (None: a similar shot, or unrelated)
    variant: str  # "original", "crop 7%", "jpeg q30", "shifted view 65%", ...


def scene_draw(seed: int, size: tuple[int, int] = SCENE_SIZE) -> Image.Image:
    """A distinct photo-like picture: a smooth two-colour field, a dozen shapes and lines, fine grain."""
    rng = random.Random(seed)
    width, height = size
    noise = np.random.default_rng(seed)
    # A smooth background: coarse random values blown up, tinted between two colours.
    coarse = noise.random((4, 5))
    field = np.asarray(Image.fromarray((coarse * 255).astype(np.uint8)).resize(size, Image.Resampling.BICUBIC),
                       dtype=np.float32)[..., None] / 255
    low, high = (np.array([rng.randrange(256) for _ in range(3)], dtype=np.float32) for _ in range(2))
    image = Image.fromarray((low * (1 - field) + high * field).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(8, 14)):
        colour = tuple(rng.randrange(256) for _ in range(3))
        x0, y0 = rng.uniform(-0.1, 0.9) * width, rng.uniform(-0.1, 0.9) * height
        x1, y1 = x0 + rng.uniform(0.1, 0.45) * width, y0 + rng.uniform(0.1, 0.45) * height
        shape = rng.choice(("ellipse", "rectangle", "polygon", "line"))
        if shape == "ellipse":
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        elif shape == "rectangle":
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        elif shape == "polygon":
            draw.polygon([(rng.uniform(x0, x1), rng.uniform(y0, y1)) for _ in range(rng.randint(3, 6))], fill=colour)
        else:
            draw.line((x0, y0, x1, y1), fill=colour, width=rng.randint(3, 12))
    grain = noise.normal(0, 6, (height, width, 3))
    return Image.fromarray(np.clip(np.asarray(image, dtype=np.float32) + grain, 0, 255).astype(np.uint8), "RGB")


def _encoded(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    if fmt == "PNG":
        options.setdefault("compress_level", 1)  # grain compresses badly: zlib's best effort took most of the time
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _cropped(image: Image.Image, fraction: float, rng: random.Random) -> Image.Image:
    """``image`` with ``fraction`` of its width and height cut off, shared at random between the sides."""
    width, height = image.size
    cut_x, cut_y = round(width * fraction), round(height * fraction)
    left, top = rng.randint(0, cut_x), rng.randint(0, cut_y)
    return image.crop((left, top, width - (cut_x - left), height - (cut_y - top)))


def _turned(image: Image.Image, degrees: float) -> Image.Image:
    """``image`` turned by ``degrees`` and cut to the largest centred rectangle without corners (as a
    photo straightened in an editor)."""
    width, height = image.size
    turned = image.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=False)
    angle = np.radians(abs(degrees))
    scale = 1 / (np.cos(angle) + max(width / height, height / width) * np.sin(angle))
    keep_w, keep_h = width * scale, height * scale
    return turned.crop((round((width - keep_w) / 2), round((height - keep_h) / 2),
                        round((width + keep_w) / 2), round((height + keep_h) / 2)))


def same_picture_copies(image: Image.Image, rng: random.Random) -> list[tuple[str, bytes]]:
    """Copies of ``image`` that are the same picture: crops of up to 10 %, rescales, JPEG qualities 30-95,
    turns of up to 5 degrees, and some of these together."""
    crop = rng.uniform(0.03, 0.10)
    scale = rng.choice((0.5, 0.65, 1.5, 2.0))
    quality = rng.randint(30, 60)
    degrees = rng.choice((-1, 1)) * rng.uniform(2, 5)
    width, height = image.size
    rescaled = image.resize((round(width * scale), round(height * scale)), Image.Resampling.LANCZOS)
    return [
        (f"crop {crop:.0%}", _encoded(_cropped(image, crop, rng))),
        (f"rescale x{scale}", _encoded(rescaled)),
        (f"jpeg q{quality}", _encoded(image, "JPEG", quality=quality)),
        ("jpeg q95", _encoded(image, "JPEG", quality=95)),
        (f"turn {degrees:+.1f} deg", _encoded(_turned(image, degrees))),
        (f"crop 5% + rescale x0.5 + jpeg q{quality + 20}",
         _encoded(_cropped(image, 0.05, rng).resize((width // 2, height // 2), Image.Resampling.LANCZOS), "JPEG",
                  quality=quality + 20)),
    ]


def similar_shots(image: Image.Image, rng: random.Random) -> list[tuple[str, bytes]]:
    """Other shots of the scene in ``image``: a view shifted over 60-70 % of it, and another exposure."""
    width, height = image.size
    keep = rng.uniform(0.60, 0.70)
    view_w, view_h = round(width * keep), round(height * keep)
    left, top = rng.choice((0, width - view_w)), rng.choice((0, height - view_h))
    shifted = image.crop((left, top, left + view_w, top + view_h)).resize(image.size, Image.Resampling.LANCZOS)
    exposure = rng.choice((0.55, 1.6))
    exposed = ImageEnhance.Brightness(image).enhance(exposure).filter(ImageFilter.GaussianBlur(0.6))
    return [(f"shifted view {keep:.0%}", _encoded(shifted, "JPEG", quality=90)),
            (f"exposure x{exposure}", _encoded(exposed, "JPEG", quality=90))]


def labelled_set(*, scenes: int = 20, unrelated: int = 20, seed: int = 0) -> list[LabelledPicture]:
    """``scenes`` scenes with their copies and similar shots, and ``unrelated`` scenes alone."""
    rng = random.Random(seed)
    pictures = []
    for scene in range(scenes + unrelated):
        image = scene_draw(seed * 10_000 + scene)
        pictures.append(LabelledPicture(f"scene-{scene:03d}.png", _encoded(image), scene, scene, "original"))
        if scene >= scenes:
            continue
        for number, (variant, data) in enumerate(same_picture_copies(image, rng)):
            pictures.append(LabelledPicture(f"scene-{scene:03d}-copy-{number}", data, scene, scene, variant))
        for number, (variant, data) in enumerate(similar_shots(image, rng)):
            pictures.append(LabelledPicture(f"scene-{scene:03d}-shot-{number}", data, scene, None, variant))
    return pictures


@dataclass(frozen=True)
class LevelFigures:
    level: str
    precision: float
    recall: float
    true_pairs: int
    found_pairs: int
    right_pairs: int


def pairs_score(level: str, truth: dict[str, int | None], found: dict[str, int | None]) -> LevelFigures:
    """Precision and recall over pairs: ``truth`` and ``found`` map each picture's name to its group (None: alone)."""
    def pairs(groups: dict[str, int | None]) -> set[tuple[str, str]]:
        members: dict[int, list[str]] = {}
        for name, group in groups.items():
            if group is not None:
                members.setdefault(group, []).append(name)
        return {pair for names in members.values() for pair in itertools.combinations(sorted(names), 2)}

    true_pairs, found_pairs = pairs(truth), pairs(found)
    right = len(true_pairs & found_pairs)
    return LevelFigures(level=level, precision=right / len(found_pairs) if found_pairs else 1.0,
                        recall=right / len(true_pairs) if true_pairs else 1.0, true_pairs=len(true_pairs),
                        found_pairs=len(found_pairs), right_pairs=right)


def duplicates_measure(*, corpus, pictures: list[LabelledPicture]) -> list[LevelFigures]:
    """Ingest ``pictures`` into ``corpus`` (through `items_ingest`, which groups them) and score both levels."""
    from ..models import Item
    from ..services.ingest import Source, items_ingest

    sources = [Source(name=picture.name, read=lambda data=picture.data: data, size=len(picture.data))
               for picture in pictures]
    report = items_ingest(corpus=corpus, sources=sources)
    if report.failures:
        raise RuntimeError(f"{len(report.failures)} pictures failed: {report.failures[0].name}: {report.failures[0].reason}")
    found = {row["source_name"]: row for row in Item.objects.filter(corpus=corpus).values(
        "source_name", "same_group", "similar_group")}
    scene_sizes: dict[int, int] = {}
    for picture in pictures:
        scene_sizes[picture.scene] = scene_sizes.get(picture.scene, 0) + 1
    return [
        pairs_score("same", {picture.name: picture.copy_of for picture in pictures},
                    {picture.name: found[picture.name]["same_group"] for picture in pictures}),
        pairs_score("similar", {picture.name: picture.scene if scene_sizes[picture.scene] > 1 else None
                                for picture in pictures},
                    {picture.name: found[picture.name]["similar_group"] for picture in pictures}),
    ]
