from django.contrib import admin
from django.db.models import Count
from django.utils.html import format_html

from .models import Corpus, Item


@admin.register(Corpus)
class CorpusAdmin(admin.ModelAdmin):
    list_display = ("name", "item_count", "created_at")
    search_fields = ("name", "description")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(item_count=Count("items"))

    @admin.display(ordering="item_count", description="items")
    def item_count(self, corpus: Corpus) -> int:
        return corpus.item_count


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ("id", "preview", "title", "kind", "corpus", "created_at")
    list_display_links = ("id", "title")
    list_filter = ("kind", "corpus")
    search_fields = ("title", "text", "source_name")
    readonly_fields = ("preview", "content_hash", "source_name", "file", "thumbnail", "metadata", "created_at", "updated_at")
    fields = ("corpus", "kind", "title", "text", "preview", "file", "thumbnail", "source_name", "content_hash", "metadata", "created_at", "updated_at")

    @admin.display(description="preview")
    def preview(self, item: Item) -> str:
        if not item.thumbnail:
            return "—"
        return format_html('<img src="{}" alt="" style="max-height:64px">', item.thumbnail.url)
