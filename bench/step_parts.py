"""Benchmark: where a MIAT step's time goes beyond the AT step, and what the fused MI terms save.

Times, interleaved in one process (so machine noise hits all alike), the parts of a step on
the same classifier, batch and attack as `bench/train_step.py`: the PGD-10 attack, the
training forward+backward of ``h(x_adv)`` (all that AT adds to the attack), the same with
``h(x)`` too (MIAT differentiates through both), the two local encoders (no gradient), and
``h(x_adv) + h(x)`` with the MI loss, its four terms computed by `mi_terms` (fused: each
frozen global network once on both logits) or by four separate `MIEstimator.score` calls
(plain). Also the MI terms alone (forward and backward to the logits), fused vs plain, and
optionally (``--bf16``) the local encoders in bfloat16 (not adopted: it changes the values).

Prints, per part, the best wall time and the median process CPU time (the CPU time is the
steadier figure on a shared machine), then ratios. Tracing is outside the timings.

    python bench/step_parts.py [--repeats 5] [--case resnet18] [--bf16]
    python bench/step_parts.py --quick     # a smoke run (make bench-quick)
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from mi_keras.attacks import PGD  # noqa: E402
from mi_keras.losses import miat_loss  # noqa: E402
from mi_keras.mi import LocalEncoder, MIEstimator, MITerms, mi_terms, pattern_features  # noqa: E402
from mi_keras.models import build_classifier  # noqa: E402

CASES = {
    "resnet18": {"architecture": "resnet18", "shape": (32, 32, 3), "batch": 32, "eps": 8 / 255},
    "small_cnn": {"architecture": "small_cnn", "shape": (28, 28, 1), "batch": 128, "eps": 0.3},
}


def plain_terms(natural, adversarial, features, clean_logits, adversarial_logits) -> MITerms:
    """The four terms as four separate estimator calls (the formulation `mi_terms` replaces)."""
    natural_features, adversarial_features = features
    return MITerms(
        natural.score(natural_features, clean_logits, training=False),
        natural.score(natural_features, adversarial_logits, training=False),
        adversarial.score(adversarial_features, clean_logits, training=False),
        adversarial.score(adversarial_features, adversarial_logits, training=False),
    )


def bfloat16_copy(estimator: MIEstimator, shape) -> MIEstimator:
    """The same estimator with its local encoder computing in bfloat16."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")  # the encoder's sub-layers are built with it
    try:
        encoder = LocalEncoder(estimator.units, name="local_encoder")
    finally:
        keras.config.set_dtype_policy(previous)
    copy = MIEstimator(local_encoder=encoder, units=estimator.units)
    copy.build((None, *shape), (None, estimator.num_classes))
    copy.set_weights(estimator.get_weights())
    return copy


