"""`query_parse`: a search request, from any client, checked and read into a `SearchQuery`.

The page (`web.forms.SearchForm`), the API (its validated JSON body, or the query string and
multipart fields), the ``search`` command and `services.evaluation` all hand their request here,
so a query means the same and fails with the same words everywhere.

``data`` holds the request's fields. Short forms: ``q`` (or ``text``), ``item``, and one uploaded
file per upload part type (``image``, ``voice``), each with an optional ``<type>_weight``. Or
``parts``: a list (or its JSON) of ``{"type": TYPE, "value": ..., "file": FIELD, "weight": W}``
where TYPE is an entry of `query.parts.PARTS`; an upload part's file is named by ``file`` (in
``files``), or base64 in ``value``, or, in the page, ``ref``: a file this browser session kept
before (`services.query_uploads`), looked up with the ``kept`` function the caller passes.
Filters: ``corpus`` and ``kind`` (comma-separated or lists), ``created_from``/``created_to``
(YYYY-MM-DD), ``specs`` (an object or its JSON, or ``spec.NAME=VALUE`` fields), ``modality``
(which of an item's vectors may match). Also ``fusion``, ``hybrid``, ``keyword_weight``,
``rrf_k``, ``min_score``, ``top_k``, ``page``, ``fields``, ``collapse`` (same, similar or none).
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping

from django import forms
from django.conf import settings

from .. import store
from ..errors import UserInputError
from ..models import PART_KINDS, Corpus, Item
from ..retrieval.fusion import COLLAPSE_LEVELS, MODES
from .json_input import base64_decode, json_parse
from .parts import MAX_QUERY_TEXT_CHARS, PARTS, UPLOAD_TYPES, PartType, item_get
from .types import RESULT_FIELDS, QueryPart, SearchFilters, SearchQuery

MAX_WEIGHT = 10.0
TRUE_WORDS, FALSE_WORDS = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}
SPEC_NAME_RE = re.compile(r"[\w-]{1,100}")
LIST_FIELDS = ("corpus", "kind", "modality", "fields")
PART_KEYS = ("type", "value", "file", "name", "weight", "ref")
SPEC_FIELD_PREFIX = "spec."


class QueryInvalid(UserInputError):
    """The request cannot be read as a query; ``errors`` maps each field ("__all__": none) to its problems.

    Its message is every problem in one line, each naming its field: 'top_k: Ensure this value is ...'
    (programs need the names). ``details`` holds the same problems as ValidationErrors, with the code
    and values each was raised with, for `query.plain_errors` to say them in words for people.
    """

    def __init__(self, errors: Mapping[str, list[forms.ValidationError | str]]):
        self.details = {name: [error if isinstance(error, forms.ValidationError) else forms.ValidationError(error)
                               for error in problems] for name, problems in errors.items()}
        self.errors = {name: [" ".join(error.messages) for error in problems]
                       for name, problems in self.details.items()}
        super().__init__("; ".join(message if name == "__all__" else f"{name}: {message}"
                                   for name, messages in self.errors.items() for message in messages))


class PartMalformed(UserInputError):
    """A query part that is not shaped as a part at all (not an object, no known type, a weight that is not
    a number): the request was built wrong, or a search link was damaged, rather than a value refused."""


def unknown_names_message(unknown: Iterable[str], known: Iterable[str], *, what: str = "parameter") -> str:
    """'unknown parameters kinds, topk; the known ones are q, text, ...' for names nothing reads."""
    unknown = sorted(unknown)
    names = f"{what}{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}"
    return f"unknown {names}; the known ones are {', '.join(known)}"


def query_parse(data: Mapping, files: Mapping | None = None, *,
                kept: Callable[[str], object] | None = None, strict: bool = False) -> SearchQuery:
    """The query ``data`` and ``files`` ask for; QueryInvalid naming every problem if they cannot.

    ``files`` maps field names to uploaded files (Django's ``UploadedFile``: ``name``, ``size``,
    ``seek``, ``read``), checked against their type's size limit before they are read. ``kept``
    returns the session's kept upload for a part's ``ref`` (`services.query_uploads.QueryUpload`:
    ``ref``, ``type``, ``name``, ``read()``, ``transcript``); without it a ``ref`` is refused.

    ``strict`` (the API) refuses what nothing would read: a field that is not a query field, a key of a
    part that is not a part's, a file that neither a short form nor a part names. Without it (the page,
    whose links may carry others' parameters such as utm_source) they are ignored.
    """
    form = _QueryForm(_fields(data), files or {}, kept=kept, strict=strict)
    if not form.is_valid():
        raise QueryInvalid(form.errors.as_data())
    return form.to_query()


def _fields(data: Mapping) -> dict:
    """The request's fields as one value each: a list of names joined by commas, ``text`` as ``q``."""
    fields = data.dict() if hasattr(data, "getlist") else dict(data)  # a QueryDict: its last value per key
    if "text" in fields and "q" not in fields:
        fields["q"] = fields.pop("text")
    for name in LIST_FIELDS:
        if isinstance(fields.get(name), (list, tuple)):
            fields[name] = ",".join(str(entry) for entry in fields[name])
    return {name: value for name, value in fields.items() if value is not None}


