"""Parsing search input, the same rules for the page, the API and the command."""
from django import forms
from django.conf import settings

from .errors import UserInputError
from .imaging import image_open
from .models import Corpus
from .services.search import SearchQuery

MAX_QUERY_TEXT_CHARS = 1000


def form_error_message(form: forms.Form) -> str:
    """All errors in one line, each naming its field: 'top_k: Ensure this value is ...'."""
    return "; ".join(
        error if field_name == "__all__" else f"{field_name}: {error}"
        for field_name, errors in form.errors.items()
        for error in errors
    )


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
        return form_error_message(self)

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


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files from one input; cleans to a list."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single_clean = super().clean
        if isinstance(data, (list, tuple)):
            return [single_clean(item, initial) for item in data]
        return [single_clean(data, initial)] if data else []


class UploadForm(forms.Form):
    corpus = forms.SlugField(max_length=100, label="Corpus", help_text="An existing corpus, or a new name.")
    # An empty file is not a form error: it becomes that file's own failure in the job.
    files = MultipleFileField(
        allow_empty_file=True, label="Files", help_text="Images, .txt/.md files, zip archives of those, CSV/XLSX knowledge bases."
    )
    title_column = forms.CharField(required=False, max_length=200, label="Title column")
    description_column = forms.CharField(required=False, max_length=200, label="Description column")
    specs_column = forms.CharField(required=False, max_length=200, label="Specs column")
    image_column = forms.CharField(required=False, max_length=200, label="Image column")
    id_column = forms.CharField(required=False, max_length=200, label="Id column")

    def column_mapping(self) -> dict[str, str]:
        return {
            role: self.cleaned_data.get(f"{role}_column", "")
            for role in ("title", "description", "specs", "image", "id")
        }
