"""The paper-scale recipe's cost, from FLOPs counted on our own graphs (not timed).

Counts the forward FLOPs of one image through a zoo classifier and through one MI
estimator's local encoder with TensorFlow's profiler, then multiplies by the operations of
one training step (attack steps, forwards, backwards; a backward costs about 2 forwards, a
backward to the input about 1) and by the recipe's images and epochs:

    python bench/recipe_cost.py                       # cifar10_paper: ResNet-18, PGD-10, 100 epochs
    python bench/recipe_cost.py --architecture wrn34_10 --attack-steps 40 --epochs 100

GPU hours follow from the sustained throughput (``--sustained-tflops``, several values):
32x32 convolutions at batch 1024 sustain a fraction of a GPU's peak, so 5 (a V100 in fp32),
15 and 47 (30% of an A100's 156 TF32 TFLOPS) bracket what users see. These are FLOP counts,
not measurements on a GPU (none runs our code here).
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from mi_keras.mi import MIEstimator  # noqa: E402
from mi_keras.mi.estimator_width import forward_flops  # noqa: E402
from mi_keras.models.architectures import build_classifier  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--architecture", default="resnet18")
    parser.add_argument("--attack-steps", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument(
        "--train-images", type=int, default=45_000, help="CIFAR-10 train minus the 10%% validation split"
    )
    parser.add_argument("--units", type=int, default=2048)
    parser.add_argument("--sustained-tflops", type=float, nargs="+", default=[5.0, 15.0, 47.0])
    args = parser.parse_args()
    shape = (32, 32, 3)
    classifier = build_classifier(args.architecture, shape, 10)
    estimator = MIEstimator.for_classifier(shape, 10, units=args.units)
    spec = tf.TensorSpec((1, *shape), tf.float32)  # one image
    forward = forward_flops(lambda x: classifier(x, training=False), spec)
    local = forward_flops(lambda x: estimator.encode(x, training=False), spec)
    # Per image and step, in forwards F: the attack (steps x (F + backward to the input, ~1F)),
    # then standard AT: one forward and one weight backward (~2F); MIAT: two of each (x and
    # x_adv), two local-encoder forwards without gradients; the global nets and DV scores are
    # under 1% here and left out.
    at_step = forward * (2 * args.attack_steps + 3)
    miat_step = forward * (2 * args.attack_steps + 6) + 2 * local
    images = args.train_images * args.epochs
    for name, per_image in (("standard AT", at_step), ("MIAT", miat_step)):
        total = per_image * images
        hours = ", ".join(f"{total / (rate * 1e12) / 3600:.1f} h at {rate:g}" for rate in args.sustained_tflops)
        print(
            f"{name}: {per_image / 1e9:.1f} GFLOPs per image-step, {total / 1e15:.0f} PFLOPs for the recipe; GPU-hours: {hours} sustained TFLOPS"
        )
    print(
        f"{args.architecture} forward {forward / 1e9:.3f} GFLOPs, local encoder ({args.units} units) {local / 1e9:.3f} GFLOPs per 32x32 image"
    )
    print(
        "Stage 1 (estimators) and the evaluation come on top; the whole paper recipe trains standard AT, "
        "the estimators and MIAT."
    )


if __name__ == "__main__":
    main()
