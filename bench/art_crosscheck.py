"""Cross-check of our attacks against the Adversarial Robustness Toolbox (ART 1.20.1).

Trains (or loads from ``bench/.cache/``) a PGD-adversarially-trained TRADES SmallCNN on MNIST
read from ``../shared/data/mnist``, then attacks the same test images (the first ``--n``,
1,000 by default) at L-inf eps 0.3 with identical settings in both libraries and prints, per
attack, both robust accuracies, their difference and both wall times:

- PGD-40: ours `PGD(steps=40, step_size=eps/4, random_start="uniform")`; ART
  `ProjectedGradientDescent(max_iter=40, eps_step=eps/4, num_random_init=1)`.
- APGD-CE: ours `APGD(loss="ce", steps=100, restarts=1)`; ART
  `AutoProjectedGradientDescent(loss_type="cross_entropy", max_iter=100, nb_random_init=1,
  eps_step=2 eps)`.
- APGD-DLR: the same with `loss="dlr"` / `loss_type="difference_logits_ratio"`.
- Square: ours `Square(queries=Q, p_init=0.8, rescale_schedule=True)`; ART
  `SquareAttack(max_iter=Q, p_init=0.8, nb_restarts=1)`; Q = 1,000 by default.
- AutoAttack: ours `AutoAttack(version="custom", attacks=[the three above])`; ART
  `AutoAttack(attacks=[the three above])`.

Robust accuracy is computed the same way for both: correct on the clean image AND on the
adversarial one, with our compiled predictor. Times are wall-clock seconds of crafting the
whole slice (our first-batch tracing included; ART runs eagerly, as it does for every user).
Both use the same batch size; TensorFlow uses 2 intra-op threads and 1 inter-op thread.

Where the implementations differ by design (so agreement is expected within noise, not per
sample; the random draws differ anyway):
- ART's `AutoAttack` with no attack list is NOT the published "standard" AutoAttack: it runs
  APGD-CE and APGD-DLR with 5 restarts each, DeepFool, and Square with 5 restarts, with a
  first step of 0.1 instead of 2 eps; no targeted APGD-T and no FAB-T. We therefore give it
  the same explicit list as ours. ART runs each attack on the still-robust samples, as the
  published AutoAttack (and ours) do.
- ART's `SquareAttack` draws ONE square position per iteration for the whole batch (as does
  the official AutoAttack code); ours draws one per sample, so a sample's search does not
  depend on the batch it is in. ART always rescales the p schedule to `max_iter`; ours does
  with `rescale_schedule=True` (AutoAttack's Square keeps the 10,000-query schedule).
- ART's APGD starts uniformly inside the eps ball (the official code starts on the boundary,
  as ours does); counts a "successful" step when the loss beats the best loss so far (the
  official code counts increases over the previous iterate); takes `eps_step` from the user
  (2 eps here, the official value); and computes the DLR loss without the 1e-12 guard, with a
  Python loop over the batch.
- ART's PGD is the same algorithm as ours (uniform start, sign steps of eps/4, projection
  onto the ball and [0, 1]); it differentiates the batch-mean loss, which does not change the
  sign of the gradient.

Targets (issue 5): robust accuracies within 1.5 percentage points where the algorithms
match; each of our attacks at least 2x faster than ART's, the composed AutoAttack at least 3x.

Usage (the full run takes tens of minutes on 2 cores; run it once):
```
python bench/art_crosscheck.py              # 1,000 images
python bench/art_crosscheck.py --quick      # a smoke run: 64 images, short attacks
```
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from mi_keras.attacks import PGD  # noqa: E402
from mi_keras.attacks.apgd import APGD  # noqa: E402
from mi_keras.attacks.auto_attack import AutoAttack  # noqa: E402
from mi_keras.attacks.square import Square  # noqa: E402
from mi_keras.data import load_dataset  # noqa: E402
from mi_keras.enums import AttackLoss, RandomStart  # noqa: E402
from mi_keras.evaluation import AttackRunner, DataSlice  # noqa: E402
from mi_keras.models.architectures.small_cnn import small_cnn  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
MNIST_DIR = REPO_ROOT.parent / "shared" / "data" / "mnist"
CACHE_DIR = REPO_ROOT / "bench" / ".cache"  # only *.weights.h5 files: ignored by git
EPS = 0.3
AGREEMENT_PP = 1.5
SPEEDUP_TARGET = 2.0
AUTOATTACK_SPEEDUP_TARGET = 3.0


def add_classifier_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of the PGD-trained SmallCNN that `train_classifier` trains or reads from the cache."""
    parser.add_argument("--train-epochs", type=int, default=4, help="PGD-10 epochs at eps 0.1, 0.2, then 0.3")
    parser.add_argument("--train-examples", type=int, default=60000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retrain", action="store_true", help="ignore the cached weights")


def parse_arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="test images attacked (default 1000)")
    parser.add_argument("--batch-size", type=int, default=500, help="batch size of both libraries")
    parser.add_argument("--square-queries", type=int, default=1000, help="Square iterations in both")
    parser.add_argument("--apgd-steps", type=int, default=100, help="APGD iterations in both")
    add_classifier_arguments(parser)
    parser.add_argument("--quick", action="store_true", help="smoke run: 64 images, short attacks, small training")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.batch_size, args.square_queries, args.apgd_steps = 64, 64, 50, 10
        args.train_epochs, args.train_examples = 1, 4000
    return args


