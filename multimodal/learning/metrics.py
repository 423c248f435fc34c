"""Retrieval metrics over ranked lists. Pure functions: numpy only, no Django.

A query's outcome is its ranked list of ids (best first, as far as it was fetched) and the set of
ids that are relevant to it. Gains are binary (an id is relevant or not).

- recall@k: the share of the relevant ids found in the first k (with one relevant id per query, as
  in the Flickr30k/COCO text->image protocol open_clip reports, this is "is it in the top k").
- reciprocal rank: 1 / rank of the first relevant id, 0 when none was fetched (MRR is its mean).
- nDCG@k: sum of 1/log2(rank + 1) over relevant ids in the first k, divided by the same sum for a
  perfect ranking (min(k, relevant) relevant ids on top).

Means are taken over queries; a query with no relevant id is a caller's mistake and raises.
"""
from __future__ import annotations

import math
from typing import Hashable, Iterable, Sequence

import numpy as np

RECALL_KS = (1, 5, 10)
NDCG_K = 10
METRIC_NAMES = tuple(f"recall@{k}" for k in RECALL_KS) + ("mrr", f"ndcg@{NDCG_K}")


def recall_at_k(ranked: Sequence[Hashable], relevant: set, k: int) -> float:
    _require(relevant)
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def reciprocal_rank(ranked: Sequence[Hashable], relevant: set) -> float:
    _require(relevant)
    for rank, item in enumerate(ranked, start=1):
        if item in relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked: Sequence[Hashable], relevant: set, k: int) -> float:
    _require(relevant)
    dcg = sum(1.0 / math.log2(rank + 1) for rank, item in enumerate(ranked[:k], start=1) if item in relevant)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(k, len(relevant)) + 1))
    return dcg / ideal


def query_metrics(ranked: Sequence[Hashable], relevant: set) -> dict[str, float]:
    """Every metric of METRIC_NAMES for one query."""
    ranked = list(ranked)
    out = {f"recall@{k}": recall_at_k(ranked, relevant, k) for k in RECALL_KS}
    out["mrr"] = reciprocal_rank(ranked, relevant)
    out[f"ndcg@{NDCG_K}"] = ndcg_at_k(ranked, relevant, NDCG_K)
    return out


def metrics_mean(per_query: Iterable[dict[str, float]]) -> dict[str, float]:
    """The mean of each metric over queries (an empty input gives an empty dict)."""
    rows = list(per_query)
    if not rows:
        return {}
    return {name: float(np.mean([row[name] for row in rows])) for name in rows[0]}


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation, as numpy computes it."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def vector_retrieval_metrics(queries: np.ndarray, candidates: np.ndarray, relevant: list[set[int]]) -> dict[str, float]:
    """Mean metrics when each query row ranks every candidate row by inner product (exact search).

    ``relevant[i]`` holds the candidate row numbers relevant to query row ``i``.
    """
    scores = np.asarray(queries, dtype=np.float32) @ np.asarray(candidates, dtype=np.float32).T
    order = np.argsort(-scores, axis=1, kind="stable")
    return metrics_mean(query_metrics(order[row].tolist(), wanted) for row, wanted in enumerate(relevant))


def _require(relevant: set) -> None:
    if not relevant:
        raise ValueError("a query needs at least one relevant id")
