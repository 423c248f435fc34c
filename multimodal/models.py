"""The database is the source of truth; Milvus only holds vectors keyed by item id."""
import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone


class Corpus(models.Model):
    name = models.SlugField(max_length=100, unique=True, help_text="Letters, digits, - and _.")
    description = models.TextField(blank=True)
    # Empty: everyone holding multimodal.add_item may upload here (see multimodal/web/permissions.py).
    uploaders = models.ManyToManyField(
        "auth.Group", blank=True, related_name="uploadable_corpora",
        help_text="If any are chosen, only members of these groups (and superusers) may upload into this corpus.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "corpora"

    def __str__(self) -> str:
        return self.name


class Item(models.Model):
    """A searchable thing; some own children (see ``parent``) and are searched through them."""

    class Kind(models.TextChoices):
        IMAGE = "image", "Image"
        TEXT = "text", "Text"
        PRODUCT = "product", "Product"
        AUDIO = "audio", "Audio recording"
        SEGMENT = "segment", "Audio segment"
        DOCUMENT = "document", "Document"
        PAGE = "page", "Document page"
        PASSAGE = "passage", "Passage"
        VIDEO = "video", "Video"
        SCENE = "scene", "Video scene"

    corpus = models.ForeignKey(Corpus, on_delete=models.CASCADE, related_name="items")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    title = models.CharField(max_length=300)
    text = models.TextField(blank=True)
    file = models.FileField(upload_to="items/", blank=True)
    thumbnail = models.FileField(upload_to="thumbnails/", blank=True)
    source_name = models.CharField(max_length=1000, blank=True, help_text="Where the item came from.")
    content_hash = models.CharField(max_length=64, help_text="SHA-256 of the source bytes.")
    external_id = models.CharField(
        max_length=200, blank=True, help_text="The row's own id (products): re-uploads update this item."
    )
    metadata = models.JSONField(default=dict, blank=True)
    # Children (a recording's segments, a video's scenes and segments, a document's pages and
    # passages, a long text's passages) belong to their parent and go with it. Timed children cover
    # [start_s, end_s) of it; a document's children name the 1-based page (or slide, or section) they are on.
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    start_s = models.FloatField(null=True, blank=True)
    end_s = models.FloatField(null=True, blank=True)
    page = models.PositiveIntegerField(null=True, blank=True, help_text="The page, slide or section it is on (1-based).")
    # Near duplicates (`multimodal.services.duplicates`): a picture's perceptual hash and brightness and a product
    # row's normalised-text digest (one column: every column more makes a batch's insert split sooner, SQLite
    # taking 999 values a statement), and the groups they put the item in. A group is named by the id of the item
    # that founded it (which may since have been deleted); None: the item is alone. All three are nullable (None:
    # none) because SQLite adds a nullable column in place, where a NOT NULL one makes it copy the whole table,
    # which also drops the keyword index's triggers (migration 0004).
    fingerprint = models.CharField(max_length=80, null=True, blank=True,
                                   help_text="Its picture's perceptual hash and brightness, a row's text digest.")
    same_group = models.BigIntegerField(null=True, blank=True, db_index=True,
                                        help_text="Copies of the same picture (or row) share this.")
    similar_group = models.BigIntegerField(null=True, blank=True, db_index=True,
                                           help_text="Similar shots (bursts, other angles) share this.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["corpus", "content_hash"], condition=models.Q(external_id=""),
                name="item_unique_content_per_corpus",
            ),
            models.UniqueConstraint(
                fields=["corpus", "external_id"], condition=~models.Q(external_id=""),
                name="item_unique_external_id_per_corpus",
            ),
        ]
        indexes = [
            models.Index(fields=["corpus", "kind"]),
            # Ingest finds a batch's existing products by (corpus, external_id). The unique index
            # above is partial (external_id <> ''), and SQLite only uses a partial index when the
            # query repeats its condition word for word, so without this one every lookup scanned
            # the whole corpus and ingest slowed down as the corpus grew.
            models.Index(fields=["corpus", "external_id"], name="item_corpus_external_id"),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.kind})"

    def get_absolute_url(self) -> str:
        return reverse("multimodal:item-detail", args=[self.pk])


# Kinds that own no vector and no keyword hit of their own: they are found through their children
# (a recording's segments; a video's scenes and segments; a document's pages and passages).
PARENT_KINDS = (Item.Kind.AUDIO, Item.Kind.VIDEO, Item.Kind.DOCUMENT)
# The kinds of each parent's children, which own the vectors a search for the parent's kind finds (a video's
# speech is segments, as a recording's; a long text's passages are passages, as a document's).
PART_KINDS = {
    Item.Kind.AUDIO: (Item.Kind.SEGMENT,),
    Item.Kind.VIDEO: (Item.Kind.SCENE, Item.Kind.SEGMENT),
    Item.Kind.DOCUMENT: (Item.Kind.PAGE, Item.Kind.PASSAGE),
}


