from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html

from . import store
from .encoders import EncoderLoadError
from .errors import UserInputError
from .learning.adaptation import TrainingConfig
from .models import Adapter, ApiToken, Corpus, IndexBuild, IngestJob, IngestUnit, Item, PendingVectorDeletion
from .services.adapter_activation import adapter_activate_start, index_describe, index_rollback
from .services.adapter_training import adapter_train_start
from .services.background import BrokerUnavailable
from .services.jobs import job_cancel, job_retry_failed
from .services.store_sync import store_check
from .web.permissions import CHANGE_JOB, job_may_change, job_may_view, jobs_visible, may_upload


@admin.register(Corpus)
class CorpusAdmin(admin.ModelAdmin):
    list_display = ("name", "item_count", "searched_in", "created_at", "upload_link")
    search_fields = ("name", "description")
    filter_horizontal = ("uploaders",)
    actions = ["train_adapter", "roll_back_index", "check_vectors"]

    @admin.display(description="searched in")
    def searched_in(self, corpus: Corpus) -> str:
        # From the rows alone: asking which encoder is configured would load the model for a list page.
        live = [str(index.live.adapter) for index in corpus.indexes.all() if index.live]
        return ", ".join(live) or "base vectors"

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(item_count=Count("items")).prefetch_related("indexes__live__adapter")

    def has_train_adapter_permission(self, request) -> bool:
        return request.user.has_perm("multimodal.add_adapter")

    @admin.action(description="Train an adapter on each selected corpus's pairs (background job)",
                  permissions=["train_adapter"])
    def train_adapter(self, request, queryset):
        for corpus in queryset:
            try:
                adapter = adapter_train_start(corpus=corpus, config=TrainingConfig(), holdout=0.2, user=request.user)
            except EncoderLoadError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return
            self.message_user(request, format_html('Training <a href="{}">{}</a>.', adapter.get_absolute_url(), adapter),
                              messages.INFO)

    @admin.action(description="Roll back the search index of each selected corpus", permissions=["change"])
    def roll_back_index(self, request, queryset):
        for corpus in queryset:
            try:
                index_rollback(corpus=corpus)
            except (UserInputError, EncoderLoadError) as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, f"Corpus '{corpus}' is now searched in {index_describe(corpus)['live']}.",
                                  messages.INFO)

    @admin.action(description="Check and repair vectors of the selected corpora (and apply queued deletions)",
                  permissions=["change"])
    def check_vectors(self, request, queryset):
        try:
            drift = store_check(repair=True, corpora=list(queryset))
        except (store.StoreUnavailable, EncoderLoadError) as exc:
            self.message_user(request, f"Nothing was checked: {exc}", messages.ERROR)
            return
        level = messages.SUCCESS if drift.in_step else messages.WARNING
        self.message_user(request, f"Vectors of {', '.join(str(corpus) for corpus in queryset)}: {drift.summary()}.",
                          level)
        for failure in drift.failures[:20]:
            self.message_user(request, f"Not re-embedded: {failure.name}: {failure.reason}", messages.WARNING)

    @admin.display(description="")
    def upload_link(self, corpus: Corpus) -> str:
        return format_html('<a href="{}?corpus={}">Upload files</a>', reverse("multimodal:upload"), corpus.name)

    @admin.display(ordering="item_count", description="items")
    def item_count(self, corpus: Corpus) -> int:
        return corpus.item_count


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ("id", "preview", "title", "kind", "part_of", "corpus", "created_at")
    list_display_links = ("id", "title")
    list_filter = ("kind", "corpus")
    list_select_related = ("corpus", "parent")
    search_fields = ("title", "text", "source_name")
    readonly_fields = ("preview", "part_of", "page", "start_s", "end_s", "content_hash", "source_name", "file",
                       "thumbnail", "metadata", "created_at", "updated_at")
    fields = ("corpus", "kind", "title", "text", "preview", "part_of", "page", "start_s", "end_s", "file", "thumbnail",
              "source_name", "content_hash", "metadata", "created_at", "updated_at")

    @admin.display(description="part of")
    def part_of(self, item: Item) -> str:
        """The document, video, recording or text a page, passage, scene or segment belongs to."""
        if item.parent_id is None:
            return "—"
        where = f"page {item.page}" if item.page else ""
        if item.start_s is not None:
            where = f"{item.start_s:.1f}–{item.end_s:.1f} s"
        url = reverse("admin:multimodal_item_change", args=[item.parent_id])
        return format_html('<a href="{}">{}</a> {}', url, item.parent.title, where)

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
    """Jobs as multimodal/web/permissions.py says: everyone who may upload sees and retries their own jobs;
    view_ingestjob / change_ingestjob extend that to every user's."""

    list_display = ("id", "corpus", "status", "total", "done", "failed", "created_by", "created_at", "page_link")
    list_filter = ("status", "corpus")
    readonly_fields = ("corpus", "created_by", "status", "total", "done", "failed", "error", "tables",
                       "created_at", "started_at", "finished_at", "page_link")
    exclude = ("inputs", "column_mapping", "expanded", "lease_owner", "lease_expires_at")
    inlines = [IngestUnitInline]
    actions = ["retry_failed", "cancel"]

    def has_add_permission(self, request) -> bool:
        return False  # jobs come from uploads

    def get_queryset(self, request):
        return jobs_visible(request.user, super().get_queryset(request))

    def has_view_permission(self, request, obj=None) -> bool:
        if obj is not None:
            return job_may_view(request.user, obj)
        return super().has_view_permission(request) or may_upload(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None:
            return job_may_change(request.user, obj)
        return super().has_change_permission(request) or may_upload(request.user)

    @admin.display(description="progress page")
    def page_link(self, job: IngestJob) -> str:
        return format_html('<a href="{}">Open</a>', job.get_absolute_url())

    @admin.action(description="Retry failed files of the selected jobs", permissions=["change"])
    def retry_failed(self, request, queryset):
        allowed = [job for job in queryset if job_may_change(request.user, job)]
        try:
            count = sum(job_retry_failed(job=job) for job in allowed)
        except BrokerUnavailable as exc:
            self.message_user(request, f"Nothing more was retried: {exc}.", messages.ERROR)
            return
        self.message_user(request, f"{count} failed files queued again.", messages.INFO)
        if len(allowed) < len(queryset):
            self.message_user(request, f"{len(queryset) - len(allowed)} jobs of other users were left alone: "
                                       f"retrying them needs the permission '{CHANGE_JOB}'.", messages.WARNING)

    @admin.action(description="Cancel the selected jobs", permissions=["change"])
    def cancel(self, request, queryset):
        allowed = [job for job in queryset if job_may_change(request.user, job)]
        count = sum(job_cancel(job=job) for job in allowed)
        self.message_user(request, f"{count} jobs cancelled (finished ones are left as they are).", messages.INFO)
        if len(allowed) < len(queryset):
            self.message_user(request, f"{len(queryset) - len(allowed)} jobs of other users were left alone: "
                                       f"cancelling them needs the permission '{CHANGE_JOB}'.", messages.WARNING)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Keys are shown once, at issue. Only superusers issue keys for other users: a key acts as its user."""

    list_display = ("name", "user", "created_at", "last_used_at")
    fields = ("user", "name")

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request)  # a token is issued or deleted, never edited

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user" and not request.user.is_superuser:
            kwargs["queryset"] = get_user_model().objects.filter(pk=request.user.pk)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        token, key = ApiToken.issue(user=obj.user, name=obj.name)
        obj.pk = token.pk
        self.message_user(request, f"API key (shown once, copy it now): {key}", messages.WARNING)


@admin.register(Adapter)
class AdapterAdmin(admin.ModelAdmin):
    list_display = ("__str__", "status", "progress", "recall_at_1", "pairs", "encoder_name", "created_at", "page_link")
    list_filter = ("status", "corpus")
    readonly_fields = ("corpus", "version", "encoder_name", "dim", "pairs_file", "hyperparameters", "status", "phase",
                       "done", "total", "pairs", "holdout_pairs", "metrics", "loss", "weights_path", "error",
                       "created_by", "created_at", "started_at", "finished_at", "page_link")
    exclude = ("holdout_item_ids",)
    actions = ["activate"]

    def has_add_permission(self, request) -> bool:
        return False  # adapters come from training (the corpus list's action, or train_adapter)

    @admin.display(description="progress")
    def progress(self, adapter: Adapter) -> str:
        return f"{adapter.phase} {adapter.done}/{adapter.total}" if adapter.phase else "—"

    @admin.display(description="held-out R@1 before → after")
    def recall_at_1(self, adapter: Adapter) -> str:
        before, after = (adapter.metrics.get(when, {}).get("text_to_image", {}) for when in ("before", "after"))
        return f"{before['recall@1']:.3f} → {after['recall@1']:.3f}" if before and after else "—"

    @admin.display(description="page")
    def page_link(self, adapter: Adapter) -> str:
        return format_html('<a href="{}">Open</a>', adapter.get_absolute_url())

    @admin.action(description="Activate on its corpus (re-embed in the background, then switch)",
                  permissions=["change"])
    def activate(self, request, queryset):
        for adapter in queryset:
            try:
                adapter_activate_start(adapter=adapter)
            except (UserInputError, EncoderLoadError) as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, format_html('Activating <a href="{}">{}</a>.', adapter.get_absolute_url(),
                                                       adapter), messages.INFO)


@admin.register(IndexBuild)
class IndexBuildAdmin(admin.ModelAdmin):
    list_display = ("id", "corpus", "adapter", "status", "done", "total", "created_at", "finished_at")
    list_filter = ("status", "corpus")
    readonly_fields = ("corpus", "adapter", "encoder_name", "collection_name", "status", "done", "total", "error",
                       "created_at", "started_at", "finished_at")

    def has_add_permission(self, request) -> bool:
        return False  # builds come from activating an adapter


@admin.register(PendingVectorDeletion)
class PendingVectorDeletionAdmin(admin.ModelAdmin):
    """Deletions the vector store could not take while it was down; they go by themselves once it is back."""

    list_display = ("id", "__str__", "collection", "created_at", "attempts", "last_error")
    readonly_fields = ("collection", "item_ids", "drop_collection", "created_at", "attempts", "last_error")

    def has_add_permission(self, request) -> bool:
        return False  # queued by deletions that the store refused

    def has_change_permission(self, request, obj=None) -> bool:
        return False