def load_cached_weights(model: keras.Model, weights, retrain: bool) -> bool:
    """Loads ``weights`` into ``model`` when the file exists and no retraining is asked."""
    if retrain or not weights.is_file():
        return False
    model.load_weights(weights)
    print(f"loaded cached weights {weights}")
    return True


def train_classifier(args) -> keras.Model:
    """PGD adversarial training (Madry et al.) of the TRADES SmallCNN, cached by its settings."""
    model = small_cnn(input_shape=(28, 28, 1), num_classes=10)
    weights = CACHE_DIR / f"mnist_small_cnn_pgd_e{args.train_epochs}_n{args.train_examples}_s{args.seed}.weights.h5"
    if load_cached_weights(model, weights, args.retrain):
        return model
    dataset, _ = load_dataset(
        f"idx:{MNIST_DIR}",
        "train",
        batch_size=128,
        seed=args.seed,
        validation_size=0,
        take=args.train_examples,
    )
    optimizer = keras.optimizers.Adam(1e-3)
    for epoch in range(args.train_epochs):
        # eps grows 0.1, 0.2, 0.3: PGD training at eps 0.3 from scratch stalls at chance level.
        eps = min(EPS, 0.1 * (epoch + 1))
        attack = PGD(eps, steps=10, step_size=eps / 4, random_start=RandomStart.UNIFORM)
        step = tf.function(lambda x, y, seed, attack=attack: adversarial_step(model, optimizer, attack, x, y, seed))
        started, losses = time.perf_counter(), []
        for index, (images, labels) in enumerate(dataset):
            losses.append(float(step(images, labels, tf.constant([args.seed, epoch * 100000 + index], tf.int64))))
        print(
            f"epoch {epoch + 1}: eps {eps:g}, adversarial loss {np.mean(losses):.3f}, "
            f"{time.perf_counter() - started:.0f} s"
        )
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    model.save_weights(weights)
    return model


def adversarial_step(model, optimizer, attack, x, y, seed):
    x_adv = attack(model, x, y, seed=seed)
    with tf.GradientTape() as tape:
        logits = model(x_adv, training=True)
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))
    gradients = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
    return loss


def our_attacks(args) -> dict:
    apgd_ce = APGD(EPS, loss=AttackLoss.CE, steps=args.apgd_steps, name="APGD-CE")
    apgd_dlr = APGD(EPS, loss=AttackLoss.DLR, steps=args.apgd_steps, name="APGD-DLR")
    square = Square(EPS, queries=args.square_queries, p_init=0.8, rescale_schedule=True, name="Square")
    return {
        "PGD-40": PGD(EPS, steps=40, step_size=EPS / 4, random_start=RandomStart.UNIFORM),
        "APGD-CE": apgd_ce,
        "APGD-DLR": apgd_dlr,
        "Square": square,
        "AutoAttack": AutoAttack(
            EPS, version="custom", attacks=[apgd_ce, apgd_dlr, square], batch_size=args.batch_size
        ),
    }