class _QueryForm(forms.Form):
    """The field checks, with Django's messages; `query_parse` is its only user."""

    q = forms.CharField(required=False, max_length=MAX_QUERY_TEXT_CHARS, strip=True)
    item = forms.IntegerField(required=False, min_value=1)
    parts = forms.Field(required=False)  # a list, or its JSON
    corpus = forms.CharField(required=False, max_length=1000)
    kind = forms.CharField(required=False, max_length=200)
    created_from = forms.DateField(required=False)
    created_to = forms.DateField(required=False)
    specs = forms.Field(required=False)  # an object, or its JSON
    modality = forms.CharField(required=False, max_length=100)
    fusion = forms.ChoiceField(required=False, choices=[(mode, mode) for mode in MODES])
    hybrid = forms.CharField(required=False, max_length=5)
    group = forms.CharField(required=False, max_length=5)
    collapse = forms.ChoiceField(required=False, choices=[(level, level) for level in COLLAPSE_LEVELS])
    keyword_weight = forms.FloatField(required=False, min_value=0, max_value=MAX_WEIGHT)
    rrf_k = forms.IntegerField(required=False, min_value=1, max_value=1000)
    min_score = forms.FloatField(required=False)
    fields = forms.CharField(required=False, max_length=500)

    def __init__(self, data: dict, files: Mapping, *, kept, strict: bool):
        super().__init__(data, files)
        self.kept, self.strict = kept, strict
        self.files_named: set[str] = set()  # the file fields parts name ("file": FIELD)
        # Built here so the limits follow the settings in force, not those at import time.
        for name in UPLOAD_TYPES:
            self.fields[name] = forms.FileField(required=False)
        for name in PARTS:
            self.fields[f"{name}_weight"] = forms.FloatField(required=False, min_value=-MAX_WEIGHT, max_value=MAX_WEIGHT)
        self.fields["top_k"] = forms.IntegerField(required=False, min_value=1, max_value=settings.MULTIMODAL_MAX_TOP_K)
        self.fields["page"] = forms.IntegerField(required=False, min_value=1, max_value=settings.MULTIMODAL_MAX_PAGE)
        self.order_fields(["q", *UPLOAD_TYPES, "top_k", "corpus", "item", *(f"{name}_weight" for name in PARTS),
                           "parts"])

    def clean_item(self):
        item_id = self.cleaned_data.get("item")
        if not item_id:
            return None
        try:
            return item_get(item_id, where="item")
        except UserInputError as exc:
            raise forms.ValidationError(str(exc)) from None

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
        # A recording, video or document has no vectors of its own: asking for it means asking for its parts.
        return list(dict.fromkeys(part for kind in kinds for part in PART_KINDS.get(kind, (kind,))))

    def clean_modality(self):
        modalities = _list(self.cleaned_data.get("modality"))
        unknown = [modality for modality in modalities if modality not in store.SLOTS]
        if unknown:
            raise forms.ValidationError(f"unknown modality {', '.join(unknown)}: use {', '.join(store.SLOTS)}")
        return modalities

    def clean_hybrid(self):
        return _yes_or_no(self.cleaned_data.get("hybrid"))

    def clean_group(self):
        return _yes_or_no(self.cleaned_data.get("group"))

    def clean_fields(self):
        names = _list(self.cleaned_data.get("fields"))
        unknown = [name for name in names if name not in RESULT_FIELDS]
        if unknown:
            raise forms.ValidationError(f"unknown field {', '.join(unknown)}: use {', '.join(RESULT_FIELDS)}")
        return names

    def clean_specs(self) -> dict[str, str]:
        specs = {}
        raw = self.cleaned_data.get("specs")
        if isinstance(raw, str) and len(raw) > 4000:
            raise forms.ValidationError(f"Ensure this value has at most 4000 characters (it has {len(raw)}).")
        if raw:
            specs = dict(_json_value(raw, dict, 'must be a JSON object such as {"colour": "red"}'))
        for key in self.data:
            if key.startswith(SPEC_FIELD_PREFIX):
                specs[key.removeprefix(SPEC_FIELD_PREFIX)] = self.data[key]
        for name, value in specs.items():
            if not SPEC_NAME_RE.fullmatch(str(name)):
                raise forms.ValidationError(f"'{name}' is not a spec name (letters, digits, _ and -)")
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise forms.ValidationError(f"the value of '{name}' must be a string or a number")
            if "\x00" in str(value):
                raise forms.ValidationError(f"the value of '{name}' holds a NUL character")
        return {str(name): str(value) for name, value in specs.items()}

    def clean_parts(self) -> list[QueryPart]:
        raw = self.cleaned_data.get("parts")
        if isinstance(raw, str):
            raw = raw.strip()
        if not raw:
            return []
        specs = _json_value(raw, list, "must be a JSON list of parts")
        if len(specs) > settings.MULTIMODAL_MAX_QUERY_PARTS:
            raise forms.ValidationError(f"{len(specs)} parts; the limit is {settings.MULTIMODAL_MAX_QUERY_PARTS}")
        try:
            return [self._part_build(index, spec) for index, spec in enumerate(specs)]
        except PartMalformed as exc:
            raise forms.ValidationError(str(exc), code="malformed") from None
        except UserInputError as exc:
            raise forms.ValidationError(str(exc)) from None

    def _part_build(self, index: int, spec) -> QueryPart:
        where = f"part {index}"
        if not isinstance(spec, dict):
            raise PartMalformed(f"{where}: must be an object with a type")
        if self.strict and (unknown := set(spec) - set(PART_KEYS)):
            raise PartMalformed(f"{where}: {unknown_names_message(unknown, PART_KEYS, what='key')}")
        entry = PARTS.get(spec.get("type")) if isinstance(spec.get("type"), str) else None
        if entry is None:
            raise PartMalformed(f"{where}: type must be one of {', '.join(PARTS)}")
        weight = spec.get("weight", 1.0)
        if (isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight)
                or abs(weight) > MAX_WEIGHT):
            raise PartMalformed(f"{where}: weight must be a number between -{MAX_WEIGHT} and {MAX_WEIGHT}")
        if not entry.upload:
            return QueryPart(type=entry.name, weight=float(weight), **entry.parse(spec.get("value"), where))
        if spec.get("ref"):
            return self._kept_part(where, spec, entry, float(weight))
        read, name, size = self._part_payload(where, spec)
        try:
            fields = _upload_read(entry, read, name, size)
        except UserInputError as exc:
            raise UserInputError(f"{where}: {exc}") from None
        return QueryPart(type=entry.name, weight=float(weight), name=name, **fields)

    def _kept_part(self, where: str, spec: dict, entry: PartType, weight: float) -> QueryPart:
        """An upload part from a file kept for this session (checked when it was kept)."""
        if self.kept is None:
            raise UserInputError(f"{where}: 'ref' names a file uploaded in the search page; here, send the file")
        upload = self.kept(str(spec["ref"]))
        if upload.type != entry.name:
            raise UserInputError(f"{where}: the uploaded file is {upload.type} input, not {entry.name} input")
        fields = entry.read(upload.read(), upload.name)
        if upload.transcript:  # heard before: not transcribed again
            fields.update(transcript=upload.transcript, text=upload.transcript["text"])
        return QueryPart(type=entry.name, weight=weight, name=upload.name, ref=upload.ref, **fields)

    def _part_payload(self, where: str, spec: dict) -> tuple[Callable[[], bytes], str, int]:
        """How to read an upload part's bytes, its name and size: an uploaded file named by ``file``
        (read only once its size is found within the limit), or base64 ``value``."""
        if spec.get("file"):
            self.files_named.add(str(spec["file"]))
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
        for name in UPLOAD_TYPES:
            upload = cleaned.get(name)
            if upload:
                try:
                    cleaned[name] = _upload_read(PARTS[name], _reader(upload), upload.name, upload.size)
                except UserInputError as exc:
                    self.add_error(name, str(exc))
        if self.errors:
            return cleaned
        if self.strict:
            self._unknown_names_check()
        created_from, created_to = cleaned.get("created_from"), cleaned.get("created_to")
        if created_from and created_to and created_from > created_to:
            raise forms.ValidationError(f"created_from ({created_from}) is after created_to ({created_to}): "
                                        f"no item can match", code="date_order",
                                        params={"created_from": created_from, "created_to": created_to})
        if not (cleaned["parts"] or cleaned.get("q") or cleaned.get("item")
                or any(cleaned.get(name) for name in UPLOAD_TYPES)):
            raise forms.ValidationError(
                "nothing to search for: give a text (q or text), an image, a voice recording, an item or parts",
                code="empty",
            )
        return cleaned

    def _unknown_names_check(self) -> None:
        """A ValidationError naming the request's fields and files that no query field or part reads."""
        unknown = [name for name in self.data
                   if name not in self.fields and name != "text" and not name.startswith(SPEC_FIELD_PREFIX)]
        unknown += [name for name in self.files if name not in UPLOAD_TYPES and name not in self.files_named]
        if unknown:
            known = ["q", "text", *(name for name in self.fields if name != "q"), f"{SPEC_FIELD_PREFIX}NAME"]
            raise forms.ValidationError(unknown_names_message(unknown, known), code="unknown")

    def to_query(self) -> SearchQuery:
        data = self.cleaned_data
        parts = list(data["parts"])
        if data.get("q"):
            parts.append(QueryPart(type="text", text=data["q"], weight=_weight(data, "text")))
        for name in UPLOAD_TYPES:
            if data.get(name):
                parts.append(QueryPart(type=name, name=self.files[name].name, weight=_weight(data, name), **data[name]))
        if data.get("item"):
            parts.append(QueryPart(type="item", item=data["item"], weight=_weight(data, "item")))
        return SearchQuery(
            parts=parts,
            fusion=data.get("fusion") or "",
            hybrid=data.get("hybrid"),
            group=data.get("group") is not False,
            collapse=data.get("collapse") or "",
            keyword_weight=data.get("keyword_weight"),
            rrf_k=data.get("rrf_k"),
            filters=SearchFilters(corpora=data["corpus"], kinds=data["kind"], created_from=data.get("created_from"),
                                  created_to=data.get("created_to"), specs=data["specs"],
                                  modalities=data["modality"]),
            min_score=data.get("min_score"),
            top_k=data.get("top_k") or 10,
            page=data.get("page") or 1,
            fields=data["fields"],
        )


