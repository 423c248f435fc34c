"""The page's forms: the search box (parsed by `query.parse.query_parse`) and the staff upload form."""
from django import forms

from ..errors import UserInputError
from ..query.parse import query_parse
from ..query.plain_errors import PlainError, query_error_plain
from ..query.types import SearchQuery
from ..services.query_uploads import query_upload_get


def form_error_message(form: forms.Form) -> str:
    """All errors in one line, each naming its field: 'top_k: Ensure this value is ...'."""
    return "; ".join(
        error if field_name == "__all__" else f"{field_name}: {error}"
        for field_name, errors in form.errors.items()
        for error in errors
    )


class SearchForm(forms.Form):
    """The search page's query: the text box it renders, and the whole request read by `query_parse`.

    With a ``session``, parts may name files kept for it (``ref``, `services.query_uploads`).
    Once valid, ``query`` is the `SearchQuery`; otherwise `error_plain` says every problem in words for
    people (foreign parameters, such as a link's utm_source, are ignored: a page link may carry them).
    """

    q = forms.CharField(required=False, label="Search")  # checked with the rest, by query_parse

    def __init__(self, *args, session=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.session = session
        self.query: SearchQuery | None = None
        self.query_error: UserInputError | None = None

    def clean(self):
        try:
            self.query = query_parse(self.data, self.files, kept=self._kept if self.session is not None else None)
        except UserInputError as exc:
            self.query_error = exc
            raise forms.ValidationError(str(exc)) from None
        return self.cleaned_data

    def _kept(self, ref: str):
        return query_upload_get(session=self.session, ref=ref)

    def error_plain(self) -> PlainError:
        """The problems of an invalid form, in plain sentences, and the fields at fault."""
        return query_error_plain(self.query_error) if self.query_error else PlainError(form_error_message(self))


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
        allow_empty_file=True, label="Files",
        help_text="Images, .txt/.md files, recordings and videos (their speech becomes searchable), zip archives "
                  "of those, CSV/XLSX knowledge bases.",
    )
    ROLE_FIELDS = ("title", "description", "specs", "image", "id")

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
