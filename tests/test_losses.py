"""Losses against NumPy re-computations of the published formulas.

MIAT's loss (Eq. 8, docs/method.md section 7), the selection masks (Eq. 6), TRADES (Zhang et al.,
2019), MART (Wang et al., 2020) and the stage-1 estimator objectives (docs/method.md
section 6). Every reference is computed in float64 NumPy, independently of the library.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from mi_keras.enums import BaseLoss, EstimatorObjective, Selection
from mi_keras.losses import (
    base_loss,
    estimator_objectives,
    mart_loss,
    miat_loss,
    selection_masks,
    trades_loss,
)
from mi_keras.losses.batch_statistics import batch_cosine
from mi_keras.mi import MITerms

BATCH, CLASSES = 12, 5
MI_KEYS = MITerms._fields


def numpy_cosine(u: np.ndarray, v: np.ndarray) -> float:
    return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))


def numpy_softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def numpy_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return -np.log(numpy_softmax(logits)[np.arange(len(labels)), labels])


def numpy_kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``KL(p || q)`` per row."""
    return np.sum(p * (np.log(p) - np.log(q)), axis=-1)


@pytest.fixture
def mi_values(rng) -> dict[str, np.ndarray]:
    return {key: rng.normal(loc=1.0, size=BATCH).astype("float32") for key in MI_KEYS}


@pytest.fixture
def logits_and_labels(rng):
    clean = (2.0 * rng.normal(size=(BATCH, CLASSES))).astype("float32")
    adversarial = (2.0 * rng.normal(size=(BATCH, CLASSES))).astype("float32")
    labels = rng.integers(0, CLASSES, size=BATCH).astype("int32")
    return clean, adversarial, labels


def selected_mask(rng) -> np.ndarray:
    mask = (rng.uniform(size=BATCH) < 0.5).astype("float32")
    mask[:2] = 1.0  # at least two selected samples
    return mask


@pytest.mark.parametrize("lam", [0.0, 0.1, 2.0])
def test_miat_loss_matches_numpy(rng, mi_values, lam):
    selected = selected_mask(rng)
    a, b = mi_values["natural_mi_natural"], mi_values["natural_mi_adversarial"]
    c, d = mi_values["adversarial_mi_adversarial"], mi_values["adversarial_mi_natural"]
    a64, b64, c64, d64, m = (np.float64(v) for v in (a, b, c, d, selected))
    expected = abs(1.0 - numpy_cosine(a64 * m, b64 * m)) + abs(1.0 - numpy_cosine(d64 * m, c64 * m))
    expected += lam * np.mean((c64 - b64)[m > 0])
    terms = MITerms(
        natural_mi_natural=a, natural_mi_adversarial=b, adversarial_mi_natural=d, adversarial_mi_adversarial=c
    )
    got = miat_loss(terms, selected, lam)
    np.testing.assert_allclose(float(got), expected, rtol=1e-5, atol=1e-6)


def test_miat_loss_ignores_unselected_samples(rng, mi_values):
    selected = selected_mask(rng)
    changed = {key: np.where(selected > 0, value, 100.0 * value).astype("float32") for key, value in mi_values.items()}
    original = miat_loss(MITerms(**mi_values), selected, 0.3)
    after_change = miat_loss(MITerms(**changed), selected, 0.3)
    np.testing.assert_allclose(float(after_change), float(original), rtol=1e-6)


def test_miat_loss_is_zero_with_zero_gradient_when_nothing_is_selected(mi_values):
    variables = [tf.Variable(mi_values[key]) for key in MI_KEYS]
    with tf.GradientTape() as tape:
        loss = miat_loss(MITerms(*variables), tf.zeros([BATCH]), lam=0.5)
    assert float(loss) == 0.0
    for gradient in tape.gradient(loss, variables):
        values = tf.convert_to_tensor(gradient).numpy()
        assert np.all(np.isfinite(values)) and np.all(values == 0.0)


def test_miat_loss_gradient_is_finite_with_one_selected_sample(mi_values):
    selected = np.zeros(BATCH, "float32")
    selected[3] = 1.0
    variables = [tf.Variable(mi_values[key]) for key in MI_KEYS]
    with tf.GradientTape() as tape:
        loss = miat_loss(MITerms(*variables), selected, lam=0.5)
    assert np.isfinite(float(loss))
    for gradient in tape.gradient(loss, variables):
        assert np.all(np.isfinite(tf.convert_to_tensor(gradient).numpy()))


