"""Fingerprints that tell a copy of a picture or a product row from another one. Pure: Pillow, numpy, imagehash.

A picture's fingerprint is its perceptual hash, 128 bits: pHash (the signs of the 8×8 lowest
frequencies of its 32×32 greyscale DCT) then dHash (whether each of 8×8 pixels of a 9×8 greyscale
copy is brighter than its right neighbour), and its brightness (mean luminance, 0–255). Resizing,
recompressing, a small crop or a turn of a few degrees flips some of the bits; another picture differs
in about half. Either hash alone let some copies drift further than some unrelated pictures, their
sum did not (`multimodal.benchmarks.duplicates`). Both ignore exposure by design, so a bracketed shot
of the same scene would count as the same picture: the brightness tells them apart.

A product row's fingerprint is a digest of its normalised text (title, description, specs: case,
accents, punctuation, spacing and the order of the specs do not count): rows that differ only in how
they were typed are the same product (when they have pictures, those must be the same picture too).
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

import numpy as np
from PIL import Image

HASH_HEX_DIGITS = 32  # 128 bits: pHash, then dHash
# Copies of a picture keep its brightness within this much (of 255): recompressing or cropping moves it by a
# few; another exposure of the scene (a bracketed shot) by 30 and more.
SAME_BRIGHTNESS_TOLERANCE = 12


@dataclass(frozen=True)
class PictureFingerprint:
    perceptual_hash: str  # HASH_HEX_DIGITS hex digits; "" for a flat picture, which is no copy of anything
    brightness: int  # mean luminance, 0-255

    def same_picture_as(self, other: "PictureFingerprint", *, max_bits: int) -> bool:
        """Whether ``other`` is a copy of the same picture: at most ``max_bits`` of the hash differ, and as bright."""
        return (bool(self.perceptual_hash and other.perceptual_hash)
                and abs(self.brightness - other.brightness) <= SAME_BRIGHTNESS_TOLERANCE
                and hash_distance(self.perceptual_hash, other.perceptual_hash) <= max_bits)


# A picture whose grey levels spread less than this (standard deviation, of 255) is flat: a swatch, a blank page.
# Its hash is all noise or all zeros, the same as any other flat picture's, so it gets none ("").
FLAT_SPREAD = 2.0


def picture_fingerprint(image: Image.Image) -> PictureFingerprint:
    """``image``'s perceptual hash and brightness (any mode, any size); a flat picture's hash is "" (`FLAT_SPREAD`)."""
    import imagehash  # imports scipy's FFT: paid once, by the processes that ingest pictures

    grey = image.convert("L")
    levels = np.asarray(grey.resize((64, 64), Image.Resampling.BILINEAR), dtype=np.float32)
    flat = levels.std() < FLAT_SPREAD
    return PictureFingerprint(perceptual_hash="" if flat else f"{imagehash.phash(grey)}{imagehash.dhash(grey)}",
                              brightness=round(float(levels.mean())))


def hash_distance(first: str, second: str) -> int:
    """Bits that differ between two hex hashes (Hamming distance)."""
    return (int(first, 16) ^ int(second, 16)).bit_count()


def fingerprint_encode(*, picture: PictureFingerprint | None, text: str | None) -> str | None:
    """Both fingerprints in one column: "p" + hash + brightness (2 hex digits) and/or "t" + text digest, space
    separated; None when there is neither."""
    pieces = [f"p{picture.perceptual_hash}{picture.brightness:02x}"] if picture is not None else []
    if text:
        pieces.append(f"t{text}")
    return " ".join(pieces) or None


def fingerprint_decode(value: str | None) -> tuple[PictureFingerprint | None, str | None]:
    """(picture fingerprint, text digest) from `fingerprint_encode`'s column; None for what it does not hold."""
    picture, text = None, None
    for piece in (value or "").split():
        if piece.startswith("p"):
            picture = PictureFingerprint(perceptual_hash=piece[1:-2], brightness=int(piece[-2:], 16))
        elif piece.startswith("t"):
            text = piece[1:]
    return picture, text


def text_normalise(text: str) -> str:
    """Lower case, no accents, punctuation or repeated spaces: how a row is compared with another."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(char for char in folded if not unicodedata.combining(char))
    return " ".join(re.findall(r"\w+", plain))


def product_fingerprint(*, title: str, description: str, specs: dict[str, str], specs_text: str = "") -> str:
    """A digest of a product row's normalised text: equal for rows that say the same."""
    spec_lines = sorted(f"{text_normalise(key)}={text_normalise(value)}" for key, value in specs.items())
    body = "\n".join([text_normalise(title), text_normalise(description), *spec_lines,
                      text_normalise(specs_text) if not specs else ""])
    return hashlib.sha256(body.encode()).hexdigest()[:32]
