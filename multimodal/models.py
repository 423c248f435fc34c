"""The database is the source of truth; Milvus only holds vectors keyed by item id."""
from django.db import models
from django.urls import reverse


class Corpus(models.Model):
    name = models.SlugField(max_length=100, unique=True, help_text="Letters, digits, - and _.")
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "corpora"

    def __str__(self) -> str:
        return self.name


class Item(models.Model):
    class Kind(models.TextChoices):
        IMAGE = "image", "Image"
        TEXT = "text", "Text"

    corpus = models.ForeignKey(Corpus, on_delete=models.CASCADE, related_name="items")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    title = models.CharField(max_length=300)
    text = models.TextField(blank=True)
    file = models.FileField(upload_to="items/", blank=True)
    thumbnail = models.FileField(upload_to="thumbnails/", blank=True)
    source_name = models.CharField(max_length=1000, blank=True, help_text="Where the item came from.")
    content_hash = models.CharField(max_length=64, help_text="SHA-256 of the source bytes.")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["corpus", "content_hash"], name="item_unique_content_per_corpus")
        ]
        indexes = [models.Index(fields=["corpus", "kind"])]

    def __str__(self) -> str:
        return f"{self.title} ({self.kind})"

    def get_absolute_url(self) -> str:
        return reverse("multimodal:item-detail", args=[self.pk])
