"""Benchmark: where runs with the same seed diverge, and what op determinism costs.

Each setting trains the quick-start's models from the same seed on the same digit batches
(small CNN with ``padding="same"`` on 8x8x1, PGD-10 at eps 0.2, batch 64, SGD 0.05 with
momentum 0.9; MIAT with alpha 5, lambda 0 and 256-unit estimators) in its own process, and
prints, for pairs of settings (``default``: oneDNN on, 2 intra-op threads, as the pipeline
runs on this 2-core machine):

* the first output that differs at initialisation: classifier logits, the natural
  estimator's features and its MI score;
* per model (standard AT, MIAT): the first training step whose weights differ, and how the
  largest weight difference grows over the steps;
* the step-time ratio to the reference (best of the timed steps; the settings run
  alternately in rounds, so machine noise hits all alike).

Two machines differ in core count and instruction set; ``threads-1`` and ``onednn-off``
(Eigen's kernels instead of oneDNN's) stand in for them here. docs/reproducibility.md has
a measured table and what it shows.

    python bench/determinism.py [--steps 12] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

SETTINGS = {
    "default": {"threads": 2, "onednn": True, "deterministic": False},
    "default-again": {"threads": 2, "onednn": True, "deterministic": False},
    "threads-1": {"threads": 1, "onednn": True, "deterministic": False},
    "onednn-off": {"threads": 2, "onednn": False, "deterministic": False},
    "deterministic": {"threads": 2, "onednn": True, "deterministic": True},
    "deterministic-again": {"threads": 2, "onednn": True, "deterministic": True},
    "deterministic-threads-1": {"threads": 1, "onednn": True, "deterministic": True},
}
REFERENCE = "default"
# (setting, the setting it is compared with): run to run, core count, instruction path, op determinism.
PAIRS = [
    ("default-again", "default"),
    ("threads-1", "default"),
    ("onednn-off", "default"),
    ("deterministic", "default"),
    ("deterministic-again", "deterministic"),
    ("deterministic-threads-1", "deterministic"),
]
BATCH, EPS, UNITS = 64, 0.2, 256


def child(setting: dict, steps: int, out: str) -> None:
    """Trains both models in this process and writes what the parent compares."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import keras
    import numpy as np
    import tensorflow as tf
    from sklearn.datasets import load_digits

    from mi_keras.attacks import PGD
    from mi_keras.mi import MIEstimator
    from mi_keras.models import AdversarialModel, MIDefenseModel, build_classifier

    tf.config.threading.set_intra_op_parallelism_threads(setting["threads"])
    tf.config.threading.set_inter_op_parallelism_threads(1)
    if setting["deterministic"]:
        tf.config.experimental.enable_op_determinism()
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., None]
    labels = digits.target.astype(np.int32)
    batches = [(images[i * BATCH : (i + 1) * BATCH], labels[i * BATCH : (i + 1) * BATCH]) for i in range(steps)]

    def build(kind: str):
        keras.utils.set_random_seed(0)
        classifier = build_classifier("small_cnn", (8, 8, 1), 10, padding="same")
        attack = PGD(EPS, steps=10, step_size=EPS / 4, seed=0)
        if kind == "standard_at":
            model = AdversarialModel(classifier, attack=attack, seed=0)
            estimator = None
        else:
            natural, adversarial = (MIEstimator.for_classifier((8, 8, 1), 10, units=UNITS) for _ in range(2))
            model = MIDefenseModel(classifier, natural, adversarial, attack=attack, alpha=5.0, lam=0.0, seed=0)
            estimator = natural
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
        return model, classifier, estimator

    result = {}
    for kind in ("standard_at", "miat"):
        model, classifier, estimator = build(kind)
        x, y = batches[0]
        logits = classifier(x, training=False)
        probes = {"classifier logits": logits.numpy()}
        if estimator is not None:
            estimator(x, logits)  # builds the estimator
            features = estimator.encode(x)
            probes["estimator features"] = features.numpy()
            probes["estimator MI score"] = estimator.score(features, logits).numpy()
        weights, times = [], []
        for x, y in batches:
            started = time.perf_counter()
            model.train_on_batch(x, y)
            times.append(time.perf_counter() - started)
            weights.append(np.concatenate([w.numpy().ravel() for w in classifier.trainable_weights]))
        result[kind] = {"probes": probes, "weights": np.stack(weights), "seconds": min(times[2:] or times)}
    np.save(out, result, allow_pickle=True)


def run_setting(name: str, steps: int, directory: str) -> dict:
    setting = SETTINGS[name]
    out = os.path.join(directory, f"{name}.npy")
    environment = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1" if setting["onednn"] else "0"}
    subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(setting), "--steps", str(steps), "--out", out],
        check=True,
        env=environment,
    )
    import numpy as np

    return np.load(out, allow_pickle=True).item()


def compare(reference: dict, other: dict) -> dict:
    import numpy as np

    row = {}
    for kind in ("standard_at", "miat"):
        first_probe = next(
            (
                f"{name} (max diff {np.abs(value - other[kind]['probes'][name]).max():.1e})"
                for name, value in reference[kind]["probes"].items()
                if not np.array_equal(value, other[kind]["probes"][name])
            ),
            "none",
        )
        ours, theirs = reference[kind]["weights"], other[kind]["weights"]
        differs = [not np.array_equal(a, b) for a, b in zip(ours, theirs)]
        row[kind] = {
            "first differing forward output": first_probe,
            "first differing step": differs.index(True) + 1 if any(differs) else None,
            "max weight diff": [
                float(np.abs(ours[step - 1] - theirs[step - 1]).max()) for step in checkpoints(len(ours))
            ],
        }
    return row


def checkpoints(steps: int) -> list[int]:
    return sorted({2, max(2, steps // 2), steps})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2, help="runs of every setting; the fastest counts")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child), args.steps, args.out)
        return
    with tempfile.TemporaryDirectory() as directory:
        results = {}
        for _ in range(args.rounds):
            for name in SETTINGS:
                run = run_setting(name, args.steps, directory)
                if name in results:  # weights must agree across rounds; keep the fastest times
                    for kind in run:
                        run[kind]["seconds"] = min(run[kind]["seconds"], results[name][kind]["seconds"])
                results[name] = run
    marks = checkpoints(args.steps)
    print(f"{args.steps} training steps per model; step times relative to {REFERENCE} {SETTINGS[REFERENCE]}")
    print(
        "| setting | compared with | model | first differing output at init | first differing step "
        f"| max weight diff after steps {', '.join(map(str, marks))} | step time / {REFERENCE} |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, baseline in PAIRS:
        row = compare(results[baseline], results[name])
        for kind, label in (("standard_at", "standard AT"), ("miat", "MIAT")):
            ratio = results[name][kind]["seconds"] / results[REFERENCE][kind]["seconds"]
            cells = row[kind]
            diffs = ", ".join(f"{value:.1e}" for value in cells["max weight diff"])
            print(
                f"| {name} | {baseline} | {label} | {cells['first differing forward output']} "
                f"| {cells['first differing step'] or 'none'} | {diffs} | {ratio:.2f} |"
            )


if __name__ == "__main__":
    main()
