"""Our attacks against torchattacks (PyTorch) on the same small CNN, images and threads.

The Keras model is a PGD-adversarially-trained TRADES SmallCNN on MNIST (trained here and
cached in ``bench/.cache/`` exactly as `bench/art_crosscheck.py` does, so the two benches share
it; or given with ``--model path.keras``). The same network is built in PyTorch with the
Keras weights copied in, and the bench checks that both give the same logits on the attacked
test images (max |difference| <= 1e-5, else it stops). Then, side by side in one run, on the
first ``--n`` MNIST test images (1,000 by default) at L-inf eps 0.3, with the batch size of
both set by ``--batch-size``:

| row | ours | torchattacks 3.5.1 |
|---|---|---|
| PGD-40 | `PGD(steps=40, step_size=eps/4, random_start="uniform")` | `PGD(steps=40, alpha=eps/4, random_start=True)` |
| APGD-CE | `APGD(loss="ce", steps=100)` | `APGD(loss="ce", steps=100, n_restarts=1)` |
| APGD-T | `APGDTargeted(steps=100, n_target_classes=9)` | `APGDT(steps=100, n_classes=10, n_restarts=1)` |
| FAB-T | `FAB(targeted=True, steps=100, n_target_classes=9)` | `FAB(multi_targeted=True, steps=100, n_classes=10)` |
| Square | `Square(queries=5000, p_init=0.8)` | `Square(n_queries=5000, p_init=0.8, resc_schedule=False)` |
| AutoAttack | `AutoAttack(version="standard")` | `AutoAttack(version="standard")`, fixed as below |

Before the attacks it times 20 cross-entropy input-gradient passes on one batch in each
framework (the inner step of every gradient attack), which separates the frameworks' speed
from the attacks' own bookkeeping.

Robust accuracy is computed the same way for both: correct on the clean image AND on the
adversarial one, with our compiled Keras predictor (for the AutoAttack rows: robust to every
attack). Times are wall-clock seconds for the whole slice, our per-attack tracing included;
both libraries' one-time start-up (a first forward and backward pass) is done before timing.
Threads: TensorFlow intra-op ``--threads`` (2) and inter-op 1; PyTorch
``torch.set_num_threads(--threads)`` and ``torch.set_num_interop_threads(1)``.

Where the settings cannot match, or the libraries differ by design:
- torchattacks' `AutoAttack(version="standard")` as shipped is NOT the published standard: it
  builds APGD-CE, APGD-T and FAB-T with their constructors' default of 10 iterations (the
  published and ours: 100) and Square with ``resc_schedule=True`` (published and ours: the
  10,000-query schedule kept for 5,000 queries). The bench sets ``steps=100`` and
  ``rescale_schedule=False`` on its inner attacks so both run the published standard
  (``--torch-autoattack-as-shipped`` keeps the shipped settings instead).
- Random draws differ (starts, Square's squares, FAB's restarts), so agreement is expected
  within noise, not per sample. torchattacks' Square draws one square position per
  iteration for the whole batch (as the official code); ours draws one per sample.
- torchattacks' APGD and APGD-T follow the official code (start on the boundary, the same
  checkpoints and step-size halving), as ours; its FAB-T is the official code's as well.
- ``--steps`` and ``--square-queries`` shorten every attack of both libraries alike (and the
  AutoAttack rows); the full run keeps the published 100 and 5,000.

Targets (issue 14): robust accuracies within 1 pp per attack, and ours at least as fast as
torchattacks' (speedup = torchattacks s / ours s >= 1).

Needs the ``bench`` extra (``pip install -e ".[bench]"``: torch and torchattacks).
Usage (the full run takes hours on 2 cores: Square's 5,000 queries dominate):
```
python bench/attacks_vs_torch.py                       # 1,000 images, published settings
python bench/attacks_vs_torch.py --n 200 --steps 20 --square-queries 500   # a shorter run
python bench/attacks_vs_torch.py --quick               # a smoke run: 32 images, short attacks
python bench/attacks_vs_torch.py --model my_mnist_cnn.keras   # your own SmallCNN
```
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from art_crosscheck import MNIST_DIR, add_classifier_arguments, train_classifier  # noqa: E402  (bench/ is on sys.path)

from mi_keras.attacks import PGD  # noqa: E402
from mi_keras.attacks.apgd import APGD  # noqa: E402
from mi_keras.attacks.apgd_targeted import APGDTargeted  # noqa: E402
from mi_keras.attacks.auto_attack import AutoAttack  # noqa: E402
from mi_keras.attacks.fab import FAB  # noqa: E402
from mi_keras.attacks.square import Square  # noqa: E402
from mi_keras.data import load_dataset  # noqa: E402
from mi_keras.enums import AttackLoss, RandomStart  # noqa: E402
from mi_keras.evaluation import AttackRunner, DataSlice  # noqa: E402

EPS = 0.3
LOGITS_TOLERANCE = 1e-5
AGREEMENT_PP = 1.0
ROWS = ("PGD-40", "APGD-CE", "APGD-T", "FAB-T", "Square", "AutoAttack")


def parse_arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="test images attacked (default 1000)")
    parser.add_argument("--batch-size", type=int, default=500, help="batch size of both libraries")
    parser.add_argument("--steps", type=int, default=100, help="APGD, APGD-T and FAB-T iterations")
    parser.add_argument("--square-queries", type=int, default=5000, help="Square queries")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads of both")
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS)
    parser.add_argument("--model", help="a .keras SmallCNN (28x28x1 -> 10 logits); else trained")
    parser.add_argument(
        "--torch-autoattack-as-shipped",
        action="store_true",
        help="run torchattacks' AutoAttack with its shipped (10-step) settings",
    )
    add_classifier_arguments(parser)
    parser.add_argument("--quick", action="store_true", help="smoke run: 32 images, short attacks")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.batch_size, args.steps, args.square_queries = 32, 32, 5, 20
        args.train_epochs, args.train_examples = 1, 4000
    return args


def torch_small_cnn(keras_model: keras.Model):
    """The TRADES SmallCNN in PyTorch (NCHW) with ``keras_model``'s weights copied in."""
    import torch
    from torch import nn

    convs = [layer for layer in keras_model.layers if isinstance(layer, keras.layers.Conv2D)]
    denses = [layer for layer in keras_model.layers if isinstance(layer, keras.layers.Dense)]
    if len(convs) != 4 or len(denses) != 3:
        raise ValueError(
            "--model must be the TRADES SmallCNN (4 Conv2D and 3 Dense layers); got "
            f"{len(convs)} Conv2D and {len(denses)} Dense layers."
        )
    channels = [convs[0].kernel.shape[2]] + [conv.filters for conv in convs]
    layers = []
    for index in range(len(convs)):
        layers += [nn.Conv2d(channels[index], channels[index + 1], 3), nn.ReLU()]
        if index % 2 == 1:
            layers.append(nn.MaxPool2d(2))
    layers.append(nn.Flatten())
    for index, dense in enumerate(denses):
        layers.append(nn.Linear(dense.kernel.shape[0], dense.units))
        if index < len(denses) - 1:
            layers.append(nn.ReLU())  # dropout is the identity at attack time
    network = nn.Sequential(*layers).eval()
    torch_convs = [layer for layer in network if isinstance(layer, nn.Conv2d)]
    torch_linears = [layer for layer in network if isinstance(layer, nn.Linear)]
    with torch.no_grad():
        for source, target in zip(convs, torch_convs, strict=True):
            # Keras [kh, kw, in, out] -> PyTorch [out, in, kh, kw].
            target.weight.copy_(torch.from_numpy(source.kernel.numpy().transpose(3, 2, 0, 1)))
            target.bias.copy_(torch.from_numpy(source.bias.numpy()))
        first = denses[0].kernel.numpy()
        # Keras flattens the last map as (H, W, C), PyTorch as (C, H, W): reorder fc1's rows.
        flatten = next(layer for layer in keras_model.layers if isinstance(layer, keras.layers.Flatten))
        height, width, depth = flatten.input.shape[1:]
        first = first.reshape(height, width, depth, -1).transpose(2, 0, 1, 3).reshape(first.shape)
        for kernel, source, target in zip(
            [first] + [dense.kernel.numpy() for dense in denses[1:]], denses, torch_linears, strict=True
        ):
            target.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.T)))
            target.bias.copy_(torch.from_numpy(source.bias.numpy()))
    return network


