"""Image-text pairs a corpus already holds, and items named in files people write.

Adapter training (`services.adapter_training`) and evaluation (`services.evaluation`) read both:

- `corpus_pairs`: products with an image (their text <-> their image: the CSV rows of a knowledge
  base) and images with a caption file of the same name beside them (``photos/dog.jpg`` +
  ``photos/dog.txt``; a caption file of several lines is several captions of one image, as in
  Flickr30k and COCO).
- `ItemResolver`: an item named by its id, or by a string: its source name, its row id (external
  id), or a file's base name (the uploaded file's, or a product row's image column).
- `jsonl_read`: one JSON object per line; every problem names the file and the line.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

from ..errors import UserInputError
from ..models import Corpus, Item
from .embedding import product_text


@dataclass(frozen=True)
class CorpusPair:
    image_item_id: int
    text: str  # what the pair's text vector is made from
    text_item_id: int | None  # an item whose stored text vector is exactly ``text``'s, when there is one
    query: str  # how a person would ask for the image: a product's description, a caption

    @property
    def asked_differently(self) -> bool:
        """People ask for the image in other words than the indexed ones (a description, not title + specs)."""
        return bool(self.query) and self.query != self.text


def corpus_pairs(corpus: Corpus) -> list[CorpusPair]:
    """Every image-text pair in ``corpus``: products with an image, then captioned images."""
    pairs = []
    for item in corpus.items.filter(kind=Item.Kind.PRODUCT).exclude(file="").order_by("pk"):
        specs = item.metadata.get("specs") or {}
        text = product_text(item.title, item.text, specs, item.metadata.get("specs_text", ""))
        pairs.append(CorpusPair(item.pk, text, item.pk, item.text or item.title))
    images = {
        _stem(source_name): pk
        for pk, source_name in corpus.items.filter(kind=Item.Kind.IMAGE).values_list("pk", "source_name")
    }
    captions = corpus.items.filter(kind=Item.Kind.TEXT).order_by("pk").values_list("pk", "source_name", "text")
    for pk, source_name, text in captions:
        image_id = images.get(_stem(source_name))
        if image_id is None:
            continue
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        for line in lines:
            pairs.append(CorpusPair(image_id, line, pk if len(lines) == 1 else None, line))
    return pairs


def _stem(source_name: str) -> str:
    return str(PurePosixPath(source_name.replace("\\", "/")).with_suffix(""))


def jsonl_read(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for every non-blank line of ``path``; raises UserInputError naming the line."""
    try:
        handle = open(path, encoding="utf-8")
    except OSError as exc:
        raise UserInputError(f"{path}: {exc.strerror or exc}") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserInputError(f"{path} line {number}: not valid JSON ({exc.msg})") from None
            if not isinstance(value, dict):
                raise UserInputError(f"{path} line {number}: must be a JSON object")
            yield number, value


def file_beside(base: Path, value, *, where: str, what: str) -> Path:
    """A path written in a file, relative to that file's folder; it must be a readable file."""
    if not isinstance(value, str) or not value.strip():
        raise UserInputError(f"{where}: {what} must be a file path")
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise UserInputError(f"{where}: {what} '{value}' is not a file ({path})")
    return path


class ItemResolver:
    """Items named by id or by name, within some corpora (None: all)."""

    def __init__(self, corpora: list[Corpus] | None = None):
        self.corpora = corpora
        self._names: dict[str, dict[str, list[int]]] | None = None

    def _items(self):
        items = Item.objects.all()
        return items.filter(corpus__in=self.corpora) if self.corpora else items

    def _scope(self) -> str:
        return f" in corpus {', '.join(corpus.name for corpus in self.corpora)}" if self.corpora else ""

    def resolve(self, reference, *, where: str) -> int:
        """The id of the item ``reference`` names; raises UserInputError naming ``where`` otherwise."""
        if isinstance(reference, int) and not isinstance(reference, bool):
            if not self._items().filter(pk=reference).exists():
                raise UserInputError(f"{where}: no item with id {reference}{self._scope()}")
            return reference
        if not isinstance(reference, str) or not reference.strip():
            raise UserInputError(f"{where}: an item is named by its id (a number) or a file name (a string)")
        names = self._name_maps()
        for kind in ("source", "external_id", "basename"):
            found = names[kind].get(reference.strip(), [])
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise UserInputError(f"{where}: '{reference}' names {len(found)} items{self._scope()} "
                                     f"(ids {', '.join(map(str, sorted(found)[:5]))}); use an id")
        raise UserInputError(f"{where}: no item named '{reference}'{self._scope()}")

    def _name_maps(self) -> dict[str, dict[str, list[int]]]:
        if self._names is None:
            names: dict[str, dict[str, list[int]]] = {"source": {}, "external_id": {}, "basename": {}}
            for pk, source_name, external_id, metadata in self._items().values_list(
                "pk", "source_name", "external_id", "metadata"
            ):
                names["source"].setdefault(source_name, []).append(pk)
                if external_id:
                    names["external_id"].setdefault(external_id, []).append(pk)
                basenames = {PurePosixPath(source_name.replace("\\", "/")).name}
                if (metadata or {}).get("image"):
                    basenames.add(PurePosixPath(str(metadata["image"]).replace("\\", "/")).name)
                for basename in basenames - {""}:
                    names["basename"].setdefault(basename, []).append(pk)
            self._names = names
        return self._names