def job_files_dir_new() -> str:
    """A job's own folder name: a random token, so an id reused after a rolled-back upload cannot collide."""
    return f"jobs/{secrets.token_hex(12)}"


class TrackedWork(models.Model):
    """Work a worker does in the background and a page follows: how far (``done`` of ``total``), why it
    failed, and when it was queued, started and finished. Each subclass declares its own ``status``."""

    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def processed(self) -> int:
        """Units dealt with so far, whatever their outcome."""
        return self.done

    @property
    def items_per_s(self) -> float | None:
        if not self.started_at or not self.processed:
            return None
        elapsed_s = ((self.finished_at or timezone.now()) - self.started_at).total_seconds()
        return self.processed / elapsed_s if elapsed_s > 0 else None


class IngestJob(TrackedWork):
    """One upload (or one ``ingest`` run): its inputs expand into units, each accounted for once."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    corpus = models.ForeignKey(Corpus, on_delete=models.CASCADE, related_name="jobs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    inputs = models.JSONField(default=list, help_text="[{name, path}] files to expand, as uploaded or given.")
    column_mapping = models.JSONField(default=dict, blank=True, help_text="Table role -> column header.")
    tables = models.JSONField(default=list, blank=True, help_text="[{name, headers, mapping, rows}] as read.")
    expanded = models.BooleanField(default=False)
    failed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, help_text="Why the whole job failed, if it did.")
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    files_dir = models.CharField(
        max_length=100, default=job_files_dir_new,
        help_text="Its upload copies and extracted archives, under MULTIMODAL_UPLOAD_ROOT (random: never reused).",
    )
    dispatched_at = models.DateTimeField(null=True, blank=True, help_text="When it was last handed to a worker.")
    expand_attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Runs that began reading its uploads and died before finishing (out of memory?).",
    )

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"job {self.pk} into {self.corpus}"

    def get_absolute_url(self) -> str:
        return reverse("multimodal:job-detail", args=[self.pk])

    @property
    def processed(self) -> int:
        return self.done + self.failed

    @property
    def seconds_left(self) -> float | None:
        rate = self.items_per_s
        if self.status == self.Status.DONE:
            return 0.0
        if not rate or not self.expanded or self.status not in self.ACTIVE:
            return None
        return max(self.total - self.processed, 0) / rate


class IngestUnit(models.Model):
    """One thing that becomes one item: a file, an archive entry or a table row."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    job = models.ForeignKey(IngestJob, on_delete=models.CASCADE, related_name="units")
    name = models.CharField(max_length=1000, help_text="As shown to people: file, archive/entry or table line.")
    path = models.CharField(max_length=1000, blank=True, help_text="The file to read; empty for rejected inputs.")
    row = models.JSONField(null=True, blank=True, help_text="A table row: title, description, specs, image.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    reason = models.TextField(blank=True)
    retryable = models.BooleanField(default=True, help_text="False for inputs rejected before reading.")
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Runs that began processing it and died before recording an outcome (out of memory?).",
    )
    item = models.ForeignKey(Item, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_item = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["job", "status"])]

    def __str__(self) -> str:
        return self.name


class ApiToken(models.Model):
    """A key that authenticates a program as its user (``Authorization: Bearer <key>``); only a hash is kept."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name or 'token'} for {self.user}"

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def issue(cls, *, user, name: str = "") -> tuple["ApiToken", str]:
        """A new token and its key; the key is shown once and never stored."""
        key = secrets.token_urlsafe(32)
        return cls.objects.create(user=user, name=name, key_hash=cls.hash_key(key)), key


class Adapter(TrackedWork):
    """A small head trained on a corpus's image-text pairs, over a frozen encoder (one version).

    Immutable once trained: its weights file (`learning.adaptation.AdapterWeights`), metrics and
    settings describe it for good. Versions count up per corpus. See `multimodal.services.adapter_training`.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    corpus = models.ForeignKey(Corpus, on_delete=models.CASCADE, related_name="adapters")
    version = models.PositiveIntegerField()
    encoder_name = models.CharField(max_length=500, help_text="The frozen encoder it adapts; useless with another.")
    dim = models.PositiveIntegerField(default=0)
    pairs_file = models.CharField(max_length=1000, blank=True, help_text="A JSONL of pairs; empty: the corpus's own.")
    hyperparameters = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    phase = models.CharField(max_length=32, blank=True, help_text="What it is doing now: reading pairs, training.")
    pairs = models.PositiveIntegerField(default=0)
    holdout_pairs = models.PositiveIntegerField(default=0)
    holdout_item_ids = models.JSONField(default=list, blank=True, help_text="Items whose pairs were held out.")
    metrics = models.JSONField(default=dict, blank=True, help_text="Held-out retrieval before and after training.")
    loss = models.FloatField(null=True, blank=True, help_text="Mean training loss of the last epoch.")
    weights_path = models.CharField(max_length=500, blank=True, help_text="Under MULTIMODAL_ADAPTER_ROOT.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["corpus", "-version"]
        constraints = [models.UniqueConstraint(fields=["corpus", "version"], name="adapter_unique_version_per_corpus")]

    def __str__(self) -> str:
        return f"{self.corpus} adapter v{self.version}"

    def get_absolute_url(self) -> str:
        return reverse("multimodal:adapter-detail", args=[self.pk])


class IndexBuild(TrackedWork):
    """A corpus's vectors passed through one adapter, in a Milvus collection of their own."""

    class Status(models.TextChoices):
        BUILDING = "building", "Building"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"
        RETIRED = "retired", "Retired (collection dropped)"

    corpus = models.ForeignKey(Corpus, on_delete=models.CASCADE, related_name="index_builds")
    adapter = models.ForeignKey(Adapter, on_delete=models.CASCADE, related_name="builds")
    encoder_name = models.CharField(max_length=500)
    collection_name = models.CharField(max_length=255, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.BUILDING)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.adapter} index build {self.pk} ({self.status})"