def check_logits(keras_model, torch_model, x: np.ndarray) -> float:
    """Max |Keras logits - PyTorch logits| on ``x``; raises if above the tolerance."""
    import torch

    ours = keras_model.predict(x, batch_size=500, verbose=0)
    with torch.no_grad():
        theirs = torch_model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    difference = float(np.max(np.abs(ours - theirs)))
    if difference > LOGITS_TOLERANCE:
        raise RuntimeError(
            f"PyTorch copy differs from the Keras model: max |logits difference| {difference:.2e} "
            f"> {LOGITS_TOLERANCE:g}."
        )
    return difference


def warm_up_torch(torch_model, x: np.ndarray) -> None:
    """One forward and input-gradient pass, so PyTorch's one-time set-up is not timed.

    (Our side's one-time set-up, TensorFlow's, happened in `check_logits`; the per-attack
    tracing stays in our times.)"""
    import torch

    images = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_(True)
    torch_model(images).sum().backward()


def time_input_gradients(keras_model, torch_model, x, y, repeats: int = 20) -> tuple[float, float]:
    """Seconds for ``repeats`` cross-entropy input-gradient passes on one batch, TF vs PyTorch.

    The common inner step of every gradient attack: separates framework speed from the
    attacks' own bookkeeping."""
    import torch

    @tf.function
    def gradient(images, labels):
        with tf.GradientTape() as tape:
            tape.watch(images)
            loss = keras.losses.sparse_categorical_crossentropy(
                labels, keras_model(images, training=False), from_logits=True
            )
        return tape.gradient(loss, images)

    images, labels = tf.constant(x), tf.constant(y)
    gradient(images, labels)  # trace
    started = time.perf_counter()
    for _ in range(repeats):
        gradient(images, labels).numpy()
    tf_seconds = time.perf_counter() - started
    torch_images = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    torch_labels = torch.from_numpy(y.astype(np.int64))
    started = time.perf_counter()
    for _ in range(repeats):
        batch = torch_images.clone().requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(torch_model(batch), torch_labels, reduction="sum")
        torch.autograd.grad(loss, batch)
    return tf_seconds, time.perf_counter() - started