def art_attacks(args, model) -> dict:
    from art.attacks.evasion import (
        AutoAttack as ArtAutoAttack,
    )
    from art.attacks.evasion import (
        AutoProjectedGradientDescent,
        ProjectedGradientDescent,
        SquareAttack,
    )
    from art.estimators.classification import TensorFlowV2Classifier

    classifier = TensorFlowV2Classifier(
        model,
        nb_classes=10,
        input_shape=(28, 28, 1),
        loss_object=keras.losses.CategoricalCrossentropy(from_logits=True),
        clip_values=(0.0, 1.0),
    )
    common = {
        "estimator": classifier,
        "norm": np.inf,
        "eps": EPS,
        "batch_size": args.batch_size,
        "verbose": False,
    }
    apgd = {**common, "eps_step": 2 * EPS, "max_iter": args.apgd_steps, "nb_random_init": 1}
    apgd_ce = AutoProjectedGradientDescent(**apgd, loss_type="cross_entropy")
    apgd_dlr = AutoProjectedGradientDescent(**apgd, loss_type="difference_logits_ratio")
    square = SquareAttack(**common, max_iter=args.square_queries, p_init=0.8, nb_restarts=1)
    return {
        "PGD-40": ProjectedGradientDescent(**common, eps_step=EPS / 4, max_iter=40, num_random_init=1),
        "APGD-CE": apgd_ce,
        "APGD-DLR": apgd_dlr,
        "Square": square,
        "AutoAttack": ArtAutoAttack(
            classifier,
            norm=np.inf,
            eps=EPS,
            eps_step=2 * EPS,
            attacks=[apgd_ce, apgd_dlr, square],
            batch_size=args.batch_size,
        ),
    }


def main(argv=None) -> int:
    args = parse_arguments(argv)
    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(args.seed)
    model = train_classifier(args)
    test, _ = load_dataset(f"idx:{MNIST_DIR}", "test", batch_size=None)
    data = DataSlice.from_source(test, args.n, f"MNIST test, first {args.n}")
    runner = AttackRunner(model, batch_size=args.batch_size, seed=args.seed, progress=False)
    clean = runner.predict(data.x) == data.y
    print(f"{len(data)} MNIST test images, clean accuracy {100 * clean.mean():.1f}%, eps {EPS}")

    rows = []
    ours, theirs = our_attacks(args), art_attacks(args, model)
    for name, attack in ours.items():
        outcome = runner.run(attack, data.x, data.y, stream=name)
        our_accuracy = float(np.mean(clean & outcome.correct))
        np.random.seed(args.seed)  # ART draws from NumPy's global generator
        started = time.perf_counter()
        x_adv = theirs[name].generate(data.x, np.eye(10, dtype=np.float32)[data.y])
        art_seconds = time.perf_counter() - started
        art_accuracy = float(np.mean(clean & (runner.predict(x_adv.astype(np.float32)) == data.y)))
        rows.append((name, our_accuracy, art_accuracy, outcome.seconds, art_seconds))
        if outcome.details:
            print(f"    ours, seconds per AutoAttack attack: {outcome.details['seconds']}")
        print(
            f"  {name}: ours {100 * our_accuracy:.1f}% in {outcome.seconds:.1f} s, "
            f"ART {100 * art_accuracy:.1f}% in {art_seconds:.1f} s"
        )
    print_table(rows)
    return 0


def print_table(rows) -> None:
    print("\n| attack | ours robust % | ART robust % | diff pp | ours s | ART s | speedup | targets |")
    print("|---|---|---|---|---|---|---|---|")
    for name, ours, art, our_seconds, art_seconds in rows:
        speedup = art_seconds / our_seconds
        target = AUTOATTACK_SPEEDUP_TARGET if name == "AutoAttack" else SPEEDUP_TARGET
        agree = abs(ours - art) * 100 <= AGREEMENT_PP
        agreement = "agree" if agree else "DIFFER"
        speed = "fast" if speedup >= target else "SLOW"
        verdict = f"{agreement} / {speed} (>= {target:g}x)"
        print(
            f"| {name} | {100 * ours:.1f} | {100 * art:.1f} | {100 * (ours - art):+.1f} | "
            f"{our_seconds:.1f} | {art_seconds:.1f} | {speedup:.1f}x | {verdict} |"
        )


if __name__ == "__main__":
    sys.exit(main())