def test_batch_cosine(rng):
    u = rng.normal(size=BATCH).astype("float32")
    v = rng.normal(size=BATCH).astype("float32")
    np.testing.assert_allclose(float(batch_cosine(u, 3.0 * u)), 1.0, rtol=1e-6)
    np.testing.assert_allclose(float(batch_cosine(u, -0.5 * u)), -1.0, rtol=1e-6)
    expected = numpy_cosine(np.float64(u), np.float64(v))
    np.testing.assert_allclose(float(batch_cosine(u, v)), expected, rtol=1e-5)
    assert float(batch_cosine(u, np.zeros(BATCH, "float32"))) == 0.0


@pytest.mark.parametrize("selection", list(Selection))
def test_selection_masks_match_numpy(logits_and_labels, selection):
    clean, adversarial, labels = logits_and_labels
    labels = labels.copy()
    # Make some samples correct on x so that every mask has members.
    scores = clean if selection == Selection.LOGITS else numpy_softmax(clean, axis=0)
    labels[:6] = np.argmax(scores[:6], axis=-1)

    def predictions(logits):
        if selection == Selection.BATCH_SOFTMAX:
            return np.argmax(numpy_softmax(np.float64(logits), axis=0), axis=-1)
        return np.argmax(logits, axis=-1)

    natural_correct = predictions(clean) == labels
    adversarial_correct = predictions(adversarial) == labels
    masks = selection_masks(clean, adversarial, labels, selection)
    np.testing.assert_array_equal(masks["natural_correct"].numpy(), natural_correct)
    np.testing.assert_array_equal(masks["robust"].numpy(), natural_correct & adversarial_correct)
    np.testing.assert_array_equal(masks["fooled"].numpy(), natural_correct & ~adversarial_correct)
    assert masks["fooled"].numpy().sum() > 0


def test_batch_softmax_selection_differs_from_logits():
    """The official code's softmax over the batch axis is not the argmax of the logits."""
    logits = np.array([[5.0, 0.0], [6.0, 5.0]], "float32")  # both rows predict class 0
    labels = np.array([0, 0], "int32")
    by_logits = selection_masks(logits, logits, labels, Selection.LOGITS)
    by_batch = selection_masks(logits, logits, labels, Selection.BATCH_SOFTMAX)
    np.testing.assert_array_equal(by_logits["natural_correct"].numpy(), [1.0, 1.0])
    np.testing.assert_array_equal(by_batch["natural_correct"].numpy(), [1.0, 0.0])


