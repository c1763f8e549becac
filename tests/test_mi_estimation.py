"""MI estimation: the per-sample bounds against NumPy, the estimator networks, and their config.

The NumPy references below are written from docs/method.md section 3, not from
`mi_keras.mi.bounds`: ``s_ijk = <g_i, L_jk>``, positive ``s_iik``, negatives ``j != i``.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import check_config_round_trip, check_saved_outputs

from mi_keras.enums import Bound, DVVariant
from mi_keras.mi import GlobalNetwork, IdentityUniform, LocalEncoder, MIEstimator, bounds

ROWS, POSITIONS, FEATURES = 7, 5, 6


def numpy_logsumexp(values: np.ndarray, axis: int) -> np.ndarray:
    peak = values.max(axis=axis, keepdims=True)
    return np.squeeze(peak, axis) + np.log(np.exp(values - peak).sum(axis=axis))


def numpy_softplus(values: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, values)


def numpy_scores(global_features: np.ndarray, local_features: np.ndarray) -> np.ndarray:
    """``s[i, j, k] = <g_i, L_jk>``, in float64."""
    g = global_features.astype(np.float64)
    local = local_features.astype(np.float64)
    scores = np.zeros((len(g), len(local), local.shape[1]))
    for i in range(len(g)):
        for j in range(len(local)):
            scores[i, j] = local[j] @ g[i]
    return scores


def numpy_mi(global_features, local_features, bound: str, positive_index=None) -> np.ndarray:
    """Per-row estimates; ``positive_index[i]`` is the column of row ``i``'s positive pair."""
    scores = numpy_scores(global_features, local_features)
    rows, columns, _ = scores.shape
    positive_index = np.arange(rows) if positive_index is None else np.asarray(positive_index)
    values = np.zeros(rows)
    for i in range(rows):
        p = positive_index[i]
        positive = scores[i, p]  # [positions]
        others = np.delete(scores[i], p, axis=0)  # [columns - 1, positions]
        if bound == "dv_exact":
            negative = numpy_logsumexp(others, 0) - np.log(columns - 1)
        elif bound == "dv_reference":
            # The official code: the positive is multiplied by 0, so exp(0) = 1 stays in.
            zeroed = scores[i] * (np.arange(columns) != p)[:, None]
            negative = np.log(np.exp(zeroed).sum(axis=0)) - np.log(columns - 1)
        elif bound == "jsd":
            values[i] = np.mean(-numpy_softplus(-positive) - numpy_softplus(others).mean(axis=0))
            continue
        elif bound == "infonce":
            values[i] = np.mean(positive - numpy_logsumexp(scores[i], 0)) + np.log(columns)
            continue
        values[i] = np.mean(positive - negative)
    return values


BOUND_CASES = {
    "dv_exact": (Bound.DV, DVVariant.EXACT),
    "dv_reference": (Bound.DV, DVVariant.REFERENCE),
    "jsd": (Bound.JSD, DVVariant.EXACT),
    "infonce": (Bound.INFONCE, DVVariant.EXACT),
}


@pytest.fixture
def features(rng):
    """Random ``[rows, D]`` global and ``[rows, positions, D]`` local features."""
    global_features = rng.normal(size=(ROWS, FEATURES)).astype("float32")
    local_features = rng.normal(size=(ROWS, POSITIONS, FEATURES)).astype("float32")
    return global_features, local_features


@pytest.mark.parametrize("case", list(BOUND_CASES))
def test_per_sample_mi_matches_numpy(features, case):
    bound, variant = BOUND_CASES[case]
    got = bounds.per_sample_mi(*features, bound=bound, dv_variant=variant)
    assert got.dtype == tf.float32 and got.shape == (ROWS,)
    np.testing.assert_allclose(got.numpy(), numpy_mi(*features, case), rtol=1e-5, atol=1e-5)


