"""The relevance arithmetic: robust backgrounds, the chance cut, levels and labels (numpy only)."""
import numpy as np
import pytest

from multimodal.retrieval import relevance

DIM = 64


def _unit(rows) -> np.ndarray:
    rows = np.atleast_2d(np.asarray(rows, dtype=np.float64))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def _background(rng, count=1000, modality="image", around=None, closeness=0.0):
    """Random unit vectors; ``around`` pulls them towards a vector (their cosine to it rises)."""
    vectors = rng.normal(size=(count, DIM))
    if around is not None:
        vectors = _unit(vectors) + closeness * around
    return _unit(vectors), (modality,) * count


def test_the_background_median_and_spread_ignore_the_few_items_that_do_match(rng):
    cosines = np.concatenate([rng.normal(0.2, 0.02, 980), np.full(20, 0.6)])
    found = relevance.baseline(cosines)
    assert found.median == pytest.approx(0.2, abs=0.005) and found.spread == pytest.approx(0.02, abs=0.003)
    assert np.std(cosines) > 0.05  # a plain standard deviation would be more than doubled by them


def test_the_best_chance_item_of_a_nonsense_query_is_weak_and_a_real_match_strong(rng):
    vectors, modalities = _background(rng)
    background = relevance.Background(vectors, modalities, vectors_searched=1000)
    query = _unit(rng.normal(size=DIM))[0]
    judge = relevance.Judge(vectors=[query], weights=[1.0], sources=["part 0"], background=background)
    best_by_chance = vectors[np.argmax(vectors @ query)]
    assert judge.judge({"image": best_by_chance}).label == "weak"
    close = _unit(query + 0.3 * _unit(rng.normal(size=DIM))[0])[0]  # cosine ≈ 0.96 where chance gives ≈ 0.4
    strong = judge.judge({"image": close})
    assert strong.label == "strong" and strong.level > 0.8 and strong.good
    assert judge.good_z == pytest.approx(np.sqrt(2 * np.log(1000)))


def test_a_larger_corpus_needs_a_higher_z_to_count_as_good():
    assert relevance.chance_z(10) < relevance.chance_z(1000) < relevance.chance_z(1_000_000)
    assert relevance.chance_z(0) == relevance.chance_z(2) > 0


def test_levels_rise_with_z_and_labels_cut_at_fair_and_strong():
    levels = [relevance.level_of(z, 3.0, 4.5) for z in (-1, 0, 1.5, 3.0, 3.75, 4.5, 6.0, 20)]
    assert levels == sorted(levels) and levels[0] == 0 and levels[-1] == 1
    assert levels[2] == pytest.approx(0.25) and levels[3] == pytest.approx(0.5) and levels[5] == pytest.approx(0.8)
    assert [relevance.label_of(level) for level in (0.49, 0.5, 0.79, 0.8)] == ["weak", "fair", "fair", "strong"]


def test_each_modality_is_judged_against_its_own_background_when_the_sample_holds_enough_of_it(rng):
    """A text query's cosines with texts sit far above those with pictures (as CLIP's do): a text at the texts'
    median is ordinary, however far it stands above the pictures."""
    query = _unit(rng.normal(size=DIM))[0]
    images, image_modalities = _background(rng, 900, "image")
    texts, text_modalities = _background(rng, 100, "text", around=query, closeness=0.8)
    background = relevance.Background(np.vstack([images, texts]), image_modalities + text_modalities, 1000)
    judge = relevance.Judge(vectors=[query], weights=[1.0], sources=["part 0"], background=background)
    ordinary_text = texts[np.argsort(texts @ query)[len(texts) // 2]]
    assert judge.judge({"text": ordinary_text}).label == "weak"
    pooled_z = relevance.part_baselines(query, background)[relevance.POOLED].z(float(ordinary_text @ query))
    assert pooled_z > judge.good_z  # judged against the pooled sample, it would have passed


def test_parts_are_weighed_negative_parts_do_not_lift_and_a_good_keyword_match_is_fair(rng):
    vectors, modalities = _background(rng)
    background = relevance.Background(vectors, modalities, 1000)
    wanted, unwanted = _unit(rng.normal(size=(2, DIM)))
    judge = relevance.Judge(vectors=[wanted, unwanted], weights=[1.0, -1.0], sources=["part 0", "part 1"],
                            background=background)
    like_unwanted = judge.judge({"image": unwanted})
    assert like_unwanted.label == "weak"
    assert [part.label for part in like_unwanted.parts] == ["weak", "strong"]
    assert judge.judge({"image": wanted}).label == "strong"
    assert judge.judge({"image": unwanted}, keyword_share=0.5).label == "fair"
    assert judge.judge({"image": unwanted}, keyword_share=0.3).label == "weak"


def test_without_a_background_only_keyword_matches_count():
    judge = relevance.Judge(vectors=[_unit(np.ones(DIM))[0]], weights=[1.0], sources=["part 0"], background=None)
    assert judge.judge({}).label == "weak" and judge.judge({}).z is None
    assert judge.judge({}, keyword_share=1.0).label == "fair"


def test_a_corpus_of_a_handful_of_vectors_calls_every_match_fair(rng):
    """Two pictures cannot tell a match from chance: the one that matches is not called weak for it."""
    vectors, modalities = _background(rng, count=relevance.MIN_BACKGROUND - 1)
    background = relevance.Background(vectors, modalities, len(vectors))
    judge = relevance.Judge(vectors=[vectors[0]], weights=[1.0], sources=["part 0"], background=background)
    assert judge.judge({"image": vectors[0]}).label == judge.judge({"image": vectors[1]}).label == "fair"
    assert judge.judge({}).label == "weak"
