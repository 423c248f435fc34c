"""Near-duplicate groups, at two levels, kept up to date as items are ingested.

- **same**: copies of one picture (resized, recompressed, cropped a little, turned a few degrees) or one
  product row (typed differently). Pictures: their perceptual hashes differ in at most
  ``MULTIMODAL_DUPLICATE_SAME_BITS`` of 128 bits and they are as bright (`retrieval.near_duplicates`),
  confirmed by a CLIP cosine of at least ``MULTIMODAL_DUPLICATE_SAME_COSINE`` (a lenient cut: the hash
  decides, CLIP only vetoes two unlike pictures whose hashes happen to be close). Product rows: the same
  normalised text, and the same picture when they have one.
- **similar**: other shots of a scene (a burst, another angle or exposure), and rows about the same
  thing: an item's nearest CLIP neighbour of the same kind and corpus at
  ``MULTIMODAL_DUPLICATE_SIMILAR_COSINE`` or more. Copies are similar too.

An item joins the group of its best match (the copy whose hash is closest, else the nearest neighbour),
and takes its matches that are alone along; matched only with items that are alone, they found a group
named by the lowest id. Groups are never merged, so a chain of loosely alike items does not swallow a corpus. Group names are plain ids
(`Item.same_group`, `Item.similar_group`), not links: deleting an item, even a group's founder, leaves
the others grouped, and search folds a group with one dictionary lookup per result.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Count

from .. import encoders, store
from ..errors import UserInputError
from ..models import Corpus, Item
from ..readers.imaging import image_open
from ..retrieval.near_duplicates import (
    SAME_BRIGHTNESS_TOLERANCE, PictureFingerprint, fingerprint_decode, fingerprint_encode, picture_fingerprint,
    product_fingerprint,
)
from ..row_updates import rows_update

logger = logging.getLogger(__name__)

FINGERPRINTED_KINDS = (Item.Kind.IMAGE, Item.Kind.PRODUCT)
LEVELS = ("same", "similar")
GROUP_FIELDS = {"same": "same_group", "similar": "similar_group"}
FINGERPRINT_FIELDS = ["fingerprint"]
# Nearest neighbours read for each item when looking for its similar shots: the best one decides.
SIMILAR_NEIGHBOURS = 5


def fingerprint_fields(*, kind: str, image=None, title: str = "", description: str = "",
                       specs: dict | None = None, specs_text: str = "") -> dict:
    """The fingerprint field of an item (`Item.fingerprint`): its picture's, and a product's text.

    None of them with MULTIMODAL_DUPLICATES off: `duplicates_find` then takes the item up when it is turned on.
    """
    if kind not in FINGERPRINTED_KINDS or not settings.MULTIMODAL_DUPLICATES:
        return {"fingerprint": None}
    text = None
    if kind == Item.Kind.PRODUCT:
        text = product_fingerprint(title=title, description=description, specs=specs or {}, specs_text=specs_text)
    picture = picture_fingerprint(image) if image is not None else None
    return {"fingerprint": fingerprint_encode(picture=picture, text=text)}


@dataclass
class _Peer:
    pk: int
    perceptual_hash: str | None
    brightness: int | None
    text_fingerprint: str | None
    same_group: int | None
    similar_group: int | None

    @property
    def picture(self) -> PictureFingerprint | None:
        """Its picture's fingerprint; None without one, or a flat one (nothing to compare: rows are then compared
        by their text alone)."""
        return PictureFingerprint(self.perceptual_hash, self.brightness or 0) if self.perceptual_hash else None


class _Peers:
    """The fingerprinted items of one corpus and kind, with their hashes as two arrays of 64-bit halves."""

    def __init__(self, corpus_id: int, kind: str):
        rows = (Item.objects.filter(corpus_id=corpus_id, kind=kind, parent=None)
                .exclude(fingerprint=None).order_by("pk")
                .values_list("pk", "fingerprint", "same_group", "similar_group"))
        self.peers = []
        for pk, fingerprint, same_group, similar_group in rows:
            picture, text = fingerprint_decode(fingerprint)
            self.peers.append(_Peer(pk, picture.perceptual_hash if picture else None,
                                    picture.brightness if picture else None, text, same_group, similar_group))
        self.by_pk = {peer.pk: peer for peer in self.peers}
        self.by_text: dict[str, list[_Peer]] = {}
        for peer in self.peers:
            if peer.text_fingerprint:
                self.by_text.setdefault(peer.text_fingerprint, []).append(peer)
        hashed = [peer for peer in self.peers if peer.perceptual_hash]
        self.hashed = hashed
        self.high = np.array([int(peer.perceptual_hash[:16], 16) for peer in hashed], dtype=np.uint64)
        self.low = np.array([int(peer.perceptual_hash[16:], 16) for peer in hashed], dtype=np.uint64)
        self.brightness = np.array([peer.brightness or 0 for peer in hashed], dtype=np.int64)

    def same_pictures(self, item: _Peer, *, max_bits: int) -> list[_Peer]:
        """The other items whose picture is a copy of ``item``'s, closest first (one numpy pass)."""
        if not item.perceptual_hash or not self.hashed:
            return []
        high, low = int(item.perceptual_hash[:16], 16), int(item.perceptual_hash[16:], 16)
        bits = (np.bitwise_count(self.high ^ np.uint64(high)) + np.bitwise_count(self.low ^ np.uint64(low))).astype(int)
        close = np.flatnonzero((bits <= max_bits) & (np.abs(self.brightness - (item.brightness or 0))
                                                     <= SAME_BRIGHTNESS_TOLERANCE))
        return [self.hashed[index] for index in sorted(close, key=lambda index: (bits[index], self.hashed[index].pk))
                if self.hashed[index].pk != item.pk]


