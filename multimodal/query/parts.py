"""The registry of query part types: what each kind of part is, in one entry.

An entry says whether the part is an uploaded file (and its size limit, from settings), how its
value or bytes are read into a `QueryPart`, which encoder modality embeds it (None: an item's own
stored vectors), whether its words join the keyword channel, and how it is summarised for the
page and the API and named in explanations. `query.parse` builds parts from entries, the search
service encodes them by ``modality``, the page and the API list them. Adding a part type is one
entry here plus its widget in the page (static/multimodal/search.js).
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings

from ..errors import UserInputError
from ..models import Item
from ..readers.imaging import query_image_open
from ..readers.sniffing import MEDIA_HEAD_BYTES, is_audio, media_type

if TYPE_CHECKING:
    from .types import QueryPart

MAX_QUERY_TEXT_CHARS = 1000
ITEM_ID_RE = re.compile(r"[0-9]{1,19}")  # ASCII digits: "²" and "١" are digits to str.isdigit()
MEGABYTE = 1024 * 1024


class UploadTooLarge(UserInputError):
    """The file is over the size limit for its part type."""


@dataclass(frozen=True)
class PartType:
    """One kind of query part. Upload types read bytes (``read``), the others a JSON value (``parse``)."""

    name: str
    modality: str | None  # the encoder modality that embeds it; None: the item's own vectors
    summarise: Callable[[QueryPart, dict], None]  # adds the type's own fields to the part's summary
    label: Callable[[QueryPart], str]  # how explanations name the part
    chip: Callable[[dict], str]  # how the results page names the part, from its summary (a transcript is shown apart)
    parse: Callable[[object, str], dict] | None = None  # (value, where) -> QueryPart fields
    read: Callable[[bytes, str], dict] | None = None  # (bytes, file name) -> QueryPart fields
    noun: str = ""  # how messages name an upload: "image", "recording"
    limit_mb_setting: str = ""  # the setting holding an upload's size limit in MB
    spoken: bool = False  # transcribed to text before it is encoded
    keyword: bool = False  # its text joins the keyword channel and the highlighted words

    @property
    def upload(self) -> bool:
        return self.read is not None

    def limit_bytes(self) -> int:
        return getattr(settings, self.limit_mb_setting) * MEGABYTE

    def size_check(self, size: int) -> None:
        """Raise UploadTooLarge if an upload of ``size`` bytes is over this type's limit (before it is read)."""
        limit = self.limit_bytes()
        if size > limit:
            shown = f"{size / MEGABYTE:.1f} MB" if size >= MEGABYTE / 10 else f"{size:,} bytes"
            raise UploadTooLarge(f"the {self.noun} is {shown}; the limit is {limit // MEGABYTE} MB")


def _text_parse(value, where: str) -> dict:
    if not isinstance(value, str) or not value.strip():
        raise UserInputError(f"{where}: a text part needs a non-empty string value")
    if len(value) > MAX_QUERY_TEXT_CHARS:
        raise UserInputError(f"{where}: the text is over {MAX_QUERY_TEXT_CHARS} characters")
    return {"text": value.strip()}


def _item_parse(value, where: str) -> dict:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not ITEM_ID_RE.fullmatch(str(value)):
        raise UserInputError(f"{where}: an item part's value is an item id")
    return {"item": item_get(int(value), where=where)}


def item_get(item_id: int, *, where: str) -> Item:
    item = Item.objects.filter(pk=item_id).first()
    if item is None:
        raise UserInputError(f"{where}: no item with id {item_id}")
    return item


def _image_read(data: bytes, name: str) -> dict:
    return {"image": query_image_open(data, name=name)}


def _voice_read(data: bytes, name: str) -> dict:
    if not data:
        raise UserInputError(f"{name}: the file is empty")
    detected = media_type(data[:MEDIA_HEAD_BYTES])
    if detected and not is_audio(data[:MEDIA_HEAD_BYTES]):  # judged by its bytes: a photo named talk.webm too
        what = "an image" if detected[0].startswith("image/") else "a document"
        raise UserInputError(f"{name}: this is {what} ({detected[1].lstrip('.').upper()}), not a recording"
                             f"{': send it as image' if what == 'an image' else ''}")
    return {"audio": data}


def _text_summarise(part: QueryPart, out: dict) -> None:
    out["value"] = part.text


def _image_summarise(part: QueryPart, out: dict) -> None:
    out["value"] = out["name"] = part.name or "image"
    if part.image is not None:  # the picture's own size (a query image is decoded reduced)
        out["width"], out["height"] = part.image.info.get("source_size", part.image.size)


def _voice_summarise(part: QueryPart, out: dict) -> None:
    out["value"] = part.name or "voice"
    out["transcript"] = part.transcript


def _item_summarise(part: QueryPart, out: dict) -> None:
    if part.item is not None:
        out["value"] = part.item.pk
        out["title"] = part.item.title


def _quoted_label(part: QueryPart) -> str:
    return f'{part.type} "{part.text}"'


PARTS: dict[str, PartType] = {
    entry.name: entry
    for entry in (
        PartType("text", modality="text", parse=_text_parse, summarise=_text_summarise, label=_quoted_label,
                 chip=lambda summary: f"“{summary['value']}”", keyword=True),
        PartType("image", modality="image", read=_image_read, noun="image",
                 limit_mb_setting="MULTIMODAL_MAX_QUERY_IMAGE_MB", summarise=_image_summarise,
                 label=lambda part: f"image {part.name}".strip(), chip=lambda summary: f"image {summary['name']}"),
        PartType("voice", modality="text", read=_voice_read, noun="recording",
                 limit_mb_setting="MULTIMODAL_MAX_QUERY_AUDIO_MB", summarise=_voice_summarise,
                 label=_quoted_label, chip=lambda summary: "your recording", spoken=True, keyword=True),
        PartType("item", modality=None, parse=_item_parse, summarise=_item_summarise,
                 label=lambda part: f"item {part.item.pk}" if part.item is not None else "item",
                 chip=lambda summary: f"like “{summary.get('title', '')}”"),
    )
}
UPLOAD_TYPES = tuple(name for name, entry in PARTS.items() if entry.upload)
