"""The API's request and response shapes; the OpenAPI schema at /api/schema is generated from them."""
from datetime import date
from typing import Any, Literal

from ninja import Schema
from pydantic import ConfigDict, Field

from ..query.parts import PARTS

PartType = Literal[tuple(PARTS)]  # the registered part types (tests/query/test_registry.py checks the rest)
Fusion = Literal["vector", "rrf", "weighted"]
Collapse = Literal["same", "similar", "none"]
Kind = Literal["image", "text", "product", "audio", "segment", "document", "page", "passage", "video", "scene"]


class Error(Schema):
    error: str = Field(description="What was wrong, naming the field or file.")


class PartIn(Schema):
    model_config = ConfigDict(extra="forbid")  # a misspelt key is refused, naming the known ones

    type: PartType
    value: str | int | None = Field(None, description="text; an item id; or base64 image/audio (a data: URL is fine)")
    file: str | None = Field(None, description="multipart only: the name of the file field holding this part")
    name: str | None = Field(None, description="a file name to show for base64 images or audio")
    weight: float = Field(1.0, ge=-10, le=10, description="negative weights push results away from this part")


class SearchParams(Schema):
    """The query-string (GET) and multipart form fields; also accepted in a JSON body."""

    q: str | None = Field(None, description="text to search for (alias: text)")
    text: str | None = None
    item: int | None = Field(None, description="more like this item")
    text_weight: float | None = None
    image_weight: float | None = None
    voice_weight: float | None = None
    item_weight: float | None = None
    corpus: str | None = Field(None, description="corpus name(s), comma-separated")
    kind: str | None = Field(None, description="comma-separated kinds; audio, video and document search their parts: "
                                               "audio its speech segments, video its scenes and speech segments, "
                                               "document its pages and passages (the query's filters.kind lists them)")
    created_from: date | None = None
    created_to: date | None = Field(None, description="inclusive")
    specs: str | None = Field(None, description='JSON object of spec filters, e.g. {"colour": "red"}; or spec.NAME=VALUE')
    modality: str | None = Field(None, description="match only these of an item's vectors: image, text; comma-separated")
    fusion: Fusion | None = Field(None, description="vector (default), rrf or weighted")
    hybrid: bool | None = Field(None, description="keyword channel; on by default when the query has text")
    group: bool | None = Field(None, description="one result per document, video, recording or long text (its best "
                                                 "matching part, the other matching parts in `also`); default true")
    collapse: Collapse | None = Field(
        None, description="near duplicates shown once, as their best-ranked member with the others in `duplicates`: "
                          "same (copies of one picture or product row: resized, recompressed, cropped a little; the "
                          "default, setting MULTIMODAL_DEFAULT_COLLAPSE), similar (also other shots of a scene: "
                          "bursts, angles, exposures; rows about the same thing) or none")
    keyword_weight: float | None = None
    rrf_k: int | None = None
    min_score: float | None = None
    top_k: int | None = Field(None, description="results per page (default 10)")
    page: int | None = Field(None, description="1-based")
    fields: str | None = Field(None, description="keep only these result fields, comma-separated")


class SearchMultipart(SearchParams):
    image: bytes | None = Field(None, json_schema_extra={"format": "binary"})
    voice: bytes | None = Field(None, json_schema_extra={"format": "binary"})
    parts: str | None = Field(None, description="JSON list of parts; image/voice parts name their file field")


