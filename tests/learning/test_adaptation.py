"""The adapter network really learns a domain, is the identity untrained, and reloads exactly from its file."""
import numpy as np
import pytest

from multimodal.learning.adaptation import AdapterWeights, TrainingConfig, adapter_fit, holdout_split, pairs_evaluate

from ..adapter_domain import domain_vectors

PAIRS = 500


def _split(count: int):
    return holdout_split(list(range(count)), fraction=0.2, seed=0)


def test_held_out_recall_rises_from_chance_to_above_0_9_on_a_rotated_domain():
    texts, images = domain_vectors(PAIRS)
    train, held = _split(PAIRS)
    groups = list(range(len(held)))
    before = pairs_evaluate(texts[held], images[held], groups)
    adapter = adapter_fit(texts[train], images[train], config=TrainingConfig())
    after = pairs_evaluate(texts[held], images[held], groups, adapter=adapter)
    chance = 1 / len(held)
    assert before["text_to_image"]["recall@1"] <= 3 * chance
    assert after["text_to_image"]["recall@1"] > 0.9
    assert after["image_to_text"]["recall@1"] > 0.9
    assert after["text_to_image"]["mrr"] > before["text_to_image"]["mrr"] + 0.8


def test_training_on_shuffled_pairs_does_not_raise_held_out_recall():
    texts, images = domain_vectors(PAIRS)
    train, held = _split(PAIRS)
    shuffled = np.random.default_rng(1).permutation(train)
    adapter = adapter_fit(texts[train], images[shuffled], config=TrainingConfig())
    after = pairs_evaluate(texts[held], images[held], list(range(len(held))), adapter=adapter)
    assert after["text_to_image"]["recall@1"] <= 3 / len(held)
    assert after["text_to_image"]["recall@10"] < 0.2


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_an_untrained_adapter_is_the_identity_and_a_saved_one_reloads_exactly(kind, tmp_path):
    texts, images = domain_vectors(40)
    untrained = adapter_fit(texts, images, config=TrainingConfig(kind=kind, epochs=1, learning_rate=1e-12))
    np.testing.assert_allclose(untrained.apply(images, "image"), images, atol=1e-5)
    trained = adapter_fit(texts, images, config=TrainingConfig(kind=kind, epochs=3, sides=("image",)))
    trained.save(tmp_path / "a.npz")
    loaded = AdapterWeights.load(tmp_path / "a.npz")
    np.testing.assert_allclose(loaded.apply(images, "image"), trained.apply(images, "image"), atol=1e-6)
    assert np.abs(loaded.apply(images, "image") - images).max() > 1e-3
    np.testing.assert_array_equal(loaded.apply(texts, "text"), texts)  # a side without a head passes through
    assert np.allclose(np.linalg.norm(loaded.apply(images, "image"), axis=1), 1.0, atol=1e-5)


def test_holdout_keeps_every_pair_of_an_image_on_one_side():
    groups = ["a", "a", "b", "c", "c", "c", "d", "e", "f", "g"]
    train, held = holdout_split(groups, fraction=0.3, seed=4)
    assert {groups[row] for row in train}.isdisjoint({groups[row] for row in held})
    assert len({groups[row] for row in held}) == 2  # 30% of 7 images
