"""How good a match is, on one scale whatever the fusion mode. Pure functions: numpy only, no Django.

A fused score's scale depends on the mode's arithmetic (rrf ≈ 0.02, a cosine 0.3–1.0, above 1 with
the keyword boost) and a cosine's on the encoder (CLIP's text-to-image cosines sit near 0.3, its
text-to-text ones near 0.8). So a result is judged instead by how far its similarity to each query
part stands above that part's similarity to the corpus at large: the *background*, a random sample
of the searched corpora's stored vectors in the index's own space (`services.search` draws it).

- Each positive part's background gives a robust location and spread (median and 1.4826 × MAD, per
  stored-vector modality when the sample holds enough of it, else pooled): the items that do match
  are a minority of the sample, and a median ignores them where a mean and standard deviation would
  be dragged up by them. A hit's *z* for that part is ``(cosine − median) / spread`` with its
  closest stored vector; its z for the query is the weighted mean over the positive parts (negative
  parts reorder results but do not make one a better match).
- The cut between a good match and a weak one is how far the best of N unrelated items would
  stand by chance: about ``sqrt(2 ln N)`` spreads for N draws from a bell curve, N being the number
  of vectors searched. A nonsense query's best hits sit there; a query naming what the corpus holds
  finds items far beyond it. ``good_z`` overrides it (settings.MULTIMODAL_RELEVANCE_GOOD_Z): with
  `evaluate` data for the corpus, the z that best separates the relevant items' z from the other
  hits' (e.g. the one maximising F1 over a query set's judged top hits) is the value to set.
- A keyword match counts on its own, for hits the vectors do not support: one scoring at least half
  the query's best keyword match (bm25; a word in the title weighs more than one in the text) is a
  fair match, a lesser one weak (``KEYWORD_LEVEL``, ``KEYWORD_FAIR_SHARE``).

A corpus of a handful of vectors has no "rest of the corpus" to stand out from: below
``MIN_BACKGROUND`` sampled vectors every result with vectors is called fair, none weak.

The result is a level in [0, 1] (0.5 at the cut, 0.8 at ``strong_margin_z`` spreads above it) and a
label: strong, fair or weak.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

MAD_TO_SPREAD = 1.4826  # MAD × this estimates a bell curve's standard deviation
# Cosines closer than this are noise: a background whose items all score alike must not turn a tiny
# difference into a large z.
MIN_SPREAD = 0.01
# A modality is judged against its own background when the sample holds at least this many of its
# vectors (a text query's cosines with texts and with images differ in scale); else the pooled one.
MIN_MODALITY_SAMPLE = 30
MIN_BACKGROUND = 8
FAIR_LEVEL, STRONG_LEVEL = 0.5, 0.8
KEYWORD_LEVEL, KEYWORD_FAIR_SHARE = 0.6, 0.5
DEFAULT_STRONG_MARGIN_Z = 1.5
LABELS = ("weak", "fair", "strong")
POOLED = "*"


@dataclass(frozen=True)
class Background:
    """A random sample of the searched vectors: one row per stored vector, with its modality."""

    vectors: np.ndarray  # (n, dim) unit vectors, float32
    modalities: tuple[str, ...]
    vectors_searched: int  # how many vectors the sampled corpora hold (estimated), the N of the chance cut

    def __post_init__(self):
        if len(self.modalities) != len(self.vectors):
            raise ValueError("one modality per background vector")


@dataclass(frozen=True)
class Baseline:
    median: float
    spread: float

    def z(self, cosine: float) -> float:
        return (cosine - self.median) / self.spread


def baseline(cosines: np.ndarray) -> Baseline:
    """The robust location and spread of one part's background cosines."""
    median = float(np.median(cosines))
    spread = MAD_TO_SPREAD * float(np.median(np.abs(cosines - median)))
    return Baseline(median, max(spread, MIN_SPREAD))


def part_baselines(query_vector: np.ndarray, background: Background) -> dict[str, Baseline]:
    """{modality or POOLED: Baseline} of one query vector against the background."""
    cosines = background.vectors @ np.asarray(query_vector, dtype=np.float32)
    modalities = np.asarray(background.modalities)
    baselines = {POOLED: baseline(cosines)}
    for modality in set(background.modalities):
        own = cosines[modalities == modality]
        if len(own) >= MIN_MODALITY_SAMPLE:
            baselines[modality] = baseline(own)
    return baselines


