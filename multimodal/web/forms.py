"""Parsing search input, the same rules for the page, the API and the command."""
import base64
import binascii
import json
import math
import re
from collections.abc import Callable

from django import forms
from django.conf import settings

from .. import store
from ..errors import UserInputError
from ..models import Corpus, Item
from ..query.types import PART_TYPES, QueryPart, SearchFilters, SearchQuery
from ..readers.imaging import query_image_open
from ..retrieval.fusion import MODES
from ..selectors import RESULT_FIELDS
from ..services.query_uploads import query_upload_get

MAX_QUERY_TEXT_CHARS = 1000
MAX_WEIGHT = 10.0
MAX_JSON_INT_DIGITS = 100  # far past any id, count or limit here
TRUE_WORDS, FALSE_WORDS = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}
SPEC_NAME_RE = re.compile(r"[\w-]{1,100}")
ITEM_ID_RE = re.compile(r"[0-9]{1,19}")  # ASCII digits: "²" and "١" are digits to str.isdigit()


def json_parse(raw: str | bytes):
    """``raw`` as JSON, or a ValueError saying why not (nesting too deep, NaN, text that is not Unicode).

    Only what JSON allows gets through: NaN and Infinity (which Python's parser takes) are refused,
    as are lone surrogates (``"\\ud800"``) and NUL characters, which no database column can hold.
    """
    try:
        value = json.loads(raw, parse_constant=_json_constant_refuse, parse_int=_json_int)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    for text in _json_strings(value):
        if "\x00" in text:
            raise ValueError("a string holds a NUL character (\\u0000)")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("a string holds a lone surrogate (\\ud800-\\udfff), not Unicode text") from None
    return value


