from django.contrib import admin, messages
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html

from .models import ApiToken, Corpus, IngestJob, IngestUnit, Item
from .services.jobs import job_retry_failed


@admin.register(Corpus)
class CorpusAdmin(admin.ModelAdmin):
    list_display = ("name", "item_count", "created_at", "upload_link")
    search_fields = ("name", "description")

    @admin.display(description="")
    def upload_link(self, corpus: Corpus) -> str:
        return format_html('<a href="{}?corpus={}">Upload files</a>', reverse("multimodal:upload"), corpus.name)

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


class IngestUnitInline(admin.TabularInline):
    model = IngestUnit
    fields = ("name", "status", "reason", "item")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    max_num = 0

    def get_queryset(self, request):
        # The failures are what an admin comes here for; done units are counted on the job.
        return super().get_queryset(request).filter(status=IngestUnit.Status.FAILED)


@admin.register(IngestJob)
class IngestJobAdmin(admin.ModelAdmin):
    list_display = ("id", "corpus", "status", "total", "done", "failed", "created_by", "created_at", "page_link")
    list_filter = ("status", "corpus")
    readonly_fields = ("corpus", "created_by", "status", "total", "done", "failed", "error", "tables",
                       "created_at", "started_at", "finished_at", "page_link")
    exclude = ("inputs", "column_mapping", "expanded", "lease_owner", "lease_expires_at")
    inlines = [IngestUnitInline]
    actions = ["retry_failed"]

    def has_add_permission(self, request) -> bool:
        return False  # jobs come from uploads

    @admin.display(description="progress page")
    def page_link(self, job: IngestJob) -> str:
        return format_html('<a href="{}">Open</a>', job.get_absolute_url())

    @admin.action(description="Retry failed files of the selected jobs")
    def retry_failed(self, request, queryset):
        count = sum(job_retry_failed(job=job) for job in queryset)
        self.message_user(request, f"{count} failed files queued again.", messages.INFO)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "created_at", "last_used_at")
    fields = ("user", "name")

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None

    def save_model(self, request, obj, form, change):
        token, key = ApiToken.issue(user=obj.user, name=obj.name)
        obj.pk = token.pk
        self.message_user(request, f"API key (shown once, copy it now): {key}", messages.WARNING)
