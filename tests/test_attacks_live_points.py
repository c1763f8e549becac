"""Live-point work: APGD, APGD-T and FAB compute only on the samples whose outcome can change.

Each run (restart or target class) gathers the samples still robust, and a sample leaves a
run once it is fooled. These tests check what that must not change: a sample is attacked as
if the others were not there, a fooled sample is not touched by later runs, and one trace
serves every batch size (inside ``tf.function`` and `AutoAttack.run`).
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from toy_models import LINF_EPS, accuracy

from mi_keras.attacks.apgd import APGD
from mi_keras.attacks.apgd_targeted import APGDTargeted
from mi_keras.attacks.auto_attack import AutoAttack
from mi_keras.attacks.fab import FAB
from mi_keras.attacks.geometry import perturbation_norm

# Several runs each, so that later runs see fewer live samples than the first.
ATTACKS = {
    "apgd-ce-3-restarts": lambda targets=3: APGD(LINF_EPS, steps=10, restarts=targets, seed=0),
    "apgd-t": lambda targets=3: APGDTargeted(LINF_EPS, steps=10, n_target_classes=targets, seed=0),
    "fab-t": lambda targets=3: FAB(LINF_EPS, steps=10, targeted=True, n_target_classes=targets, seed=0),
}


def predicted(model, x) -> np.ndarray:
    return np.argmax(model(x), -1)


@pytest.mark.parametrize("name", list(ATTACKS))
def test_a_sample_is_attacked_as_if_the_others_were_not_there(digits_classifier, name):
    model, x, y = digits_classifier
    attack = ATTACKS[name]()
    kept = np.arange(len(y)) % 2 == 0
    # The other samples get a label the model does not predict: misclassified from the start,
    # they are never attacked, so the kept samples run with half the live batch.
    labels = np.where(kept, y, (predicted(model, x) + 1) % 10).astype(np.int32)
    together = attack(model, x, y).numpy()
    half = attack(model, x, labels).numpy()
    # Equal up to float rounding (vectorised kernels round a batch's tail differently).
    np.testing.assert_allclose(half[kept], together[kept], atol=1e-5)
    np.testing.assert_array_equal(half[~kept], np.asarray(x)[~kept])
    assert accuracy(model, together, y) < accuracy(model, x, y) - 0.2


@pytest.mark.parametrize("name", list(ATTACKS))
def test_later_runs_do_not_touch_the_samples_already_fooled(digits_classifier, name):
    model, x, y = digits_classifier
    one_run = ATTACKS[name](targets=1)(model, x, y).numpy()
    three_runs = ATTACKS[name](targets=3)(model, x, y).numpy()
    fooled_by_the_first = predicted(model, one_run) != y
    assert fooled_by_the_first.sum() > 10
    np.testing.assert_array_equal(three_runs[fooled_by_the_first], one_run[fooled_by_the_first])
    assert accuracy(model, three_runs, y) <= accuracy(model, one_run, y)


@pytest.mark.parametrize("name", list(ATTACKS))
def test_one_trace_serves_every_batch_size_and_matches_a_static_trace(digits_classifier, name):
    model, x, y = digits_classifier
    attack = ATTACKS[name]()
    traces = []

    def attacked(images, labels):
        traces.append(images.shape)  # runs once per trace
        return attack(model, images, labels)

    signature = [tf.TensorSpec([None, *x.shape[1:]], tf.float32), tf.TensorSpec([None], tf.int32)]
    dynamic = tf.function(attacked, input_signature=signature)
    for size in (64, 37, 5):
        x_adv = dynamic(x[:size], y[:size])
        assert perturbation_norm(x_adv - x[:size], attack.threat_model).numpy().max() <= LINF_EPS + 1e-5
    assert len(traces) == 1
    static = tf.function(lambda images, labels: attack(model, images, labels))(x[:37], y[:37])
    np.testing.assert_array_equal(static.numpy(), dynamic(x[:37], y[:37]).numpy())


def test_autoattack_traces_each_attack_once_across_chunks(digits_classifier):
    model, x, y = digits_classifier
    auto_attack = AutoAttack(LINF_EPS, version="standard", steps=5, queries=20, batch_size=48, seed=0)
    result = auto_attack.run(model, x[:120], y[:120])  # chunks of 48, 48, 24, then fewer
    assert result.robust_accuracy_after["square"] < result.clean_accuracy
    functions = [function for _, function in auto_attack._functions.values()]
    assert len(functions) == 5  # the predictor and the four attacks
    assert [function.experimental_get_tracing_count() for function in functions] == [1] * 5


@pytest.mark.parametrize("name", list(ATTACKS))
def test_the_model_is_queried_only_on_samples_still_robust(digits_classifier, name):
    model, x, y = digits_classifier
    sizes = []

    def counting_model(images, training=False):
        sizes.append(int(images.shape[0]))  # eager call: one entry per model query
        return model(images, training=training)

    x_adv = ATTACKS[name]()(counting_model, x, y)
    clean_robust = int(np.sum(predicted(model, x) == y))
    robust_after = int(np.sum(predicted(model, x_adv) == y))
    assert sizes[0] == len(y)  # the clean prediction
    # Never the misclassified samples, always the samples that stay robust.
    assert max(sizes[1:]) <= clean_robust < len(y)
    assert min(sizes) >= robust_after
    # Fooled samples leave: on average a query covers far fewer samples than the first run's.
    assert np.mean(sizes[1:]) < 0.75 * clean_robust, (np.mean(sizes[1:]), clean_robust, robust_after)