def _json_constant_refuse(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _json_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_JSON_INT_DIGITS:  # Python refuses past 4,300 digits, with advice for programmers
        raise ValueError(f"a number has more than {MAX_JSON_INT_DIGITS} digits")
    return int(digits)


def _json_strings(value):
    """Every key and string in a parsed JSON value, without recursion (the value may be deeply nested)."""
    pending = [value]
    while pending:
        current = pending.pop()
        if isinstance(current, str):
            yield current
        elif isinstance(current, dict):
            pending.extend(current.keys())
            pending.extend(current.values())
        elif isinstance(current, list):
            pending.extend(current)


def form_error_message(form: forms.Form) -> str:
    """All errors in one line, each naming its field: 'top_k: Ensure this value is ...'."""
    return "; ".join(
        error if field_name == "__all__" else f"{field_name}: {error}"
        for field_name, errors in form.errors.items()
        for error in errors
    )


class SearchForm(forms.Form):
    """A search from the page, the API or the command.

    Short forms: ``q`` (text), ``image``, ``voice`` (uploaded files), ``item`` (more like this),
    each with an optional ``<type>_weight``. Or ``parts``: a JSON list of
    ``{"type": "text"|"image"|"voice"|"item", "value": ..., "file": FIELD, "weight": W}`` where an
    image or voice is an uploaded file named by ``file`` (multipart) or base64 in ``value``, or, in
    the page, ``ref``: a file this browser session uploaded before (`services.query_uploads`).
    Filters: ``corpus`` and ``kind`` (comma-separated or repeated), ``created_from``/``created_to``
    (YYYY-MM-DD), ``specs`` (JSON object, or ``spec.NAME=VALUE`` fields), ``modality`` (which of an
    item's vectors may match: ``image`` finds products by their picture alone).
    """

    q = forms.CharField(required=False, max_length=MAX_QUERY_TEXT_CHARS, strip=True, label="Search")
    image = forms.FileField(required=False, label="Image")
    voice = forms.FileField(required=False, label="Voice")
    item = forms.IntegerField(required=False, min_value=1, label="More like item")
    text_weight = forms.FloatField(required=False, min_value=-MAX_WEIGHT, max_value=MAX_WEIGHT)
    image_weight = forms.FloatField(required=False, min_value=-MAX_WEIGHT, max_value=MAX_WEIGHT)
    voice_weight = forms.FloatField(required=False, min_value=-MAX_WEIGHT, max_value=MAX_WEIGHT)
    item_weight = forms.FloatField(required=False, min_value=-MAX_WEIGHT, max_value=MAX_WEIGHT)
    parts = forms.CharField(required=False, label="Parts (JSON)")
    corpus = forms.CharField(required=False, max_length=1000, label="Corpus")
    kind = forms.CharField(required=False, max_length=200, label="Kind")
    created_from = forms.DateField(required=False, label="Created from")
    created_to = forms.DateField(required=False, label="Created to")
    specs = forms.CharField(required=False, max_length=4000, label="Specs (JSON)")
    modality = forms.CharField(required=False, max_length=100, label="Match only these vectors")
    fusion = forms.ChoiceField(required=False, choices=[(mode, mode) for mode in MODES], label="Fusion")
    hybrid = forms.CharField(required=False, max_length=5, label="Keyword channel")
    keyword_weight = forms.FloatField(required=False, min_value=0, max_value=MAX_WEIGHT)
    rrf_k = forms.IntegerField(required=False, min_value=1, max_value=1000)
    min_score = forms.FloatField(required=False, label="Minimum score")
    fields = forms.CharField(required=False, max_length=500, label="Result fields")

    def __init__(self, *args, session=None, **kwargs):
        super().__init__(*args, **kwargs)
        # Parts may name files kept for this session (``ref``); they are listed with their parts in
        # ``upload_parts`` so the caller can remember what a recording was heard to say.
        self.session = session
        self.upload_parts: list[tuple[str, QueryPart]] = []
        # Built here so the limits follow the settings in force, not those at import time.
        self.fields["top_k"] = forms.IntegerField(
            required=False, min_value=1, max_value=settings.MULTIMODAL_MAX_TOP_K, label="Results"
        )
        self.fields["page"] = forms.IntegerField(required=False, min_value=1, max_value=settings.MULTIMODAL_MAX_PAGE)
        self.order_fields(["q", "image", "voice", "top_k", "corpus"])

    def clean_image(self):
        upload = self.cleaned_data.get("image")
        return _image_decode(_reader(upload), upload.name, upload.size) if upload else None

    def clean_voice(self):
        upload = self.cleaned_data.get("voice")
        return _voice_read(_reader(upload), upload.name, upload.size) if upload else None

    def clean_item(self):
        return _item_get(self.cleaned_data.get("item"))

    def clean_corpus(self):
        names = _list(self.cleaned_data.get("corpus"))
        corpora = list(Corpus.objects.filter(name__in=names))
        missing = sorted(set(names) - {corpus.name for corpus in corpora})
        if missing:
            raise forms.ValidationError(f"no corpus named {', '.join(repr(name) for name in missing)}")
        return corpora

    def clean_kind(self):
        kinds = _list(self.cleaned_data.get("kind"))
        unknown = [kind for kind in kinds if kind not in Item.Kind.values]
        if unknown:
            raise forms.ValidationError(f"unknown kind {', '.join(unknown)}: use {', '.join(Item.Kind.values)}")
        return kinds

    def clean_modality(self):
        modalities = _list(self.cleaned_data.get("modality"))
        unknown = [modality for modality in modalities if modality not in store.SLOTS]
        if unknown:
            raise forms.ValidationError(f"unknown modality {', '.join(unknown)}: use {', '.join(store.SLOTS)}")
        return modalities

    def clean_specs(self):
        specs = {}
        raw = self.cleaned_data.get("specs")
        if raw:
            try:
                specs = json_parse(raw)
            except ValueError as exc:
                raise forms.ValidationError(f"not valid JSON ({exc})") from None
            if not isinstance(specs, dict):
                raise forms.ValidationError('must be a JSON object such as {"colour": "red"}')
        for key in self.data:
            if key.startswith("spec."):
                specs[key.removeprefix("spec.")] = self.data[key]
        for name, value in specs.items():
            if not SPEC_NAME_RE.fullmatch(str(name)):
                raise forms.ValidationError(f"'{name}' is not a spec name (letters, digits, _ and -)")
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise forms.ValidationError(f"the value of '{name}' must be a string or a number")
            if "\x00" in str(value):
                raise forms.ValidationError(f"the value of '{name}' holds a NUL character")
        return {str(name): str(value) for name, value in specs.items()}

    def clean_hybrid(self):
        value = str(self.cleaned_data.get("hybrid") or "").strip().lower()
        if not value:
            return None
        if value not in TRUE_WORDS | FALSE_WORDS:
            raise forms.ValidationError("use true or false")
        return value in TRUE_WORDS

    def clean_fields(self):
        names = _list(self.cleaned_data.get("fields"))
        unknown = [name for name in names if name not in RESULT_FIELDS]
        if unknown:
            raise forms.ValidationError(f"unknown field {', '.join(unknown)}: use {', '.join(RESULT_FIELDS)}")
        return names

    def clean_parts(self):
        raw = self.cleaned_data.get("parts")
        if not raw:
            return []
        try:
            specs = json_parse(raw) if isinstance(raw, str) else raw
        except ValueError as exc:
            raise forms.ValidationError(f"not valid JSON ({exc})") from None
        if not isinstance(specs, list):
            raise forms.ValidationError("must be a JSON list of parts")
        if len(specs) > settings.MULTIMODAL_MAX_QUERY_PARTS:
            raise forms.ValidationError(f"{len(specs)} parts; the limit is {settings.MULTIMODAL_MAX_QUERY_PARTS}")
        try:
            return [self._part_build(index, spec) for index, spec in enumerate(specs)]
        except UserInputError as exc:
            raise forms.ValidationError(str(exc)) from None

    def _part_build(self, index: int, spec) -> QueryPart:
        where = f"part {index}"
        if not isinstance(spec, dict):
            raise UserInputError(f"{where}: must be an object with a type")
        part_type = spec.get("type")
        if part_type not in PART_TYPES:
            raise UserInputError(f"{where}: type must be one of {', '.join(PART_TYPES)}")
        weight = spec.get("weight", 1.0)
        if (isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight)
                or abs(weight) > MAX_WEIGHT):
            raise UserInputError(f"{where}: weight must be a number between -{MAX_WEIGHT} and {MAX_WEIGHT}")
        value = spec.get("value")
        if part_type == "text":
            if not isinstance(value, str) or not value.strip():
                raise UserInputError(f"{where}: a text part needs a non-empty string value")
            if len(value) > MAX_QUERY_TEXT_CHARS:
                raise UserInputError(f"{where}: the text is over {MAX_QUERY_TEXT_CHARS} characters")
            return QueryPart(type="text", weight=float(weight), text=value.strip())
        if part_type == "item":
            if isinstance(value, bool) or not isinstance(value, (int, str)) or not ITEM_ID_RE.fullmatch(str(value)):
                raise UserInputError(f"{where}: an item part's value is an item id")
            return QueryPart(type="item", weight=float(weight), item=_item_get(int(value), where=where))
        if spec.get("ref"):
            return self._upload_part(where, spec, part_type, float(weight))
        read, name, size = self._part_payload(where, spec)
        if part_type == "image":
            try:
                image = _image_decode(read, name, size)
            except forms.ValidationError as exc:
                raise UserInputError(f"{where}: {exc.messages[0]}") from None
            return QueryPart(type="image", weight=float(weight), image=image, name=name)
        try:
            audio = _voice_read(read, name, size)
        except forms.ValidationError as exc:
            raise UserInputError(f"{where}: {exc.messages[0]}") from None
        return QueryPart(type="voice", weight=float(weight), audio=audio, name=name)

    def _upload_part(self, where: str, spec: dict, part_type: str, weight: float) -> QueryPart:
        """An image or voice part from a file kept for this session (checked when it was uploaded)."""
        if self.session is None:
            raise UserInputError(f"{where}: 'ref' names a file uploaded in the search page; here, send the file")
        upload = query_upload_get(session=self.session, ref=str(spec["ref"]))
        if upload.type != part_type:
            raise UserInputError(f"{where}: the uploaded file is {upload.type} input, not {part_type} input")
        if part_type == "image":
            part = QueryPart(type="image", weight=weight, image=query_image_open(upload.read(), name=upload.name),
                             name=upload.name)
        else:
            transcript = upload.transcript
            part = QueryPart(type="voice", weight=weight, audio=upload.read(), name=upload.name,
                             transcript=transcript, text=transcript["text"] if transcript else "")
        self.upload_parts.append((upload.ref, part))
        return part

    def _part_payload(self, where: str, spec: dict) -> tuple[Callable[[], bytes], str, int]:
        """How to read an image or voice part's bytes, its name and size: an uploaded file named by
        ``file`` (read only once its size is found within the limit), or base64 ``value``."""
        if spec.get("file"):
            upload = self.files.get(spec["file"])
            if upload is None:
                raise UserInputError(f"{where}: no uploaded file field named '{spec['file']}'")
            return _reader(upload), upload.name, upload.size
        value = spec.get("value")
        if not isinstance(value, str) or not value:
            raise UserInputError(f"{where}: give the file as an upload ('file': field name) or base64 'value'")
        data = base64_decode(value, where=where)
        return (lambda: data), spec.get("name") or spec["type"], len(data)

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        created_from, created_to = cleaned.get("created_from"), cleaned.get("created_to")
        if created_from and created_to and created_from > created_to:
            raise forms.ValidationError(f"created_from ({created_from}) is after created_to ({created_to}): "
                                        f"no item can match")
        if not cleaned.get("parts") and not (cleaned.get("q") or cleaned.get("image") is not None
                                             or cleaned.get("voice") is not None or cleaned.get("item")):
            raise forms.ValidationError(
                "nothing to search for: give a text (q or text), an image, a voice recording, an item or parts"
            )
        return cleaned

    def error_message(self) -> str:
        return form_error_message(self)

    def to_query(self) -> SearchQuery:
        data = self.cleaned_data
        parts = list(data["parts"])
        if data.get("q"):
            parts.append(QueryPart(type="text", text=data["q"], weight=_weight(data, "text")))
        if data.get("image") is not None:
            parts.append(QueryPart(type="image", image=data["image"], name=self.files["image"].name,
                                   weight=_weight(data, "image")))
        if data.get("voice") is not None:
            parts.append(QueryPart(type="voice", audio=data["voice"], name=self.files["voice"].name,
                                   weight=_weight(data, "voice")))
        if data.get("item"):
            parts.append(QueryPart(type="item", item=data["item"], weight=_weight(data, "item")))
        return SearchQuery(
            parts=parts,
            fusion=data.get("fusion") or "",
            hybrid=data.get("hybrid"),
            keyword_weight=data.get("keyword_weight"),
            rrf_k=data.get("rrf_k"),
            filters=SearchFilters(corpora=data["corpus"], kinds=data["kind"], created_from=data.get("created_from"),
                                  created_to=data.get("created_to"), specs=data["specs"],
                                  modalities=data["modality"]),
            min_score=data.get("min_score"),
            top_k=data.get("top_k") or 10,
            page=data.get("page") or 1,
        )