def duplicates_assign(*, items: list[Item], vectors: dict[int, dict[str, np.ndarray]]) -> None:
    """Put each of ``items`` (saved, fingerprinted, their ``vectors`` {id: {modality: vector}} written to the
    store) in its same-picture and similar-shot groups, in id order; items of other kinds are left alone."""
    if not settings.MULTIMODAL_DUPLICATES:
        return
    wanted = sorted((item for item in items if item.kind in FINGERPRINTED_KINDS and item.parent_id is None
                     and item.pk in vectors), key=lambda item: item.pk)
    by_place: dict[tuple[int, str], list[Item]] = {}
    for item in wanted:
        by_place.setdefault((item.corpus_id, item.kind), []).append(item)
    for (corpus_id, kind), group in by_place.items():
        _place_assign(corpus_id, kind, group, vectors)


def _place_assign(corpus_id: int, kind: str, items: list[Item], vectors: dict[int, dict[str, np.ndarray]]) -> None:
    peers = _Peers(corpus_id, kind)
    changed: dict[int, _Peer] = {}
    copies = {item.pk: _copies(peers, peers.by_pk[item.pk]) for item in items if item.pk in peers.by_pk}
    modality = "image" if kind == Item.Kind.IMAGE else "text"
    encoder = encoders.get()
    collection = store.collection_for(encoder)
    stored = collection.vectors({peer.pk for found in copies.values() for peer in found}) if kind == Item.Kind.IMAGE else {}
    for item in items:
        me = peers.by_pk.get(item.pk)
        own = vectors[item.pk].get(modality)
        if me is None or own is None:
            continue
        same = [peer for peer in copies.get(item.pk, []) if kind != Item.Kind.IMAGE or _cosine(
            own, stored.get(peer.pk, {}).get(modality)) >= settings.MULTIMODAL_DUPLICATE_SAME_COSINE]
        _join(me, same, "same_group", changed)
        similar = same or _neighbours(collection, own, corpus_id=corpus_id, kind=kind, modality=modality,
                                      peers=peers, exclude=me.pk)
        _join(me, similar, "similar_group", changed)
    rows_update([Item(pk=peer.pk, same_group=peer.same_group, similar_group=peer.similar_group)
                 for peer in changed.values()], ["same_group", "similar_group"])


def _copies(peers: _Peers, me: _Peer) -> list[_Peer]:
    """The items that are copies of ``me``: pictures by hash, product rows by text (and picture, if any)."""
    if me.text_fingerprint:
        return [peer for peer in peers.by_text[me.text_fingerprint]
                if peer.pk != me.pk and _same_pictures_or_none(me.picture, peer.picture)]
    return peers.same_pictures(me, max_bits=settings.MULTIMODAL_DUPLICATE_SAME_BITS)


def _same_pictures_or_none(first: PictureFingerprint | None, second: PictureFingerprint | None) -> bool:
    if first is None or second is None:
        return first is None and second is None
    return first.same_picture_as(second, max_bits=settings.MULTIMODAL_DUPLICATE_SAME_BITS)


def _cosine(first: np.ndarray, second: np.ndarray | None) -> float:
    return -1.0 if second is None else float(np.dot(first, second))


def _neighbours(collection, vector: np.ndarray, *, corpus_id: int, kind: str, modality: str, peers: _Peers,
                exclude: int) -> list[_Peer]:
    """The nearest items of the same corpus and kind at the similar-shot cosine or closer, nearest first."""
    where = store.VectorFilter(corpus_ids=[corpus_id], kinds=[kind], modalities=[modality], exclude_item_ids=[exclude])
    return [peers.by_pk[hit.item_id] for hit in collection.search(vector, limit=SIMILAR_NEIGHBOURS, where=where)
            if hit.score >= settings.MULTIMODAL_DUPLICATE_SIMILAR_COSINE and hit.item_id in peers.by_pk]


