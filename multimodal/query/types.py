"""What a search asks for: weighted parts of a few types, and filters, as plain values.

Every client gets these from `query.parse.query_parse` (the page, the API, the command,
evaluation) or builds them (the benchmarks), and `services.search.search_run` runs them. What each
part type is and how it reads and summarises itself is its entry in `query.parts.PARTS`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from django.conf import settings
from PIL import Image

from ..errors import QueryError
from ..models import Corpus, Item
from ..retrieval import fusion
from .parts import PARTS

PART_TYPES = tuple(PARTS)
# What a client may ask of each result (``fields``); the response is shaped in `selectors.search_response`.
RESULT_FIELDS = ("id", "kind", "title", "score", "thumbnail_url", "width", "height", "snippet", "highlight",
                 "detail_url", "corpus", "created_at", "description", "specs", "specs_text", "external_id", "start_s", "end_s", "recording",
                 "audio_url", "parent", "page", "page_label", "span", "document_url", "video_url", "ocr_boxes", "also",
                 "duplicates", "relevance", "explanation", "truncated")


@dataclass
class QueryPart:
    """One weighted piece of a query. A voice part gets its ``text`` from the transcript."""

    type: str
    weight: float = 1.0
    text: str = ""
    image: Image.Image | None = None
    name: str = ""  # the uploaded file's name (image, voice)
    item: Item | None = None
    audio: bytes | None = None  # a voice part's recording, until transcribed
    transcript: dict | None = None  # text, language, duration_s, transcribe_ms
    ref: str = ""  # the session's kept file it was read from (`services.query_uploads`), if any

    def summary(self) -> dict:
        out = {"type": self.type, "weight": self.weight}
        PARTS[self.type].summarise(self, out)
        return out

    @property
    def label(self) -> str:
        """How the part is named in explanations."""
        return PARTS[self.type].label(self)


@dataclass
class SearchFilters:
    corpora: list[Corpus] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    created_from: date | None = None
    created_to: date | None = None  # inclusive: the whole day counts
    specs: dict[str, str] = field(default_factory=dict)  # spec name -> value (case-insensitive)
    # Which of an item's vectors may match (e.g. ["image"]: images by their pixels, not products by
    # their text); empty: all. Excluding text vectors also turns the keyword channel off.
    modalities: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "corpus": [corpus.name for corpus in self.corpora] or None,
            "kind": self.kinds or None,
            "created_from": self.created_from.isoformat() if self.created_from else None,
            "created_to": self.created_to.isoformat() if self.created_to else None,
            "specs": self.specs or None,
            "modality": self.modalities or None,
        }


@dataclass
class SearchQuery:
    """What to search for. The short forms (``text``, ``image``, ``corpus``) become parts/filters."""

    parts: list[QueryPart] = field(default_factory=list)
    fusion: str = ""
    hybrid: bool | None = None  # None: on when the query has positive text
    keyword_weight: float | None = None
    rrf_k: int | None = None
    filters: SearchFilters = field(default_factory=SearchFilters)
    min_score: float | None = None
    top_k: int = 10
    page: int = 1
    fields: list[str] = field(default_factory=list)  # keep only these of each result (RESULT_FIELDS); empty: all
    # One result per document, video, recording or long text: its best matching part, the others in ``also``.
    group: bool = True
    # Near duplicates shown once (`fusion.fused_collapse`): "same", "similar" or "none"; "": the configured default.
    collapse: str = ""
    text: str = ""
    image: Image.Image | None = None
    image_name: str = ""
    corpus: Corpus | None = None

    def __post_init__(self):
        if self.text:
            self.parts.insert(0, QueryPart(type="text", text=self.text))
        if self.image is not None:
            self.parts.append(QueryPart(type="image", image=self.image, name=self.image_name))
        if self.corpus is not None and self.corpus not in self.filters.corpora:
            self.filters.corpora.append(self.corpus)
        self.text, self.image, self.corpus = "", None, None
        self.fusion = self.fusion or settings.MULTIMODAL_DEFAULT_FUSION
        if self.fusion not in fusion.MODES:
            raise QueryError(f"fusion: '{self.fusion}' is not one of {', '.join(fusion.MODES)}")
        if self.keyword_weight is None:
            self.keyword_weight = settings.MULTIMODAL_KEYWORD_WEIGHT
        self.rrf_k = self.rrf_k or settings.MULTIMODAL_RRF_K
        self.collapse = self.collapse or settings.MULTIMODAL_DEFAULT_COLLAPSE
        if self.collapse not in fusion.COLLAPSE_LEVELS:
            raise QueryError(f"collapse: '{self.collapse}' is not one of {', '.join(fusion.COLLAPSE_LEVELS)}")

    @property
    def keyword_text(self) -> str:
        """The words the keyword channel looks for: every positive text or voice part."""
        return " ".join(part.text for part in self.parts if PARTS[part.type].keyword and part.weight > 0)

    @property
    def keyword_on(self) -> bool:
        wanted = self.hybrid if self.hybrid is not None else True
        text_matches = not self.filters.modalities or "text" in self.filters.modalities
        return bool(wanted and text_matches and self.keyword_weight and self.keyword_text.strip())

    def summary(self) -> dict:
        """What was understood, as returned to the user."""
        texts = [part.text for part in self.parts if PARTS[part.type].keyword and part.text]
        images = [part for part in self.parts if part.type == "image"]
        return {
            "text": " ".join(texts) or None,
            "image": images[0].summary() if images else None,
            "parts": [part.summary() for part in self.parts],
            "fusion": self.fusion,
            "hybrid": self.keyword_on,
            "keyword_weight": self.keyword_weight,
            "rrf_k": self.rrf_k if self.fusion == "rrf" else None,
            "filters": self.filters.summary(),
            "corpus": self.filters.corpora[0].name if len(self.filters.corpora) == 1 else None,
            "min_score": self.min_score,
            "top_k": self.top_k,
            "page": self.page,
            "group": self.group,
            "collapse": self.collapse,
        }
