"""Deleting an item (directly, or with its corpus) removes its vectors and files after commit.

Deletions are gathered per transaction (per savepoint) and sent to Milvus as one batch when it
commits: deleting a corpus of 10,000 items is one vector delete per collection, not 10,000. A batch
whose savepoint or transaction rolls back is dropped with it, so nothing that still exists loses
its vectors. When the vector store is unavailable, the vector deletions are queued and applied once
it is back (`services.vectors`); the files go at once either way.
"""
import threading
from functools import partial

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from .models import IndexBuild, Item
from .services.vectors import collection_drop_or_queue, vectors_delete_or_queue

_current = threading.local()


class _DeletedItems:
    def __init__(self):
        self.item_ids: list[int] = []
        self.files = []
        self.cleaned = False

    def add(self, item: Item) -> None:
        self.item_ids.append(item.pk)
        self.files += [field for field in (item.file, item.thumbnail) if field]

    def clean_up(self) -> None:
        self.cleaned = True
        vectors_delete_or_queue(item_ids=self.item_ids)
        for field in self.files:
            field.storage.delete(field.name)


@receiver(post_delete, sender=Item)
def item_deleted(sender, instance: Item, using: str, **kwargs) -> None:
    connection = transaction.get_connection(using)
    batch = getattr(_current, "batch", None)
    savepoints = set(connection.savepoint_ids)
    # Reused only while its callback waits for this transaction (tests may run callbacks early).
    if batch is not None and not batch.cleaned and any(
        callback == batch.clean_up and registered_in == savepoints
        for registered_in, callback, _ in connection.run_on_commit
    ):
        batch.add(instance)
        return
    batch = _current.batch = _DeletedItems()
    batch.add(instance)  # before registering: outside a transaction the callback runs at once
    transaction.on_commit(batch.clean_up, using=using)


@receiver(post_delete, sender=IndexBuild)
def index_build_deleted(sender, instance: IndexBuild, using: str, **kwargs) -> None:
    """A build deleted (with its adapter or its corpus) takes its collection with it."""
    transaction.on_commit(partial(collection_drop_or_queue, name=instance.collection_name), using=using)