def our_attacks(args) -> dict:
    targets = {"n_target_classes": 9}
    return {
        "PGD-40": PGD(EPS, steps=40, step_size=EPS / 4, random_start=RandomStart.UNIFORM),
        "APGD-CE": APGD(EPS, loss=AttackLoss.CE, steps=args.steps, name="APGD-CE"),
        "APGD-T": APGDTargeted(EPS, steps=args.steps, **targets, name="APGD-T"),
        "FAB-T": FAB(EPS, steps=args.steps, targeted=True, **targets, name="FAB-T"),
        "Square": Square(EPS, queries=args.square_queries, p_init=0.8, name="Square"),
        "AutoAttack": AutoAttack(
            EPS,
            version="standard",
            steps=args.steps,
            queries=args.square_queries,
            batch_size=args.batch_size,
        ),
    }


def torch_attacks(args, model) -> dict:
    import torchattacks

    seed = {"seed": args.seed}
    common = {"norm": "Linf", "eps": EPS, **seed}
    auto_attack = torchattacks.AutoAttack(model, version="standard", n_classes=10, **common)
    if not args.torch_autoattack_as_shipped:
        apgd, apgd_targeted, fab, square = auto_attack._autoattack.attacks
        for attack in (apgd, apgd_targeted, fab):
            attack.steps = args.steps
        square.n_queries, square.rescale_schedule = args.square_queries, False
    return {
        "PGD-40": torchattacks.PGD(model, eps=EPS, alpha=EPS / 4, steps=40, random_start=True),
        "APGD-CE": torchattacks.APGD(model, loss="ce", steps=args.steps, n_restarts=1, **common),
        "APGD-T": torchattacks.APGDT(model, steps=args.steps, n_restarts=1, n_classes=10, **common),
        "FAB-T": torchattacks.FAB(model, steps=args.steps, n_restarts=1, multi_targeted=True, n_classes=10, **common),
        "Square": torchattacks.Square(
            model,
            n_queries=args.square_queries,
            p_init=0.8,
            n_restarts=1,
            resc_schedule=False,
            **common,
        ),
        "AutoAttack": auto_attack,
    }