def _weight(data: dict, part_type: str) -> float:
    weight = data.get(f"{part_type}_weight")
    return 1.0 if weight is None else weight


def _list(value) -> list[str]:
    """'a, b' or ['a', 'b'] -> ['a', 'b']."""
    if not value:
        return []
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def _reader(upload) -> Callable[[], bytes]:
    """Reads a whole uploaded file, from its start (two parts may name the same file)."""
    def read() -> bytes:
        upload.seek(0)
        return upload.read()
    return read


def _image_decode(read: Callable[[], bytes], name: str, size: int):
    """The image ``read`` returns, decoded as a query image; its ``size`` is checked before it is read."""
    limit_mb = settings.MULTIMODAL_MAX_QUERY_IMAGE_MB
    if size > limit_mb * 1024 * 1024:
        raise forms.ValidationError(f"the image is {size:,} bytes; the limit is {limit_mb} MB")
    try:
        return query_image_open(read(), name=name)
    except UserInputError as exc:
        raise forms.ValidationError(str(exc)) from None


def _voice_read(read: Callable[[], bytes], name: str, size: int) -> bytes:
    """The recording ``read`` returns; its ``size`` is checked before it is read."""
    limit_mb = settings.MULTIMODAL_MAX_QUERY_AUDIO_MB
    if size > limit_mb * 1024 * 1024:
        raise forms.ValidationError(f"the recording is {size:,} bytes; the limit is {limit_mb} MB")
    data = read() if size else b""
    if not data:
        raise forms.ValidationError(f"{name}: the file is empty")
    return data


def _item_get(item_id: int | None, *, where: str = "item"):
    if not item_id:
        return None
    item = Item.objects.filter(pk=item_id).first()
    if item is None:
        raise (UserInputError if where != "item" else forms.ValidationError)(f"{where}: no item with id {item_id}")
    return item


def base64_decode(value: str, *, where: str) -> bytes:
    """Base64 (a data: URL is fine) to bytes, or a UserInputError naming ``where``."""
    try:
        return base64.b64decode(value.split(",", 1)[-1] if value.startswith("data:") else value, validate=True)
    except (binascii.Error, ValueError):
        raise UserInputError(f"{where}: not valid base64") from None


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