class CorpusIndex(models.Model):
    """Which vectors a corpus is searched with under one encoder: switching is one update of this row.

    ``live`` None means the encoder's own vectors. ``previous`` is where a rollback goes (None:
    the encoder's own) once ``switched_at`` says a switch happened.
    """

    corpus = models.ForeignKey(Corpus, on_delete=models.CASCADE, related_name="indexes")
    encoder_name = models.CharField(max_length=500)
    live = models.ForeignKey(IndexBuild, null=True, blank=True, on_delete=models.RESTRICT, related_name="+")
    previous = models.ForeignKey(IndexBuild, null=True, blank=True, on_delete=models.RESTRICT, related_name="+")
    switched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["corpus", "encoder_name"], name="corpus_index_unique_per_encoder")]

    def __str__(self) -> str:
        return f"{self.corpus} searched with {self.live or 'the base vectors'}"


class PendingVectorDeletion(models.Model):
    """Vectors that must go but could not, because the vector store was unavailable when their rows were deleted.

    Applied (and then removed) by the next successful store write, by ``check_store --repair`` and by
    its periodic run (`multimodal.services.store_sync`). Item ids are never reused, so deleting these
    items' vectors later is safe; ids that exist again (a restored backup) are skipped anyway.
    """

    collection = models.CharField(max_length=255, blank=True, help_text="Empty: every collection of ours.")
    item_ids = models.JSONField(default=list, blank=True, help_text="Items whose vectors to delete.")
    drop_collection = models.BooleanField(default=False, help_text="Drop the whole collection (an index build's).")
    created_at = models.DateTimeField(auto_now_add=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Tries that failed since it was queued.")
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        what = f"drop {self.collection}" if self.drop_collection else f"{len(self.item_ids)} items' vectors"
        return f"pending deletion: {what}"


def feed_token_new() -> str:
    return secrets.token_urlsafe(24)


class SavedSearch(models.Model):
    """A search someone named and keeps: its search page parameters, and who may see it.

    ``params`` are the search page's URL parameters (q, parts, filters, options: `web.search_links`), checked by
    `query_parse` when saved and again each time it runs (an item or corpus it names may have gone since).
    ``saved_after_item_id`` is the newest item when it was saved: its feed lists what came after. The feed's
    address holds ``feed_token`` (see `services.saved_searches`).
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_searches")
    name = models.CharField(max_length=100)
    params = models.JSONField(help_text="The search page's URL parameters.")
    shared = models.BooleanField(default=False, help_text="Listed for every signed-in user (set by staff).")
    saved_after_item_id = models.PositiveBigIntegerField(default=0, help_text="The newest item when it was saved.")
    feed_token = models.CharField(max_length=64, default=feed_token_new)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="saved_search_unique_name_per_owner")]

    def __str__(self) -> str:
        return f"{self.name} ({self.owner})"


class SavedSearchVisit(models.Model):
    """When one person last opened a saved search, and the newest item then: what came after is new to them.

    Item ids only grow and are never reused, so "id above the cut" is exactly "ingested after that visit",
    whatever the clocks of the web and worker machines say.
    """

    saved_search = models.ForeignKey(SavedSearch, on_delete=models.CASCADE, related_name="visits")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    opened_at = models.DateTimeField()
    seen_up_to_item_id = models.PositiveBigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["saved_search", "user"], name="saved_search_visit_unique")]

    def __str__(self) -> str:
        return f"{self.user} opened {self.saved_search.name} at {self.opened_at:%Y-%m-%d %H:%M}"