def run_torch(attack, x: np.ndarray, y: np.ndarray, batch_size: int) -> tuple[np.ndarray, float]:
    """Adversarial images (NHWC) from a torchattacks attack, batch by batch, and the seconds."""
    import torch

    started, batches = time.perf_counter(), []
    for start in range(0, len(x), batch_size):
        images = torch.from_numpy(x[start : start + batch_size].transpose(0, 3, 1, 2).copy())
        labels = torch.from_numpy(y[start : start + batch_size].astype(np.int64))
        batches.append(attack(images, labels).detach().numpy().transpose(0, 2, 3, 1))
    return np.concatenate(batches), time.perf_counter() - started


def load_model(args) -> keras.Model:
    if args.model:
        return keras.saving.load_model(args.model)
    return train_classifier(args)


def main(argv=None) -> int:
    args = parse_arguments(argv)
    try:
        import torch
    except ImportError:
        sys.exit('This bench needs PyTorch and torchattacks: pip install -e ".[bench]"')
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    keras.utils.set_random_seed(args.seed)
    torch.manual_seed(args.seed)  # torchattacks' PGD draws its start from the global generator
    model = load_model(args)
    test, _ = load_dataset(f"idx:{MNIST_DIR}", "test", batch_size=None)
    data = DataSlice.from_source(test, args.n, f"MNIST test, first {args.n}")
    torch_model = torch_small_cnn(model)
    difference = check_logits(model, torch_model, data.x)
    warm_up_torch(torch_model, data.x[: args.batch_size])
    runner = AttackRunner(model, batch_size=args.batch_size, seed=args.seed, progress=False)
    clean = runner.predict(data.x) == data.y
    print(
        f"{len(data)} MNIST test images, clean accuracy {100 * clean.mean():.1f}%, eps {EPS}; "
        f"PyTorch copy max |logits difference| {difference:.1e}; threads: TensorFlow intra-op "
        f"{tf.config.threading.get_intra_op_parallelism_threads()} inter-op "
        f"{tf.config.threading.get_inter_op_parallelism_threads()}, PyTorch "
        f"{torch.get_num_threads()} / inter-op {torch.get_num_interop_threads()}; torch "
        f"{torch.__version__}"
    )
    tf_seconds, torch_seconds = time_input_gradients(
        model, torch_model, data.x[: args.batch_size], data.y[: args.batch_size]
    )
    print(
        f"20 input-gradient passes at batch {min(args.batch_size, len(data))}: TensorFlow "
        f"{tf_seconds:.2f} s, PyTorch {torch_seconds:.2f} s ({torch_seconds / tf_seconds:.2f}x)"
    )
    ours, theirs = our_attacks(args), torch_attacks(args, torch_model)
    rows = []
    for name in args.rows:
        outcome = runner.run(ours[name], data.x, data.y, stream=name)
        our_accuracy = float(np.mean(clean & outcome.correct))
        x_adv, torch_seconds = run_torch(theirs[name], data.x, data.y, args.batch_size)
        outside = float(np.max(np.abs(x_adv - data.x)))
        if outside > EPS + 1e-5 or x_adv.min() < 0 or x_adv.max() > 1:
            raise RuntimeError(f"torchattacks {name} left the eps ball or [0, 1] ({outside:.4f}).")
        torch_accuracy = float(np.mean(clean & (runner.predict(x_adv) == data.y)))
        rows.append((name, our_accuracy, torch_accuracy, outcome.seconds, torch_seconds))
        if outcome.details:
            print(f"    ours, seconds per AutoAttack attack: {outcome.details['seconds']}")
        print(
            f"  {name}: ours {100 * our_accuracy:.1f}% in {outcome.seconds:.1f} s, "
            f"torchattacks {100 * torch_accuracy:.1f}% in {torch_seconds:.1f} s",
            flush=True,
        )
    print_table(rows)
    return 0


def print_table(rows) -> None:
    print("\n| attack | ours robust % | torchattacks robust % | diff pp | ours s | torch s | speedup | targets |")
    print("|---|---|---|---|---|---|---|---|")
    for name, ours, theirs, our_seconds, torch_seconds in rows:
        speedup = torch_seconds / our_seconds
        agreement = "agree" if abs(ours - theirs) * 100 <= AGREEMENT_PP else "DIFFER"
        speed = "fast" if speedup >= 1.0 else "SLOW"
        print(
            f"| {name} | {100 * ours:.1f} | {100 * theirs:.1f} | {100 * (ours - theirs):+.1f} | "
            f"{our_seconds:.1f} | {torch_seconds:.1f} | {speedup:.2f}x | {agreement} / {speed} |"
        )


if __name__ == "__main__":
    sys.exit(main())
