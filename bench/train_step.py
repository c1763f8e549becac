"""Benchmark: MIDefenseModel step time / plain PGD adversarial-training step time.

Both steps use the same classifier, attack (PGD-10, step eps/4) and batch, and are timed
alternately in one process (best of N), so machine noise hits both alike. Cases: a CIFAR ResNet-18 on
32x32x3 (batch 32) and the TRADES small CNN on 28x28x1 (batch 128), with 2048-unit
estimators as in the paper. MIAT is timed twice: as it trains by default and with
``recompute_clean=True`` (the memory-saving step of `bench/memory.py`, one more forward pass
of the classifier). Prints per-case timings, peak memory and one final line per case:
``<case> ratio <MIAT time / AT time>`` (the default step). Target (issue 14): resnet18
ratio <= 1.20.

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
from record import write_result  # noqa: E402  (bench/record.py; bench/ is on sys.path when run as a script)

from mi_keras.attacks import PGD  # noqa: E402
from mi_keras.mi import MIEstimator  # noqa: E402
from mi_keras.models import AdversarialModel, MIDefenseModel, build_classifier  # noqa: E402

CASES = {
    "resnet18": {"architecture": "resnet18", "shape": (32, 32, 3), "batch": 32, "eps": 8 / 255},
    "small_cnn": {"architecture": "small_cnn", "shape": (28, 28, 1), "batch": 128, "eps": 0.3},
}


def make_models(case, units=2048, recompute_clean=False):
    keras.utils.set_random_seed(0)
    classifier = build_classifier(case["architecture"], case["shape"], 10)
    attack = PGD(case["eps"], steps=10)
    plain = AdversarialModel(classifier, attack=attack)
    estimators = [MIEstimator.for_classifier(case["shape"], 10, units=units) for _ in range(2)]
    miat = MIDefenseModel(classifier, *estimators, attack=attack, recompute_clean=recompute_clean)
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
    _, recomputing = make_models(case, units=units, recompute_clean=True)
    models = {"plain AT": plain, "MIAT": miat, "MIAT recompute_clean": recomputing}
    for model in models.values():  # trace and warm up
        time_step(model, x, y)
        time_step(model, x, y)
    times = {label: [] for label in models}
    for _ in range(repeats):
        for label, model in models.items():
            times[label].append(time_step(model, x, y))
    # The minimum is the least noisy estimate of a step's cost on a shared machine.
    best = {label: min(values) for label, values in times.items()}
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    timings = ", ".join(f"{label} {best[label]:.3f} s/step (median {np.median(times[label]):.3f})" for label in models)
    print(
        f"{name}: batch {case['batch']} {case['shape']}, PGD-10; {timings}, best of {repeats}; "
        f"MIAT recompute_clean / MIAT {best['MIAT recompute_clean'] / best['MIAT']:.2f}; "
        f"process peak RSS {peak_mib:.0f} MiB"
    )
    return {"ratio": best["MIAT"] / best["plain AT"], "plain": best["plain AT"], "miat": best["MIAT"]}


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
    results = {name: run_case(name, CASES[name], args.repeats) for name in args.cases}
    for name, result in results.items():
        print(f"{name} ratio {result['ratio']:.2f}")
    if not args.quick:  # docs/benchmarks.md is rendered from this file by bench/report.py
        rows = [
            [name, "this machine", result["plain"], result["miat"], result["ratio"]] for name, result in results.items()
        ]
        command = f"python bench/train_step.py --repeats {args.repeats}"
        columns = ["case", "machine", "plain AT s/step", "MIAT s/step", "MIAT / AT"]
        print(write_result("train_step", "Step time: plain PGD-10 AT vs MIAT", command, columns, rows))


if __name__ == "__main__":
    main()
