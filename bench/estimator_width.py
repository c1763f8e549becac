"""MI-probe quality and MIAT step cost against the estimators' width, on the MNIST small CNN.

For each width (64, 128, 256, 1024 and 2048 by default), one estimator is trained by
maximising its DV bound on ``(x, h(x))`` for the classifier frozen (the paper's MIM
estimator, `pipeline.experiments.proof_of_concept.train_standard_estimator`: Adam, the same
examples, batches and epochs for every width), then probed on the first ``--n`` MNIST test
images in batches of ``--batch-size``:

- ``matched``: mean per-sample estimate ``I(x; h(x))``;
- ``shuffled``: the same with the logits of the batch rolled by one (``I(x_i; h(x_{i+1}))``),
  pairs the estimator should score low;
- ``separation``: matched - shuffled (nats), and ``ranked``: the fraction of samples whose
  matched estimate beats their shuffled one (pairs of the same class make 100% unreachable).

The classifier is the PGD-trained TRADES SmallCNN of `bench/art_crosscheck.py` (the same
cache in ``bench/.cache/``). The width `mi_keras.mi.default_units` picks for it is marked.
Then, with `bench/train_step.py`'s timing (alternating, best of ``--repeats``), the small-CNN
MIAT / AT step ratio at batch 128, PGD-10, is printed for the rule's width and for 2048.

```
python bench/estimator_width.py                  # 10,000 training examples, 2 epochs
python bench/estimator_width.py --widths 128 2048 --repeats 7
python bench/estimator_width.py --quick          # a smoke run
```
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # pipeline/ is not installed

import art_crosscheck  # noqa: E402  (bench/ is on sys.path)
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import train_step  # noqa: E402

from mi_keras.data import load_dataset  # noqa: E402
from mi_keras.evaluation import DataSlice  # noqa: E402
from mi_keras.mi import MIEstimator, default_units  # noqa: E402
from mi_keras.mi.bounds import batch_bounds  # noqa: E402
from pipeline.experiments.proof_of_concept import train_standard_estimator  # noqa: E402


def parse_arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--widths", nargs="+", type=int, default=[64, 128, 256, 1024, 2048])
    parser.add_argument("--estimator-examples", type=int, default=10000)
    parser.add_argument("--estimator-epochs", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=128, help="estimator and probe batches")
    parser.add_argument("--n", type=int, default=1000, help="test images probed")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per model")
    art_crosscheck.add_classifier_arguments(parser)
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 widths, tiny sizes")
    args = parser.parse_args(argv)
    if args.quick:
        args.widths, args.estimator_examples, args.estimator_epochs = [64, 2048], 512, 1
        args.n, args.repeats, args.train_epochs, args.train_examples = 256, 1, 1, 4000
    return args


def probe(estimator: MIEstimator, classifier, data: DataSlice, batch_size: int) -> dict:
    matched, shuffled = [], []
    for start, end in batch_bounds(len(data), batch_size):  # no batch of one: DV needs negatives
        images = tf.constant(data.x[start:end])
        logits = tf.cast(classifier(images, training=False), tf.float32)
        matched.append(estimator(images, logits, training=False).numpy())
        shuffled.append(estimator(images, tf.roll(logits, 1, axis=0), training=False).numpy())
    matched, shuffled = np.concatenate(matched), np.concatenate(shuffled)
    return {
        "matched": float(matched.mean()),
        "shuffled": float(shuffled.mean()),
        "separation": float(matched.mean() - shuffled.mean()),
        "ranked": float(np.mean(matched > shuffled)),
    }


def main(argv=None) -> int:
    args = parse_arguments(argv)
    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(args.seed)
    classifier = art_crosscheck.train_classifier(args)
    classifier.trainable = False
    shape = tuple(classifier.input_shape[1:])
    rule = default_units(classifier, shape)
    train, _ = load_dataset(
        f"idx:{art_crosscheck.MNIST_DIR}",
        "train",
        batch_size=args.batch_size,
        seed=args.seed,
        validation_size=0,
        take=args.estimator_examples,
    )
    test, _ = load_dataset(f"idx:{art_crosscheck.MNIST_DIR}", "test", batch_size=None)
    data = DataSlice.from_source(test, args.n, f"MNIST test, first {args.n}")
    print(f"default_units of the small CNN: {rule}")
    rows = []
    for units in args.widths:
        keras.utils.set_random_seed(args.seed)
        estimator = MIEstimator.for_classifier(shape, 10, units=units)
        started = time.perf_counter()
        train_standard_estimator(classifier, estimator, train, args.estimator_epochs, args.learning_rate)
        seconds = time.perf_counter() - started
        rows.append((units, probe(estimator, classifier, data, args.batch_size), seconds))
    print(
        f"\n{args.estimator_examples} training examples x {args.estimator_epochs} epochs, "
        f"probe on {len(data)} test images, batches of {args.batch_size}\n"
        "| units | matched nats | shuffled nats | separation | ranked | training s |\n"
        "|---|---|---|---|---|---|"
    )
    for units, quality, seconds in rows:
        mark = " (rule)" if units == rule else ""
        print(
            f"| {units}{mark} | {quality['matched']:.3f} | {quality['shuffled']:.3f} | "
            f"{quality['separation']:.3f} | {100 * quality['ranked']:.1f}% | {seconds:.0f} |"
        )
    case = train_step.CASES["small_cnn"]
    ratios = {
        units: train_step.run_case(f"small_cnn, {units} units", case, args.repeats, units=units)
        for units in dict.fromkeys((rule, 2048))
    }
    for units, ratio in ratios.items():
        print(f"small_cnn units {units} step ratio {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