class SearchRequest(SearchParams):
    """A JSON body: the short forms, or ``parts``; images and audio are base64. Unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")
    image: str | None = Field(None, description="base64 image")
    voice: str | None = Field(None, description="base64 audio")
    parts: list[PartIn] | None = None
    corpus: str | list[str] | None = None
    kind: str | list[Kind] | None = None
    specs: dict[str, str] | str | None = None
    fields: str | list[str] | None = None


class Contribution(Schema):
    channel: Literal["vector", "keyword"]
    part: int | None = None
    type: PartType | None = None
    label: str | None = None
    weight: float | None = None
    score: float | None = Field(None, description="the channel's own score: cosine, or bm25/ts_rank")
    rank: int | None = None
    contribution: float


class Calibration(Schema):
    z: float = Field(description="how many robust spreads the result's similarity stands above the searched "
                                 "corpora's (a random sample's median), weighted over the query's positive parts")
    good_z: float = Field(description="the cut: below it a result is a weak match")
    strong_z: float


class Explanation(Schema):
    fusion: Fusion
    contributions: list[Contribution]
    summary: list[str] = Field([], description='why it matched, in plain sentences ("Matches your picture strongly.", '
                                               '"The word ‘moon’ is in the title.")')
    calibration: Calibration | None = Field(None, description="how its relevance was judged (none without vectors)")


class Relevance(Schema):
    label: Literal["strong", "fair", "weak"] = Field(
        description="how good a match, the same scale in every fusion mode; weak ones are shown under 'Weak matches'")
    level: float = Field(ge=0, le=1, description="the same on [0, 1]: 0.5 and up fair, 0.8 and up strong")


class HighlightSpan(Schema):
    text: str
    match: bool = Field(description="true for a word of the query")


class Recording(Schema):
    id: int
    title: str
    detail_url: str


class AlsoMatched(Schema):
    id: int
    kind: Kind
    where: str
    detail_url: str


class Duplicate(Schema):
    id: int
    level: Literal["same", "similar"] = Field(description="same: a copy of the result's picture (or row); "
                                                          "similar: another shot of the same scene")
    kind: Kind
    title: str
    thumbnail_url: str | None
    detail_url: str


class Parent(Schema):
    id: int
    kind: Kind
    title: str
    detail_url: str


class Result(Schema):
    model_config = ConfigDict(extra="allow")

    id: int | None = None
    kind: Kind | None = None
    title: str | None = None
    score: float | None = None
    thumbnail_url: str | None = None
    width: int | None = Field(None, description="pictures: the picture's width in pixels (its thumbnail has the same shape)")
    height: int | None = Field(None, description="pictures: the picture's height in pixels")
    snippet: str | None = None
    highlight: list[HighlightSpan] | None = Field(None, description="the snippet in pieces, the query's words marked")
    detail_url: str | None = None
    corpus: str | None = None
    created_at: str | None = None
    description: str | None = None
    specs: dict | None = None
    specs_text: str | None = None
    external_id: str | None = None
    start_s: float | None = Field(None, description="audio segments: where the segment starts in its recording")
    end_s: float | None = None
    recording: Recording | None = Field(None, description="audio segments: the recording they belong to")
    audio_url: str | None = Field(None, description="audio segments: the recording, with #t=START")
    parent: Parent | None = Field(
        None, description="pages, passages, scenes, segments: the document, text, video or recording they are part of")
    page: int | None = Field(None, description="pages and passages: the 1-based page, slide, section or chapter")
    page_label: str | None = Field(None, description='pages and passages: where, as people read it ("page 3 of Report")')
    span: list[int] | None = Field(None, description="passages: [start, end) characters of the parent's text")
    document_url: str | None = Field(None, description="PDF pages and passages: the PDF, opening at the page (#page=N)")
    video_url: str | None = Field(None, description="video scenes: the video, with #t=START")
    also: list[AlsoMatched] | None = Field(
        None, description="other parts of the same document, video, recording or text that matched, best first")
    duplicates: list[Duplicate] | None = Field(
        None, description="near duplicates of this result folded into it (see `collapse`), best-ranked first")
    ocr_boxes: list[list[str | float]] | None = Field(
        None, description="pictures and scanned pages: [word, left, top, width, height] (fractions of the picture) "
                          "of the query's words printed in it")
    relevance: Relevance | None = None
    explanation: Explanation | None = None
    truncated: bool | None = Field(None, description="a text of this result was cut to MULTIMODAL_RESULT_TEXT_CHARS; "
                                                     "the whole item is at detail_url")


class Page(Schema):
    number: int
    size: int
    has_more: bool
    truncated: bool = Field(False, description="results were left off to keep the response within "
                                               "MULTIMODAL_MAX_RESPONSE_KB")
    total: int = Field(0, description="how many results the search found (after filters, grouping and min_score) "
                                      "among the candidates it read")
    total_is_lower_bound: bool = Field(False, description="true when a list was read to its depth "
                                                          "(MULTIMODAL_FUSION_CANDIDATES): there may be more")


class Match(Schema):
    good: int = Field(description="results on this page that match well (relevance fair or strong); 0: nothing "
                                  "matched well, the results are the closest weak matches")
    weak: int


class SearchResponse(Schema):
    query: dict = Field(description="what was understood: parts (with voice transcripts), fusion, filters")
    results: list[Result]
    page: Page
    match: Match
    timings_ms: dict[str, float]


class UploadAccepted(Schema):
    job_id: int
    status_url: str
    page_url: str


class Failure(Schema):
    name: str
    reason: str


class Table(Schema):
    name: str
    headers: list[str]
    mapping: dict[str, str | None] = Field(description="role (title, description, specs, image, id) -> column")
    rows: int
    notes: list[str] = Field([], description="how the file was read when it was not plainly: its encoding, headers cut")


class Job(Schema):
    id: int
    corpus: str
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    total: int
    done: int
    failed: int
    created: int = Field(description="items that are new (the rest of done updated existing items)")
    expanded: bool = Field(description="false until archives and tables are read into the total")
    items_per_s: float | None
    seconds_left: float | None
    error: str | None = Field(description="why the whole job failed, if it did")
    tables: list[Table] = Field(description="each CSV/XLSX and the columns it was read with")
    failures: list[Failure]
    failures_truncated: bool
    warnings: list[Failure] = Field(description="tables, rows and files that landed altered, each with what "
                                                "changed (text cut, cells dropped, read from another encoding)")
    warnings_truncated: bool
    retryable: bool = Field(description="some failed files can be retried (POST .../retry)")
    created_at: str
    started_at: str | None
    finished_at: str | None
    status_url: str
    page_url: str


class JobRetried(Job):
    retried: int


class DuplicateMember(Schema):
    id: int
    kind: Kind
    title: str
    corpus: str
    external_id: str | None
    width: int | None
    height: int | None
    thumbnail_url: str | None
    detail_url: str


class DuplicateGroup(Schema):
    group: int = Field(description="the group's name (pass it to /api/duplicates/resolve)")
    size: int
    items: list[DuplicateMember] = Field(description="the one to keep first: the largest picture, then the oldest")


class DuplicateGroups(Schema):
    level: Literal["same", "similar"]
    total: int = Field(description="groups of two items or more at this level")
    groups: list[DuplicateGroup] = Field(description="biggest first")


class DuplicateResolve(Schema):
    level: Literal["same", "similar"]
    group: int
    keep: list[int] = Field(min_length=1, description="the members to keep; the others are deleted with their "
                                                      "vectors and files")


class DuplicatesDeleted(Schema):
    deleted: int


class SavedSearchIn(Schema):
    name: str = Field(max_length=100, description="unique among your saved searches")
    params: dict[str, Any] = Field(
        description="the search, as the search page's URL holds it: q, text_weight, parts (a list, or its JSON; text "
                    "and item parts only: uploaded images and recordings cannot be saved), item, item_weight, corpus, "
                    "kind, created_from, created_to, fusion, hybrid, group, keyword_weight, min_score, top_k")
    shared: bool = Field(False, description="list it for every signed-in person (staff only)")


class SavedSearchOut(Schema):
    id: int
    name: str
    params: dict[str, str] = Field(description="the search page's URL parameters")
    shared: bool
    owner: str
    mine: bool = Field(description="you own it: you may rename or delete it")
    created_at: str
    last_opened_at: str | None = Field(description="when you last opened it (the page's Open, or POST .../seen)")
    new_count: int | None = Field(description="items its filters let through ingested since you last opened it (one "
                                              "per document, recording, video or long text when it groups parts); "
                                              "null when it cannot run")
    error: str | None = Field(description="why it cannot run any more (an item or corpus it names is gone)")
    search_url: str = Field(description="the search page showing it")
    whats_new_url: str
    feed_url: str = Field(description="its Atom feed; the address holds a secret token: whoever has it reads the feed")


class WhatsNew(SearchResponse):
    saved_search: SavedSearchOut
    since: str | None = Field(description="your last opening; null: never, so new since it was saved")