def make_parts(case, bf16: bool):
    keras.utils.set_random_seed(0)
    shape, batch = case["shape"], case["batch"]
    classifier = build_classifier(case["architecture"], shape, 10)
    attack = PGD(case["eps"], steps=10)
    natural, adversarial = (MIEstimator.for_classifier(shape, 10, units=2048) for _ in range(2))
    rng = np.random.default_rng(0)
    x = tf.constant(rng.random((batch, *shape), dtype=np.float32))
    y = tf.constant(rng.integers(0, 10, batch).astype(np.int32))
    x_adv = attack(classifier, x, y)
    features = [tf.stop_gradient(f) for f in pattern_features(natural, adversarial, x, x_adv, training=False)]
    variables = classifier.trainable_variables
    everyone = tf.ones([batch])

    def cross_entropy(logits):
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))

    @tf.function
    def attack_part():
        return attack(classifier, x, y, seed=tf.constant([1, 2], tf.int64))

    @tf.function
    def adversarial_forward_backward():
        with tf.GradientTape() as tape:
            loss = cross_entropy(classifier(x_adv, training=True))
        return tape.gradient(loss, variables)

    @tf.function
    def both_forward_backward():
        with tf.GradientTape() as tape:
            clean = classifier(x, training=True)
            loss = cross_entropy(classifier(x_adv, training=True)) + 1e-3 * tf.reduce_mean(clean)
        return tape.gradient(loss, variables)

    def with_mi(terms_of):
        @tf.function
        def step():
            with tf.GradientTape() as tape:
                adversarial_logits = classifier(x_adv, training=True)
                clean_logits = classifier(x, training=True)
                terms = terms_of(clean_logits, adversarial_logits)
                loss = cross_entropy(adversarial_logits) + 5.0 * miat_loss(terms, everyone, 0.1)
            return tape.gradient(loss, variables)

        return step

    def fused(clean_logits, adversarial_logits):
        return mi_terms(natural, adversarial, *features, clean_logits, adversarial_logits, training=False)

    def plain(clean_logits, adversarial_logits):
        return plain_terms(natural, adversarial, features, clean_logits, adversarial_logits)

    logits = [tf.Variable(classifier(x)), tf.Variable(classifier(x_adv))]

    def terms_alone(terms_of):
        @tf.function
        def step():
            with tf.GradientTape() as tape:
                loss = miat_loss(terms_of(*logits), everyone, 0.1)
            return tape.gradient(loss, logits)

        return step

    @tf.function
    def encoders():
        return pattern_features(natural, adversarial, x, x_adv, training=False)

    parts = {
        "attack (PGD-10)": attack_part,
        "h(x_adv) fwd+bwd": adversarial_forward_backward,
        "h(x_adv) + h(x) fwd+bwd": both_forward_backward,
        "h both + MI loss, fused": with_mi(fused),
        "h both + MI loss, plain": with_mi(plain),
        "MI terms alone, fused": terms_alone(fused),
        "MI terms alone, plain": terms_alone(plain),
        "local encoders": encoders,
    }
    if bf16:
        natural_16, adversarial_16 = bfloat16_copy(natural, shape), bfloat16_copy(adversarial, shape)
        parts["local encoders, bfloat16"] = tf.function(
            lambda: pattern_features(natural_16, adversarial_16, x, x_adv, training=False)
        )
    return parts


def measure(parts, repeats):
    def run(function):
        tf.nest.map_structure(lambda tensor: tensor.numpy(), function())

    for function in parts.values():  # trace and warm up
        run(function)
        run(function)
    wall = {name: [] for name in parts}
    cpu = {name: [] for name in parts}
    for _ in range(repeats):
        for name, function in parts.items():
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            run(function)
            wall[name].append(time.perf_counter() - wall_start)
            cpu[name].append(time.process_time() - cpu_start)
    return {name: min(values) for name, values in wall.items()}, {name: float(np.median(v)) for name, v in cpu.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--case", default="resnet18", choices=list(CASES))
    parser.add_argument("--bf16", action="store_true", help="also time bfloat16 local encoders")
    parser.add_argument("--quick", action="store_true", help="smoke run: one repeat (make bench-quick)")
    args = parser.parse_args()
    if args.quick:
        args.repeats = 1
    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    case = CASES[args.case]
    wall, cpu = measure(make_parts(case, args.bf16), args.repeats)
    print(f"{args.case}: batch {case['batch']} {case['shape']}, PGD-10, 2048-unit estimators, {args.repeats} repeats")
    for name in wall:
        print(f"  {name:28s} wall best {wall[name]:7.3f} s   cpu median {cpu[name]:7.3f} s")
    at = cpu["attack (PGD-10)"] + cpu["h(x_adv) fwd+bwd"]
    extra = {
        "h(x) fwd+bwd": cpu["h(x_adv) + h(x) fwd+bwd"] - cpu["h(x_adv) fwd+bwd"],
        "local encoders": cpu["local encoders"],
        "MI terms (fused)": cpu["h both + MI loss, fused"] - cpu["h(x_adv) + h(x) fwd+bwd"],
    }
    print(f"  AT parts (attack + h(x_adv) fwd+bwd): cpu {at:.3f} s; MIAT's extra parts, as a fraction of them:")
    for name, value in extra.items():
        print(f"    {name:26s} {value / at:6.3f}")
    print(f"  parts ratio MIAT / AT (cpu) {(at + sum(extra.values())) / at:.3f}")
    print(f"  MI terms alone, fused / plain (cpu) {cpu['MI terms alone, fused'] / cpu['MI terms alone, plain']:.3f}")
    if args.bf16:
        print(
            f"  local encoders, bfloat16 / float32 (cpu) {cpu['local encoders, bfloat16'] / cpu['local encoders']:.3f}"
        )


if __name__ == "__main__":
    main()
