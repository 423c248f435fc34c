"""Parsing search input, the same rules for the page, the API and the command."""
from django import forms
from django.conf import settings

from .errors import UserInputError
from .imaging import image_open
from .models import Corpus
from .services.search import SearchQuery

MAX_QUERY_TEXT_CHARS = 1000


class SearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=MAX_QUERY_TEXT_CHARS, strip=True, label="Search")
    image = forms.FileField(required=False, label="Image")
    corpus = forms.CharField(required=False, max_length=100, label="Corpus")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Built here so the limit follows the settings in force, not those at import time.
        self.fields["top_k"] = forms.IntegerField(
            required=False, min_value=1, max_value=settings.MULTIMODAL_MAX_TOP_K, label="Results"
        )
        self.order_fields(["q", "image", "top_k", "corpus"])

    def clean_image(self):
        upload = self.cleaned_data.get("image")
        if not upload:
            return None
        max_bytes = settings.MULTIMODAL_MAX_QUERY_IMAGE_MB * 1024 * 1024
        if upload.size > max_bytes:
            raise forms.ValidationError(
                f"the image is {upload.size:,} bytes; the limit is {settings.MULTIMODAL_MAX_QUERY_IMAGE_MB} MB"
            )
        try:
            return image_open(upload.read(), name=upload.name)
        except UserInputError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_corpus(self):
        name = self.cleaned_data.get("corpus")
        if not name:
            return None
        corpus = Corpus.objects.filter(name=name).first()
        if corpus is None:
            raise forms.ValidationError(f"no corpus named '{name}'")
        return corpus

    def clean(self):
        cleaned = super().clean()
        if not self.errors and not cleaned.get("q") and cleaned.get("image") is None:
            raise forms.ValidationError("nothing to search for: give a text (q or text) or an image")
        return cleaned

    def error_message(self) -> str:
        """All errors in one line, each naming its field: 'top_k: Ensure this value is ...'."""
        parts = []
        for field_name, errors in self.errors.items():
            for error in errors:
                parts.append(error if field_name == "__all__" else f"{field_name}: {error}")
        return "; ".join(parts)

    def to_query(self) -> SearchQuery:
        data = self.cleaned_data
        upload = self.files.get("image")
        return SearchQuery(
            text=data.get("q") or "",
            image=data.get("image"),
            image_name=upload.name if upload else "",
            top_k=data.get("top_k") or 10,
            corpus=data.get("corpus"),
        )
