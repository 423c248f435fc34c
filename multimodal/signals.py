"""Deleting an item (directly, or with its corpus) removes its vectors and files after commit."""
from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from . import store
from .models import Item


@receiver(post_delete, sender=Item)
def item_deleted(sender, instance: Item, **kwargs) -> None:
    item_id = instance.pk
    files = [field for field in (instance.file, instance.thumbnail) if field]

    def clean_up() -> None:
        store.items_delete_everywhere([item_id])
        for field in files:
            field.storage.delete(field.name)

    transaction.on_commit(clean_up)