def test_reference_dv_differs_from_exact_dv(features):
    """The spurious exp(0) makes the reference variant strictly lower (a larger log-sum)."""
    exact = bounds.per_sample_mi(*features, dv_variant=DVVariant.EXACT).numpy()
    reference = bounds.per_sample_mi(*features, dv_variant=DVVariant.REFERENCE).numpy()
    assert np.all(reference < exact)


@pytest.mark.parametrize("case", list(BOUND_CASES))
@pytest.mark.parametrize("chunk_size", [1, 3, 7, 16])
def test_chunked_equals_unchunked(features, case, chunk_size):
    bound, variant = BOUND_CASES[case]
    whole = bounds.per_sample_mi(*features, bound=bound, dv_variant=variant)
    chunked = bounds.per_sample_mi(*features, bound=bound, dv_variant=variant, chunk_size=chunk_size)
    np.testing.assert_allclose(chunked.numpy(), whole.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", list(BOUND_CASES))
@pytest.mark.parametrize("chunk_size", [None, 2])
def test_positive_index_scores_a_subset_of_rows(features, case, chunk_size):
    """Rows 2..5 scored against all 7 columns equal rows 2..5 of the full computation."""
    bound, variant = BOUND_CASES[case]
    global_features, local_features = features
    subset = slice(2, 6)
    whole = bounds.per_sample_mi(global_features, local_features, bound=bound, dv_variant=variant)
    rows = bounds.per_sample_mi(
        global_features[subset],
        local_features,
        bound=bound,
        dv_variant=variant,
        positive_index=tf.range(2, 6),
        chunk_size=chunk_size,
    )
    np.testing.assert_allclose(rows.numpy(), whole.numpy()[subset], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        rows.numpy(),
        numpy_mi(global_features[subset], local_features, case, positive_index=[2, 3, 4, 5]),
        rtol=1e-5,
        atol=1e-5,
    )


@pytest.mark.parametrize("case", list(BOUND_CASES))
def test_bound_gradients_are_finite(features, case):
    """The exact DV masks the positive with -inf: its gradient must still be finite."""
    bound, variant = BOUND_CASES[case]
    global_features, local_features = (tf.Variable(value) for value in features)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(bounds.per_sample_mi(global_features, local_features, bound, variant))
    for gradient in tape.gradient(total, [global_features, local_features]):
        assert np.all(np.isfinite(gradient.numpy()))


@pytest.mark.parametrize("bound", list(Bound))
def test_batch_of_one_raises(bound):
    with pytest.raises(ValueError, match="at least 2"):
        bounds.per_sample_mi(tf.ones([1, 4]), tf.ones([1, 3, 4]), bound=bound)


def test_estimator_batch_of_one_raises():
    estimator = MIEstimator.for_classifier((8, 8, 1), num_classes=10, units=8)
    with pytest.raises(ValueError, match="at least 2"):
        estimator(tf.ones([1, 8, 8, 1]), tf.ones([1, 10]), training=False)


def train_estimator(steps: int = 100, batch: int = 64) -> tuple[MIEstimator, np.ndarray]:
    """An estimator trained to maximise the mean DV on (x, x @ W) pairs; returns it and W."""
    rng = np.random.default_rng(1)
    projection = rng.normal(size=(64, 10)).astype("float32") / 8.0
    keras.utils.set_random_seed(1)
    estimator = MIEstimator.for_classifier((8, 8, 1), num_classes=10, units=32)
    optimizer = keras.optimizers.Adam(1e-3)

    @tf.function
    def train_step(patterns):
        logits = tf.reshape(patterns, [batch, 64]) @ projection
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(estimator(patterns, logits, training=True))
        variables = estimator.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))

    for _ in range(steps):
        train_step(tf.constant(rng.uniform(size=(batch, 8, 8, 1)).astype("float32")))
    return estimator, projection