@pytest.mark.parametrize("beta", [1.0, 6.0])
def test_trades_loss_matches_numpy(logits_and_labels, beta):
    clean, adversarial, labels = logits_and_labels
    c64, a64 = np.float64(clean), np.float64(adversarial)
    expected = numpy_cross_entropy(c64, labels) + beta * numpy_kl(numpy_softmax(c64), numpy_softmax(a64))
    got = trades_loss(clean, adversarial, labels, beta).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    dispatched = base_loss(BaseLoss.TRADES, clean, adversarial, labels, beta).numpy()
    np.testing.assert_allclose(dispatched, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("beta", [1.0, 6.0])
def test_mart_loss_matches_numpy(logits_and_labels, beta):
    clean, adversarial, labels = logits_and_labels
    c64, a64 = np.float64(clean), np.float64(adversarial)
    p_clean, p_adv = numpy_softmax(c64), numpy_softmax(a64)
    rows = np.arange(BATCH)
    wrong = p_adv.copy()
    wrong[rows, labels] = -np.inf
    boosted = numpy_cross_entropy(a64, labels) - np.log(1.0001 - wrong.max(axis=-1))
    expected = boosted + beta * numpy_kl(p_clean, p_adv) * (1.0 - p_clean[rows, labels])
    got = mart_loss(clean, adversarial, labels, beta).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    dispatched = base_loss(BaseLoss.MART, clean, adversarial, labels, beta).numpy()
    np.testing.assert_allclose(dispatched, expected, rtol=1e-5, atol=1e-5)


def test_ce_base_loss_is_cross_entropy_on_the_adversarial_logits(logits_and_labels):
    clean, adversarial, labels = logits_and_labels
    np.testing.assert_allclose(
        base_loss(BaseLoss.CE, clean, adversarial, labels, beta=6.0).numpy(),
        numpy_cross_entropy(np.float64(adversarial), labels),
        rtol=1e-5,
    )


def masks_from(natural_correct: np.ndarray, adversarial_correct: np.ndarray) -> dict[str, np.ndarray]:
    natural_correct = natural_correct.astype("float32")
    adversarial_correct = adversarial_correct.astype("float32")
    return {
        "natural_correct": natural_correct,
        "adversarial_correct": adversarial_correct,
        "robust": natural_correct * adversarial_correct,
        "fooled": natural_correct * (1.0 - adversarial_correct),
    }


def numpy_contrastive(mi: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> tuple[float, float]:
    """docs/method.md section 6 (contrastive), written on D = -I, for a batch with robust and fooled samples."""
    d_n_clean, d_n_adv = -np.float64(mi["natural_mi_natural"]), -np.float64(mi["natural_mi_adversarial"])
    d_a_adv, d_a_clean = -np.float64(mi["adversarial_mi_adversarial"]), -np.float64(mi["adversarial_mi_natural"])
    c, r, w = (np.float64(masks[key]) for key in ("natural_correct", "robust", "fooled"))
    natural_r = 5 * abs(1 - numpy_cosine(d_n_clean * r, d_n_adv * r)) + (r * d_n_clean).sum() / c.sum()
    natural_w = 5 * abs(numpy_cosine(d_n_clean * w, d_n_adv * w)) + (w * d_n_clean).sum() / c.sum()
    adversarial_w = 5 * abs(numpy_cosine(d_a_adv * w, d_a_clean * w)) + (w * d_a_adv).sum() / w.sum()
    adversarial_r = 8 * abs(1 - numpy_cosine(d_a_clean * r, d_a_adv * r))
    adversarial_r -= 0.1 * (r * d_a_adv).sum() / r.sum()
    return 1.0 * natural_w + 0.5 * natural_r, 1.0 * adversarial_w + 0.5 * adversarial_r


def test_contrastive_objective_matches_numpy(mi_values):
    natural_correct = np.arange(BATCH) < 8
    adversarial_correct = np.arange(BATCH) % 2 == 0  # 4 robust, 4 fooled among the correct
    masks = masks_from(natural_correct, adversarial_correct)
    natural, adversarial = estimator_objectives(EstimatorObjective.CONTRASTIVE, MITerms(**mi_values), masks)
    expected_natural, expected_adversarial = numpy_contrastive(mi_values, masks)
    assert np.isfinite(float(natural)) and np.isfinite(float(adversarial))
    np.testing.assert_allclose(float(natural), expected_natural, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(float(adversarial), expected_adversarial, rtol=1e-5, atol=1e-5)


def test_mim_objective_matches_numpy(mi_values):
    natural_correct = np.arange(BATCH) < 8
    adversarial_wrong = (np.arange(BATCH) % 3 == 0).astype("float32")
    masks = masks_from(natural_correct, adversarial_wrong == 0)
    natural, adversarial = estimator_objectives(EstimatorObjective.MIM, MITerms(**mi_values), masks)
    natural_mi = np.float64(mi_values["natural_mi_natural"])
    adversarial_mi = np.float64(mi_values["adversarial_mi_adversarial"])
    expected_natural = -np.mean(natural_mi[natural_correct])
    expected_adversarial = -np.mean(adversarial_mi[adversarial_wrong > 0])
    np.testing.assert_allclose(float(natural), expected_natural, rtol=1e-5)
    np.testing.assert_allclose(float(adversarial), expected_adversarial, rtol=1e-5)


@pytest.mark.parametrize("objective", list(EstimatorObjective))
def test_objectives_fall_back_to_the_batch_mean_of_d(mi_values, objective):
    """With no naturally-correct (and, for MIM, no adversarially-wrong) sample."""
    masks = masks_from(np.zeros(BATCH, bool), np.ones(BATCH, bool))  # none wrong on x_adv either
    variables = {key: tf.Variable(value) for key, value in mi_values.items()}
    with tf.GradientTape() as tape:
        natural, adversarial = estimator_objectives(objective, MITerms(**variables), masks)
    natural_mi = np.float64(mi_values["natural_mi_natural"])
    adversarial_mi = np.float64(mi_values["adversarial_mi_adversarial"])
    np.testing.assert_allclose(float(natural), -np.mean(natural_mi), rtol=1e-5)
    np.testing.assert_allclose(float(adversarial), -np.mean(adversarial_mi), rtol=1e-5)
    gradients = tape.gradient(natural + adversarial, list(variables.values()))
    for gradient in gradients:
        if gradient is not None:
            assert np.all(np.isfinite(tf.convert_to_tensor(gradient).numpy()))


@pytest.mark.parametrize("objective", list(EstimatorObjective))
def test_objectives_are_finite_when_only_some_masks_are_empty(mi_values, objective):
    """Correct samples exist but none is fooled (or none is robust): no NaN from empty cosines."""
    for adversarial_correct in (np.ones(BATCH, bool), np.zeros(BATCH, bool)):
        masks = masks_from(np.arange(BATCH) < 6, adversarial_correct)
        variables = {key: tf.Variable(value) for key, value in mi_values.items()}
        with tf.GradientTape() as tape:
            natural, adversarial = estimator_objectives(objective, MITerms(**variables), masks)
        assert np.isfinite(float(natural)) and np.isfinite(float(adversarial))
        for gradient in tape.gradient(natural + adversarial, list(variables.values())):
            if gradient is not None:
                assert np.all(np.isfinite(tf.convert_to_tensor(gradient).numpy()))
