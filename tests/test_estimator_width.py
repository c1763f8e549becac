"""The default estimator width follows the classifier's cost (issue 14, item 2)."""

import keras
import pytest
import tensorflow as tf

from mi_keras.mi import MIEstimator, default_units
from mi_keras.mi.estimator_width import CANDIDATE_UNITS, PAPER_UNITS, forward_flops
from mi_keras.mi.global_network import GlobalNetwork
from mi_keras.mi.local_encoder import LocalEncoder
from mi_keras.models.architectures.small_cnn import small_cnn

SHAPE = (8, 8, 1)


def _estimator_flops(units: int) -> int:
    local_encoder, global_network = LocalEncoder(units), GlobalNetwork(units)
    local_encoder.build((1, *SHAPE))
    global_network.build((1, 10))
    return forward_flops(
        lambda x, z: (local_encoder(x), global_network(z)),
        tf.TensorSpec((1, *SHAPE), tf.float32),
        tf.TensorSpec((1, 10), tf.float32),
    )


def test_forward_flops_counts_a_matrix_product():
    dense = keras.layers.Dense(3, use_bias=False)
    dense.build((1, 4))
    assert forward_flops(dense, tf.TensorSpec((1, 4), tf.float32)) == 2 * 4 * 3


def test_width_is_the_widest_that_costs_at_most_the_classifier():
    classifier = small_cnn(SHAPE, 10, padding="same")
    units = default_units(classifier, SHAPE)
    classifier_flops = forward_flops(lambda x: classifier(x), tf.TensorSpec((1, *SHAPE), tf.float32))
    assert _estimator_flops(units) <= classifier_flops
    wider = CANDIDATE_UNITS.index(units) + 1
    assert wider < len(CANDIDATE_UNITS) and _estimator_flops(CANDIDATE_UNITS[wider]) > classifier_flops


def test_cheaper_classifier_gets_a_narrower_estimator_and_for_classifier_uses_the_rule():
    cheap = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(10)])
    costly = small_cnn(SHAPE, 10, padding="same")
    assert default_units(cheap, SHAPE) == CANDIDATE_UNITS[0] < default_units(costly, SHAPE)
    estimator = MIEstimator.for_classifier(SHAPE, 10, classifier=cheap)
    assert estimator.units == CANDIDATE_UNITS[0]
    assert MIEstimator.for_classifier(SHAPE, 10, units=16, classifier=costly).units == 16


def test_without_a_classifier_the_paper_width_is_kept():
    assert MIEstimator.for_classifier(SHAPE, 10).units == PAPER_UNITS == 2048


def test_uncountable_classifier_raises():
    identity = keras.Sequential([keras.Input((10,)), keras.layers.Activation("linear")])
    with pytest.raises(ValueError, match="pass `units`"):
        default_units(identity, (10,))
