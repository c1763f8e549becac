"""Benchmark: MIDefenseModel step time / plain PGD adversarial-training step time.

Both steps use the same classifier, attack (PGD-10, step eps/4) and batch, and are timed
alternately in one process (best of N), so machine noise hits both alike. Cases: a CIFAR ResNet-18 on
32x32x3 (batch 32) and the TRADES small CNN on 28x28x1 (batch 128), with 2048-unit
estimators as in the paper. Prints per-case timings, peak memory and one final line per
case: ``<case> ratio <MIAT time / AT time>``. Target: resnet18 ratio <= 1.3.

    python bench/train_step.py [--repeats 5] [--cases resnet18 small_cnn]
    python bench/train_step.py --quick     # a smoke run (make bench-quick)
"""

from __future__ import annotations

import argparse
import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from mi_keras.attacks import PGD  # noqa: E402
from mi_keras.mi import MIEstimator  # noqa: E402
from mi_keras.models import AdversarialModel, MIDefenseModel, build_classifier  # noqa: E402

CASES = {
    "resnet18": {"architecture": "resnet18", "shape": (32, 32, 3), "batch": 32, "eps": 8 / 255},
    "small_cnn": {"architecture": "small_cnn", "shape": (28, 28, 1), "batch": 128, "eps": 0.3},
}


def make_models(case, units=2048):
    keras.utils.set_random_seed(0)
    classifier = build_classifier(case["architecture"], case["shape"], 10)
    attack = PGD(case["eps"], steps=10)
    plain = AdversarialModel(classifier, attack=attack)
    estimators = [MIEstimator.for_classifier(case["shape"], 10, units=units) for _ in range(2)]
    miat = MIDefenseModel(classifier, *estimators, attack=attack)
    for model in (plain, miat):
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))
    return plain, miat


def time_step(model, x, y) -> float:
    start = time.perf_counter()
    model.train_on_batch(x, y)
    return time.perf_counter() - start


def run_case(name, case, repeats, units=2048):
    rng = np.random.default_rng(0)
    x = rng.random((case["batch"], *case["shape"]), dtype=np.float32)
    y = rng.integers(0, 10, case["batch"])
    plain, miat = make_models(case, units=units)
    for model in (plain, miat):  # trace and warm up
        time_step(model, x, y)
        time_step(model, x, y)
    times = {"plain": [], "miat": []}
    for _ in range(repeats):
        times["plain"].append(time_step(plain, x, y))
        times["miat"].append(time_step(miat, x, y))
    # The minimum is the least noisy estimate of a step's cost on a shared machine.
    plain_time, miat_time = min(times["plain"]), min(times["miat"])
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{name}: batch {case['batch']} {case['shape']}, PGD-10; plain AT {plain_time:.3f} s/step "
        f"(median {np.median(times['plain']):.3f}), MIAT {miat_time:.3f} s/step "
        f"(median {np.median(times['miat']):.3f}), best of {repeats}; process peak RSS {peak_mib:.0f} MiB"
    )
    return miat_time / plain_time


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--quick", action="store_true", help="smoke run: one timed step per model")
    args = parser.parse_args()
    if args.quick:
        args.repeats = 1
    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    ratios = {name: run_case(name, CASES[name], args.repeats) for name in args.cases}
    for name, ratio in ratios.items():
        print(f"{name} ratio {ratio:.2f}")


if __name__ == "__main__":
    main()