def _join(me: _Peer, matches: list[_Peer], field: str, changed: dict[int, _Peer]) -> None:
    """``me`` joins the group of its best match that has one (so the copies of a picture, each closest to
    another of them, end in one group), else founds one named by the lowest id among it and its matches; its
    matches that are in no group join too (an item ingested before its copies is grouped when they come).
    Without matches it is alone."""
    if not matches:
        group = None
    else:
        grouped = next((peer for peer in matches if getattr(peer, field) is not None), None)
        group = getattr(grouped, field) if grouped else min(me.pk, *(peer.pk for peer in matches))
        for peer in matches:
            if getattr(peer, field) is None:
                setattr(peer, field, group)
                changed[peer.pk] = peer
    if getattr(me, field) != group:
        setattr(me, field, group)
        changed[me.pk] = me


def duplicates_find(*, corpora: list[Corpus] | None = None, recompute: bool = False,
                    on_progress: Callable[[int, int], None] | None = None, batch_size: int = 256) -> int:
    """Fingerprint and group the pictures and product rows that are not yet (all of them with ``recompute``,
    their groups made again from scratch), in id order, as ingest would have; returns how many were processed.

    For items ingested before fingerprints existed. Pictures are read from their kept files, vectors from
    the store (an item without one is fingerprinted but not grouped).
    """
    items = Item.objects.filter(kind__in=FINGERPRINTED_KINDS, parent=None)
    if corpora is not None:
        items = items.filter(corpus__in=corpora)
    if recompute:
        items.update(same_group=None, similar_group=None)
    else:
        items = items.filter(fingerprint=None)
    pending = list(items.order_by("pk").values_list("pk", flat=True))
    collection = store.collection_for(encoders.get())
    for start in range(0, len(pending), batch_size):
        batch = list(Item.objects.filter(pk__in=pending[start:start + batch_size]).order_by("pk"))
        for item in batch:
            for name, value in _stored_fingerprint(item).items():
                setattr(item, name, value)
        rows_update(batch, FINGERPRINT_FIELDS)
        duplicates_assign(items=batch, vectors=collection.vectors([item.pk for item in batch]))
        if on_progress:
            on_progress(min(start + batch_size, len(pending)), len(pending))
    return len(pending)


def _stored_fingerprint(item: Item) -> dict:
    """The fingerprint fields of a stored item, its picture read from its kept file (none if unreadable)."""
    image = None
    if item.file:
        try:
            with item.file.open("rb") as handle:
                image = image_open(handle.read(), name=item.file.name)
        except Exception as exc:  # a missing or damaged file: the item keeps a text fingerprint only
            logger.warning("item %s: its picture could not be read (%s)", item.pk, exc)
    return fingerprint_fields(kind=item.kind, image=image, title=item.title, description=item.text,
                              specs=item.metadata.get("specs") or {}, specs_text=item.metadata.get("specs_text", ""))


@dataclass
class DuplicateGroup:
    level: str
    key: int
    items: list[Item]  # the member to keep first: the largest picture, then the oldest


def duplicate_groups(*, level: str, corpus: Corpus | None = None, limit: int = 50) -> tuple[list[DuplicateGroup], int]:
    """The groups of ``level`` with two members or more, biggest first (then newest), and how many there are."""
    field = GROUP_FIELDS[level]
    items = Item.objects.filter(parent=None, **{f"{field}__isnull": False})
    if corpus is not None:
        items = items.filter(corpus=corpus)
    sizes = (items.values(field).annotate(size=Count("pk")).filter(size__gt=1).order_by("-size", f"-{field}"))
    total = sizes.count()
    keys = [row[field] for row in sizes[:limit]]
    members: dict[int, list[Item]] = {key: [] for key in keys}
    for item in items.filter(**{f"{field}__in": keys}).select_related("corpus").order_by("pk"):
        members[getattr(item, field)].append(item)
    for group in members.values():
        group.sort(key=lambda item: (-_pixels(item), item.pk))
    return [DuplicateGroup(level, key, members[key]) for key in keys], total


def _pixels(item: Item) -> int:
    return int(item.metadata.get("width") or 0) * int(item.metadata.get("height") or 0)


def duplicate_group_resolve(*, level: str, key: int, keep: list[int]) -> int:
    """Delete the members of group ``key`` of ``level`` that are not in ``keep``; returns how many went.

    Their vectors (in every collection) and files go too, once the deletion commits (`multimodal.signals`).
    At least one member must be kept: a group is resolved, not emptied by a mistaken click.
    """
    field = GROUP_FIELDS[level]
    members = Item.objects.filter(parent=None, **{field: key})
    if not members.filter(pk__in=keep).exists():
        raise UserInputError("keep at least one of the group")
    with transaction.atomic():
        deleted = list(members.exclude(pk__in=keep))
        for item in deleted:
            item.delete()
    return len(deleted)
