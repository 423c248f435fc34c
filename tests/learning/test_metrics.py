"""The metric code against figures worked out by hand on tiny fixed rankings."""
import math

import numpy as np
import pytest

from multimodal.learning.metrics import (
    metrics_mean, ndcg_at_k, percentile, query_metrics, recall_at_k, reciprocal_rank, vector_retrieval_metrics,
)

# Ranked ids, best first; 1 and 5 are found at ranks 2 and 4; 7 is relevant but never fetched.
RANKED = [3, 1, 4, 5, 9, 2]
RELEVANT = {1, 5, 7}


def test_recall_counts_the_share_of_relevant_ids_in_the_first_k():
    assert recall_at_k(RANKED, RELEVANT, 1) == 0.0
    assert recall_at_k(RANKED, RELEVANT, 2) == pytest.approx(1 / 3)
    assert recall_at_k(RANKED, RELEVANT, 5) == pytest.approx(2 / 3)
    assert recall_at_k(RANKED, RELEVANT, 10) == pytest.approx(2 / 3)  # shorter lists are not padded with hits


def test_reciprocal_rank_is_one_over_the_first_relevant_rank_or_zero():
    assert reciprocal_rank(RANKED, RELEVANT) == 0.5
    assert reciprocal_rank([3, 4, 9], RELEVANT) == 0.0
    assert reciprocal_rank([5], RELEVANT) == 1.0


def test_ndcg_divides_by_the_perfect_ranking_of_as_many_relevant_ids():
    dcg = 1 / math.log2(2 + 1) + 1 / math.log2(4 + 1)  # ranks 2 and 4
    ideal = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)  # three relevant ids on top
    assert ndcg_at_k(RANKED, RELEVANT, 10) == pytest.approx(dcg / ideal)
    assert ndcg_at_k(RANKED, RELEVANT, 10) == pytest.approx(0.49819, abs=1e-5)
    # Cut at k=3: only rank 2 counts, and the ideal is still three hits on top.
    assert ndcg_at_k(RANKED, RELEVANT, 3) == pytest.approx((1 / math.log2(3)) / ideal)
    assert ndcg_at_k([1, 5, 7], RELEVANT, 10) == pytest.approx(1.0)


def test_query_metrics_and_means_over_queries():
    first = query_metrics(RANKED, RELEVANT)
    second = query_metrics([8, 8, 8, 8, 8, 8, 8, 8, 8, 6], {6})  # found at rank 10
    assert first == pytest.approx({"recall@1": 0, "recall@5": 2 / 3, "recall@10": 2 / 3, "mrr": 0.5,
                                   "ndcg@10": 0.49819}, abs=1e-5)
    assert second == pytest.approx({"recall@1": 0, "recall@5": 0, "recall@10": 1, "mrr": 0.1,
                                    "ndcg@10": 1 / math.log2(11)})
    mean = metrics_mean([first, second])
    assert mean["mrr"] == pytest.approx(0.3)
    assert mean["recall@10"] == pytest.approx((2 / 3 + 1) / 2)


def test_a_query_without_relevant_ids_is_refused():
    with pytest.raises(ValueError, match="at least one relevant"):
        query_metrics([1, 2], set())


def test_percentiles_interpolate_between_measurements():
    assert percentile([10, 20, 30, 40], 50) == 25.0
    assert percentile([10, 20, 30, 40], 95) == pytest.approx(38.5)


def test_exact_vector_retrieval_ranks_by_inner_product():
    candidates = np.eye(3, dtype=np.float32)
    queries = np.array([[0.9, 0.1, 0.0], [0.0, 0.2, 0.8]], dtype=np.float32)
    # Query 0 ranks candidate 0 first (relevant: 0): RR 1. Query 1 ranks 2, 1, 0 (relevant: 1): RR 1/2.
    figures = vector_retrieval_metrics(queries, candidates, [{0}, {1}])
    assert figures["recall@1"] == 0.5
    assert figures["mrr"] == pytest.approx(0.75)
