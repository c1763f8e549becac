"""The default feature width of the MI estimators: the widest that costs no more than the classifier."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from mi_keras.mi.global_network import GlobalNetwork
from mi_keras.mi.local_encoder import LocalEncoder

# The paper's width (Zhou et al., ICML 2022) is the widest the rule picks.
PAPER_UNITS = 2048
CANDIDATE_UNITS = (64, 128, 256, 512, 1024, PAPER_UNITS)


def default_units(classifier: keras.Model, input_shape: Sequence[int]) -> int:
    """The widest of 64, 128, ..., 2048 whose estimator costs at most one classifier forward pass.

    The cost is the forward floating-point operations for ONE image, counted by TensorFlow's
    graph profiler on the traced graphs: the classifier's, and the estimator's local encoder
    on the image plus its global network on the logits (the in-batch score, which grows with
    the batch, is left out). A MIAT step runs the estimators a fixed number of times but the
    classifier once per attack step, so this keeps the estimators a bounded share of it.
    If even 64 units cost more than the classifier, 64 is returned.

    Measured with the zoo's classifiers on 10 classes:

    | classifier, input | classifier MFLOPs | width | estimator MFLOPs at it / at 2048 |
    |---|---|---|---|
    | CIFAR ResNet-18, 32x32x3 | 1,112 | 2048 (the paper's) | 633 / 633 |
    | TRADES small CNN, 28x28x1 | 20.0 | 128 | 18.2 / 486 |
    | small CNN (same padding), 8x8x1 | 3.2 | 256 | 2.3 / 47 |

    The narrower estimator loses nothing measurable as a probe there: trained 10 epochs
    against the PGD-trained small CNN on MNIST, 128 units separate matched from shuffled
    pairs by 2.67 nats (99.0% of samples ranked right), 2048 units by 2.06 (99.1%), for
    106 s of training against 1,437 (`python bench/estimator_width.py --estimator-epochs 10
    --widths 128 2048`).

    Example:
    ```python
    from mi_keras.mi import MIEstimator, default_units
    from mi_keras.models import build_classifier

    classifier = build_classifier("small_cnn", (28, 28, 1), 10)
    units = default_units(classifier, (28, 28, 1))  # 128
    estimator = MIEstimator.for_classifier((28, 28, 1), 10, classifier=classifier)  # the same
    ```

    Args:
        classifier: the model the estimators pair with (returns logits).
        input_shape: ``(height, width, channels)`` of its images.

    Returns:
        The number of units for `MIEstimator` (its `LocalEncoder` and `GlobalNetwork`).

    Raises:
        ValueError: if the classifier's operations cannot be counted (pass ``units`` then).
    """
    input_shape = tuple(int(size) for size in input_shape)
    image = tf.TensorSpec((1, *input_shape), tf.float32)
    classifier_flops = forward_flops(lambda x: classifier(x, training=False), image)
    if classifier_flops <= 0:
        raise ValueError("Could not count the classifier's floating-point operations; pass `units` explicitly.")
    num_classes = int(classifier.compute_output_shape((1, *input_shape))[-1])
    logits = tf.TensorSpec((1, num_classes), tf.float32)
    chosen = CANDIDATE_UNITS[0]
    for units in CANDIDATE_UNITS:
        local_encoder, global_network = LocalEncoder(units), GlobalNetwork(units)
        local_encoder.build(image.shape)
        global_network.build(logits.shape)
        flops = forward_flops(
            lambda x, z, local_encoder=local_encoder, global_network=global_network: (
                local_encoder(x, training=False),
                global_network(z, training=False),
            ),
            image,
            logits,
        )
        if flops > classifier_flops:
            break
        chosen = units
    return chosen


def forward_flops(function, *input_specs: tf.TensorSpec) -> int:
    """Floating-point operations of ``function`` traced on ``input_specs`` (TF's graph profiler)."""
    graph = tf.function(function).get_concrete_function(*input_specs).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return int(tf.compat.v1.profiler.profile(graph, options=options).total_float_ops)
