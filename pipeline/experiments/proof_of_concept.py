"""The paper's proof of concept (Fig. 2, App. B) as one command.

Trains a natural (non-robust) classifier, then a standard-MI estimator by MI maximisation on
natural samples against the frozen classifier, and measures ``I(x; h(x))``,
``I(x_adv; h(x_adv))`` and ``I(x; h(x_adv))`` under each attack (see `StandardMIProbe`).

Paper setting (1,000 CIFAR-10 test images, a natural ResNet-18, PGD-10, PGD-40, FWA-10,
FWA-40 and AutoAttack at 8/255):
```
python -m pipeline.experiments.proof_of_concept \\
    --dataset 'npz:DATA_DIR/cifar10/cifar10_{split}.npz' --architecture resnet18 \\
    --epochs 30 --estimator-epochs 10 --n-examples 1000 --eps 0.0313725 \\
    --attacks pgd10,pgd40,fwa10,fwa40,autoattack --out reports/proof_of_concept
```
Writes ``classifier.keras``, ``estimator.keras`` and ``standard_mi.json`` / ``.md`` / ``.png``
(the radar chart) under ``--out`` and prints the table. docs/paper_experiments.md has a
measured CPU-scale run.
"""

from __future__ import annotations

import argparse
import os
import sys

import keras
import numpy as np
import tensorflow as tf

from mi_keras.data import load_dataset
from mi_keras.enums import ThreatModel
from mi_keras.evaluation.attack_spec import parse_attack_list
from mi_keras.evaluation.data_slice import DataSlice
from mi_keras.evaluation.standard_mi_probe import StandardMIProbe
from mi_keras.mi import MIEstimator
from mi_keras.models.architectures import build_classifier


def train_natural_classifier(
    train, architecture: str, image_shape, num_classes: int, epochs: int, learning_rate: float,
    **options,
) -> keras.Model:  # fmt: skip
    """A zoo classifier trained on clean images only (SGD, momentum 0.9)."""
    model = build_classifier(architecture, image_shape, num_classes, **options)
    model.compile(
        keras.optimizers.SGD(learning_rate, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(train, epochs=epochs, verbose=2)
    return model


def train_standard_estimator(
    classifier, estimator: MIEstimator, train, epochs: int, learning_rate: float
) -> list[float]:
    """Maximises the estimator's bound on ``(x, h(x))`` for natural ``x``, the classifier frozen
    (the MIM estimator of the paper's App. B). Returns the mean MI estimate of each epoch."""
    optimizer = keras.optimizers.Adam(learning_rate)

    @tf.function
    def step(x):
        logits = tf.stop_gradient(tf.cast(classifier(x, training=False), tf.float32))
        with tf.GradientTape() as tape:
            mi = tf.reduce_mean(estimator(x, logits, training=True))
            loss = -mi
        variables = estimator.trainable_variables
        optimizer.apply(tape.gradient(loss, variables), variables)
        return mi

    history = []
    for epoch in range(epochs):
        values = [float(step(x)) for x, _ in train]
        history.append(float(np.mean(values)))
        print(f"estimator epoch {epoch + 1}/{epochs}: mean I(x; h(x)) {history[-1]:.4f}")
    return history


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.experiments.proof_of_concept",
        description="The paper's proof of concept (Fig. 2): standard MI under attacks.",
    )
    parser.add_argument("--dataset", required=True, help="a mi_keras.data.load_dataset spec")
    parser.add_argument("--data-dir", help="tensorflow_datasets folder or base of file specs")
    parser.add_argument("--architecture", default="resnet18", help="a zoo name (default resnet18)")
    parser.add_argument("--option", action="append", default=[], help="architecture option KEY=VALUE (repeat)")
    parser.add_argument("--train-take", type=int, help="training examples used (default all)")
    parser.add_argument("--epochs", type=int, default=30, help="classifier epochs")
    parser.add_argument("--learning-rate", type=float, default=0.01, help="classifier SGD rate")
    parser.add_argument("--estimator-epochs", type=int, default=10)
    parser.add_argument("--estimator-units", type=int, default=2048)
    parser.add_argument("--estimator-learning-rate", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--n-examples", type=int, default=1000, help="test examples probed")
    parser.add_argument("--eps", type=float, default=8 / 255, help="attack radius (L-inf)")
    parser.add_argument("--attacks", default="pgd10,pgd40,fwa10,fwa40,autoattack", help="comma-separated specs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="output directory")
    return parser


def _options(pairs: list[str]) -> dict[str, str | int | float]:
    options = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise ValueError(f"--option takes KEY=VALUE; got {pair!r}.")
        for kind in (int, float):
            try:
                options[key] = kind(value)
                break
            except ValueError:
                continue
        else:
            options[key] = value
    return options


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        options = _options(args.option)
        attacks = [
            spec.build(args.eps, ThreatModel.LINF, seed=args.seed, batch_size=args.batch_size)
            for spec in parse_attack_list(args.attacks)
        ]
        common = {"data_dir": args.data_dir, "batch_size": args.batch_size}
        train, info = load_dataset(args.dataset, "train", take=args.train_take, seed=args.seed, **common)
        test, _ = load_dataset(args.dataset, "test", take=args.n_examples, **common)
    except ValueError as error:
        parser.error(str(error))
    keras.utils.set_random_seed(args.seed)
    image_shape, num_classes = tuple(train.element_spec[0].shape[1:]), info.num_classes
    classifier = train_natural_classifier(
        train, args.architecture, image_shape, num_classes, args.epochs, args.learning_rate,
        **options,
    )  # fmt: skip
    estimator = MIEstimator.for_classifier(image_shape, num_classes, units=args.estimator_units)
    history = train_standard_estimator(
        classifier, estimator, train, args.estimator_epochs, args.estimator_learning_rate
    )
    data = DataSlice.from_source(
        test, args.n_examples, f"{args.dataset} (test split), {args.n_examples} random examples"
    )
    probe = StandardMIProbe(classifier, estimator, batch_size=args.batch_size, seed=args.seed)
    summary = probe.run(attacks, data)
    summary["setup"] = {
        "architecture": args.architecture,
        "options": options,
        "epochs": args.epochs,
        "train_examples": args.train_take,
        "estimator_units": args.estimator_units,
        "estimator_mi_per_epoch": history,
        "eps": args.eps,
        "seed": args.seed,
    }
    os.makedirs(args.out, exist_ok=True)
    classifier.save(os.path.join(args.out, "classifier.keras"))
    keras.saving.save_model(estimator, os.path.join(args.out, "estimator.keras"))
    StandardMIProbe.save(summary, args.out)
    print(StandardMIProbe.to_markdown(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