def _yes_or_no(raw) -> bool | None:
    """True or false from a checkbox, a query string or JSON; None when not given."""
    value = str(raw if raw is not None else "").strip().lower()
    if not value:
        return None
    if value not in TRUE_WORDS | FALSE_WORDS:
        raise forms.ValidationError("use true or false")
    return value in TRUE_WORDS


def _json_value(raw, kind: type, shape: str):
    """``raw`` itself, or parsed if it is JSON text; a ValidationError saying ``shape`` unless it is a ``kind``."""
    try:
        value = json_parse(raw) if isinstance(raw, str) else raw
    except ValueError as exc:
        raise forms.ValidationError(f"not valid JSON ({exc})", code="malformed") from None
    if not isinstance(value, kind):
        raise forms.ValidationError(shape, code="malformed")
    return value


def _upload_read(entry: PartType, read: Callable[[], bytes], name: str, size: int) -> dict:
    """An upload's part fields: its ``size`` checked against the type's limit, then its bytes read."""
    entry.size_check(size)
    return entry.read(read() if size else b"", name)


def _weight(data: dict, part_type: str) -> float:
    weight = data.get(f"{part_type}_weight")
    return 1.0 if weight is None else weight


def _list(value) -> list[str]:
    """'a, b' -> ['a', 'b']."""
    return [item.strip() for item in str(value or "").split(",") if item.strip()]


def _reader(upload) -> Callable[[], bytes]:
    """Reads a whole uploaded file, from its start (two parts may name the same file)."""
    def read() -> bytes:
        upload.seek(0)
        return upload.read()
    return read