def test_dv_is_higher_on_dependent_pairs_than_on_shuffled_pairs():
    estimator, projection = train_estimator()
    patterns = np.random.default_rng(2).uniform(size=(64, 8, 8, 1)).astype("float32")
    logits = patterns.reshape(64, 64) @ projection
    matched = estimator(patterns, logits, training=False).numpy().mean()
    shuffled = estimator(patterns, np.roll(logits, 1, axis=0), training=False).numpy().mean()
    # Measured: matched 4.8, shuffled -11.5 after 100 steps (1.8 and -1.6 after 50).
    assert matched > 1.0, matched
    assert matched > shuffled + 2.0, (matched, shuffled)


@pytest.mark.parametrize("size, positions", [(32, 64), (28, 49), (8, 4)])
def test_local_encoder_positions(size, positions):
    encoder = LocalEncoder(units=8)
    features = encoder(tf.zeros([2, size, size, 3]), training=False)
    assert features.shape == (2, positions, 8)
    assert encoder.compute_output_shape((None, size, size, 3)) == (None, positions, 8)


@pytest.mark.parametrize("shape", [(5, 7), (7, 5), (1, 1, 4, 6)])
def test_identity_uniform_puts_ones_on_the_diagonal(shape):
    kernel = IdentityUniform(limit=0.01, seed=3)(shape).numpy().reshape(shape[-2], shape[-1])
    diagonal = np.eye(*kernel.shape, dtype=bool)
    np.testing.assert_array_equal(kernel[diagonal], 1.0)
    off_diagonal = kernel[~diagonal]
    assert np.all(np.abs(off_diagonal) <= 0.01) and np.std(off_diagonal) > 1e-3


def test_estimator_shortcuts_start_as_identity():
    estimator = MIEstimator.for_classifier((8, 8, 1), num_classes=10, units=16)
    local_kernel = estimator.local_encoder.shortcut.kernel.numpy()[0, 0]  # [128, 16]
    global_kernel = estimator.global_network.shortcut.kernel.numpy()  # [10, 16]
    np.testing.assert_array_equal(np.diag(local_kernel), 1.0)
    np.testing.assert_array_equal(np.diag(global_kernel), 1.0)


@pytest.mark.parametrize("bound, dv", [("dv", "exact"), ("dv", "reference"), ("jsd", "exact"), ("infonce", "exact")])
def test_estimator_config_round_trip(rng, tmp_path, bound, dv):
    estimator = MIEstimator.for_classifier((8, 8, 1), num_classes=10, units=8, bound=bound, dv=dv, chunk_size=3)
    patterns = rng.uniform(size=(6, 8, 8, 1)).astype("float32")
    logits = rng.normal(size=(6, 10)).astype("float32")
    # One training call moves the BatchNorm statistics away from their initial values.
    estimator(patterns, logits, training=True)
    check_config_round_trip(estimator)
    restored = check_saved_outputs(estimator, [patterns, logits], tmp_path / "estimator", {"training": False})
    assert restored.bound == Bound(bound) and restored.dv == DVVariant(dv)


def test_estimator_encode_and_score_compose(rng):
    estimator = MIEstimator.for_classifier((8, 8, 1), num_classes=10, units=8)
    patterns = rng.uniform(size=(4, 8, 8, 1)).astype("float32")
    logits = rng.normal(size=(4, 10)).astype("float32")
    local_features = estimator.encode(patterns, training=False)
    assert local_features.shape == (4, 4, 8)
    np.testing.assert_allclose(
        estimator.score(local_features, logits, training=False).numpy(),
        estimator(patterns, logits, training=False).numpy(),
        rtol=1e-6,
    )


def test_mismatched_units_raise():
    with pytest.raises(ValueError, match="units"):
        MIEstimator(local_encoder=LocalEncoder(units=8), global_network=GlobalNetwork(units=16))


@pytest.mark.parametrize(
    "arguments, name",
    [
        (dict(bound="mine"), "bound"),
        (dict(dv="approximate"), "dv"),
        (dict(chunk_size=0), "chunk_size"),
        (dict(units=0), "units"),
    ],
)
def test_bad_estimator_arguments_raise(arguments, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        MIEstimator(**{"units": 8, **arguments})