def chance_z(vectors_searched: int) -> float:
    """How many spreads above the median the best of ``vectors_searched`` unrelated items lands, about."""
    return math.sqrt(2 * math.log(max(vectors_searched, 2)))


def level_of(z: float, good_z: float, strong_z: float) -> float:
    """z on [0, 1]: 0 at the median, FAIR_LEVEL at ``good_z``, STRONG_LEVEL at ``strong_z``, 1 a margin beyond."""
    if z <= 0:
        return 0.0
    if z < good_z:
        return FAIR_LEVEL * z / good_z
    margin = strong_z - good_z
    if z < strong_z:
        return FAIR_LEVEL + (STRONG_LEVEL - FAIR_LEVEL) * (z - good_z) / margin
    return min(1.0, STRONG_LEVEL + (1 - STRONG_LEVEL) * (z - strong_z) / margin)


def label_of(level: float) -> str:
    return "strong" if level >= STRONG_LEVEL else "fair" if level >= FAIR_LEVEL else "weak"


@dataclass(frozen=True)
class PartJudgement:
    source: str  # as in fusion.Ranking, e.g. "part 0"
    weight: float
    z: float | None  # None: the item has no vector to compare
    level: float
    label: str


@dataclass(frozen=True)
class Judgement:
    level: float
    label: str
    z: float | None  # the vectors' weighted z over the positive parts (None without vectors or positive parts)
    good_z: float  # the z of the cut between good and weak matches, and of a strong one
    strong_z: float
    parts: list[PartJudgement] = field(default_factory=list)
    keyword_share: float | None = None  # the item's keyword score over the query's best (None: no keyword match)

    @property
    def good(self) -> bool:
        return self.level >= FAIR_LEVEL


class Judge:
    """Judges items against one query in one index: built once per query and index, then per item.

    Without a ``background`` (the corpora hold no vectors yet) only keyword matches count; with one
    of fewer than MIN_BACKGROUND vectors, every item with vectors is a fair match.
    """

    def __init__(self, *, vectors: list[np.ndarray], weights: list[float], sources: list[str],
                 background: Background | None, good_z: float | None = None,
                 strong_margin_z: float = DEFAULT_STRONG_MARGIN_Z):
        self.vectors = [np.asarray(vector, dtype=np.float32) for vector in vectors]
        self.weights = weights
        self.sources = sources
        usable = background is not None and len(background.vectors) >= MIN_BACKGROUND
        self.too_few = background is not None and not usable
        self.baselines = [part_baselines(vector, background) if usable else {} for vector in self.vectors]
        self.good_z = good_z if good_z is not None else chance_z(background.vectors_searched if background else 0)
        self.strong_z = self.good_z + strong_margin_z

    def judge(self, item_vectors: dict[str, np.ndarray], *, keyword_share: float | None = None) -> Judgement:
        """An item's judgement from its stored vectors {modality: unit vector} (in this index's space) and its
        keyword score as a share of the query's best keyword score."""
        parts = [self._part(vector, weight, source, baselines, item_vectors)
                 for vector, weight, source, baselines in zip(self.vectors, self.weights, self.sources, self.baselines)]
        positive = [part for part in parts if part.weight > 0 and part.z is not None]
        z = (sum(part.weight * part.z for part in positive) / sum(part.weight for part in positive)
             if positive else None)
        if z is not None:
            level = level_of(z, self.good_z, self.strong_z)
        else:
            level = FAIR_LEVEL if self.too_few and item_vectors else 0.0
        if keyword_share is not None:
            level = max(level, KEYWORD_LEVEL * min(max(keyword_share, 0.0) / KEYWORD_FAIR_SHARE, 1.0))
        return Judgement(level=round(level, 3), label=label_of(level), z=z, good_z=self.good_z, strong_z=self.strong_z,
                         parts=parts, keyword_share=keyword_share)

    def _part(self, vector, weight, source, baselines, item_vectors) -> PartJudgement:
        """How far the item's closest vector to this part stands above the part's background."""
        scored = [baselines.get(modality, baselines[POOLED]).z(float(np.dot(stored, vector)))
                  for modality, stored in item_vectors.items()] if baselines else []
        if not scored:
            return PartJudgement(source, weight, None, 0.0, "weak")
        z = max(scored)
        level = level_of(z, self.good_z, self.strong_z)
        return PartJudgement(source, weight, z, level, label_of(level))
