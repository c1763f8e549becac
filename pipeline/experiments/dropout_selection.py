"""How much of MIAT's Eq. 6 selection is dropout noise, on the Fashion-MNIST small CNN?

MIAT selects the samples that are correct on ``x`` and fooled on ``x_adv``, from the logits of
its two training-mode forwards. The TRADES small CNN of the Fashion-MNIST runs has dropout 0.5
after its first linear layer, so in training mode ``h(x)`` and ``h(x_adv)`` draw independent
masks and a sample can count as "fooled" because its two masks differ, whatever the attack
did. This measures, on a standard-AT model trained as cpu_study trains it (shorter), the
selection under three ways of running the two forwards:

- ``independent``: training mode, independent masks (MIDefenseModel until this measurement);
- ``shared``: training mode, the same mask for both forwards;
- ``inference``: no dropout (the selection of the trained model as it is deployed).

and the disagreement of two independent training-mode forwards on the same clean images.

Command (about 5 minutes on 2 cores; writes results/experiments/dropout_selection.json):
    python pipeline/experiments/dropout_selection.py
"""

from __future__ import annotations

import argparse
import json
import pathlib

import keras
import numpy as np
import tensorflow as tf

from mi_keras.attacks import PGD
from mi_keras.data import load_dataset
from mi_keras.models import AdversarialModel, build_classifier
from mi_keras.models.training_utils import reseed_random_layers

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def selected(classifier, x, y, x_adv, mode: str, seed: int) -> np.ndarray:
    """The Eq. 6 mask (correct on x, wrong on x_adv) with the two forwards run as ``mode``."""
    if mode == "inference":
        clean, adversarial = classifier(x, training=False), classifier(x_adv, training=False)
    else:
        reseed_random_layers(classifier, tf.constant([seed, 0], tf.int64))
        adversarial = classifier(x_adv, training=True)
        if mode == "shared":
            reseed_random_layers(classifier, tf.constant([seed, 0], tf.int64))
        clean = classifier(x, training=True)
    correct = np.argmax(clean, -1) == y
    fooled = np.argmax(adversarial, -1) != y
    return correct & fooled


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="idx:/usr/share/datasets/fashion-mnist")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--take", type=int, default=10000)
    parser.add_argument("--out", default=str(REPO_ROOT / "results" / "experiments" / "dropout_selection.json"))
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(0)
    train, info = load_dataset(args.data, "train", batch_size=128, take=args.take, seed=0)
    test, _ = load_dataset(args.data, "test", batch_size=500, shuffle=False)
    attack = PGD(0.1, steps=10, seed=0)  # cpu_study's Fashion-MNIST threat model
    classifier = build_classifier("small_cnn", info.image_shape, info.num_classes)
    model = AdversarialModel(classifier, attack=attack, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    model.fit(train, epochs=args.epochs, verbose=2)
    counts = {"independent": 0, "shared": 0, "inference": 0, "examples": 0, "clean_flips": 0}
    only_independent = 0
    for step, (x, y) in enumerate(test.take(4)):
        y = y.numpy()
        x_adv = attack(classifier, x, y)
        masks = {
            mode: selected(classifier, x, y, x_adv, mode, seed=step) for mode in ("independent", "shared", "inference")
        }
        for mode, mask in masks.items():
            counts[mode] += int(mask.sum())
        only_independent += int((masks["independent"] & ~masks["shared"]).sum())
        reseed_random_layers(classifier, tf.constant([step, 1], tf.int64))
        first = np.argmax(classifier(x, training=True), -1)
        second = np.argmax(classifier(x, training=True), -1)
        counts["clean_flips"] += int((first != second).sum())
        counts["examples"] += len(y)
    n = counts["examples"]
    result = {
        "experiment": "dropout_selection",
        "setup": {"data": args.data, "take": args.take, "epochs": args.epochs, "eps": 0.1, "examples": n},
        "selected_fraction": {mode: counts[mode] / n for mode in ("independent", "shared", "inference")},
        "selected_only_with_independent_masks_fraction": only_independent / n,
        "clean_prediction_flips_between_two_dropout_draws_fraction": counts["clean_flips"] / n,
    }
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
