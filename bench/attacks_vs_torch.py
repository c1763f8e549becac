"""Our attacks against torchattacks (PyTorch) on the same networks, images and threads.

Two cases, each with a PyTorch twin of the Keras network (weights copied in; the bench checks
that both give the same logits on the attacked images, max |difference| <= 1e-5, else it stops):

- MNIST: a PGD-adversarially-trained TRADES SmallCNN (trained here and cached in
  ``bench/.cache/`` exactly as `bench/art_crosscheck.py` does, so the two benches share it; or
  given with ``--model path.keras``), the first ``--n`` test images (1,000), L-inf eps 0.3.
  About 85% of the points stay robust: the friendly case for an attack that computes on
  points already broken.
- CIFAR-10: a PGD-trained WRN-16-1 with the CPU study's standard-AT recipe (see
  `train_cifar_classifier`; cached in ``bench/.cache/``, or ``--cifar-model path.keras``),
  ``--cifar-n`` test images (500) from a seeded shuffle of the test file (which is grouped by
  class), L-inf eps 8/255. About half the points are broken by the first attack. The PyTorch
  twin runs BatchNorm in inference mode with the copied running statistics.

Then, side by side in one run, with the batch size of both set by ``--batch-size``:

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
  Both libraries run each target class (and restart) on the points still robust only; ours
  also drops a point from a run at the iteration that fools it (APGD) or puts it within eps
  (FAB), where the official code keeps computing on it to the end of the run.
- ``--steps`` and ``--square-queries`` shorten every attack of both libraries alike (and the
  AutoAttack rows); the full run keeps the published 100 and 5,000.

Targets: robust accuracies within 0.5 pp per attack (the table gives the binomial standard
error of ours, which at these sizes is larger), and ours at least 2.5 times as fast as
torchattacks' (speedup = torchattacks s / ours s).

Needs the ``bench`` extra (``pip install -e ".[bench]"``: torch and torchattacks).
Usage (the full run takes hours on 2 cores: Square's 5,000 queries dominate; the first run
also trains both networks, see their docstrings for the cost):
```
python bench/attacks_vs_torch.py                       # 1,000 + 500 images, published settings
python bench/attacks_vs_torch.py --train-only          # train and cache both networks first
python bench/attacks_vs_torch.py --ratios              # 100 + 100 images, published settings
python bench/attacks_vs_torch.py --datasets cifar10 --cifar-n 200   # one case, other size
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
from art_crosscheck import (  # noqa: E402  (bench/ is on sys.path)
    CACHE_DIR,
    MNIST_DIR,
    REPO_ROOT,
    add_classifier_arguments,
    adversarial_step,
    load_cached_weights,
    train_classifier,
)
from record import write_result  # noqa: E402

from mi_keras.attacks import PGD  # noqa: E402
from mi_keras.attacks.apgd import APGD  # noqa: E402
from mi_keras.attacks.apgd_targeted import APGDTargeted  # noqa: E402
from mi_keras.attacks.auto_attack import AutoAttack  # noqa: E402
from mi_keras.attacks.fab import FAB  # noqa: E402
from mi_keras.attacks.square import Square  # noqa: E402
from mi_keras.data import load_dataset  # noqa: E402
from mi_keras.enums import AttackLoss, RandomStart  # noqa: E402
from mi_keras.evaluation import AttackRunner, DataSlice  # noqa: E402
from mi_keras.models.architectures.building_blocks import BATCH_NORM_EPSILON  # noqa: E402
from mi_keras.models.architectures.wide_resnet import wide_resnet  # noqa: E402

CIFAR_DIR = REPO_ROOT.parent / "shared" / "data" / "cifar10"
EPS = {"mnist": 0.3, "cifar10": 8 / 255}
LOGITS_TOLERANCE = 1e-5
AGREEMENT_PP = 0.5
SPEEDUP_TARGET = 2.5
ROWS = ("PGD-40", "APGD-CE", "APGD-T", "FAB-T", "Square", "AutoAttack")
DATASETS = ("mnist", "cifar10")


def parse_arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="MNIST test images attacked (default 1000)")
    parser.add_argument("--cifar-n", type=int, default=500, help="CIFAR-10 test images attacked (default 500)")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--batch-size", type=int, default=500, help="batch size of both libraries")
    parser.add_argument("--steps", type=int, default=100, help="APGD, APGD-T and FAB-T iterations")
    parser.add_argument("--square-queries", type=int, default=5000, help="Square queries")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads of both")
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS)
    parser.add_argument("--model", help="a .keras SmallCNN (28x28x1 -> 10 logits); else trained")
    parser.add_argument("--cifar-model", help="a .keras WRN-16-1 (32x32x3 -> 10 logits); else trained")
    parser.add_argument("--cifar-train-examples", type=int, default=5000, help="CIFAR-10 training images (study: 5000)")
    parser.add_argument("--cifar-train-epochs", type=int, default=10, help="CIFAR-10 PGD-10 epochs (study: 10)")
    parser.add_argument(
        "--torch-autoattack-as-shipped",
        action="store_true",
        help="run torchattacks' AutoAttack with its shipped (10-step) settings",
    )
    add_classifier_arguments(parser)
    parser.add_argument(
        "--ratios",
        action="store_true",
        help="published settings on 100 images per dataset: the speed ratios in under 30 minutes",
    )
    parser.add_argument("--train-only", action="store_true", help="train and cache the networks, then stop")
    parser.add_argument("--quick", action="store_true", help="smoke run: 32 images, short attacks, small training")
    args = parser.parse_args(argv)
    if args.ratios:
        args.n = args.cifar_n = args.batch_size = 100
    if args.quick:
        args.n, args.cifar_n, args.batch_size, args.steps, args.square_queries = 32, 32, 32, 5, 20
        args.train_epochs, args.train_examples = 1, 4000
        args.cifar_train_epochs, args.cifar_train_examples = 1, 256
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


def torch_wide_resnet(keras_model: keras.Model):
    """`mi_keras`' WideResNet in PyTorch (NCHW) with ``keras_model``'s weights copied in.

    BatchNorm uses the copied running statistics (inference mode, as the attacks run the
    Keras model with ``training=False``)."""
    import torch
    from torch import nn

    layers = {layer.name: layer for layer in keras_model.layers}

    def conv(name):
        source = layers[name]
        kernel = source.kernel.numpy()
        target = nn.Conv2d(kernel.shape[2], kernel.shape[3], kernel.shape[0], source.strides[0], kernel.shape[0] // 2)
        target.bias = None
        with torch.no_grad():
            target.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
        return target

    def batch_norm(name):
        source = layers[name]
        target = nn.BatchNorm2d(source.gamma.shape[0], eps=BATCH_NORM_EPSILON)
        with torch.no_grad():
            for tensor, variable in zip(
                (target.weight, target.bias, target.running_mean, target.running_var),
                (source.gamma, source.beta, source.moving_mean, source.moving_variance),
                strict=True,
            ):
                tensor.copy_(torch.from_numpy(variable.numpy()))
        return target

    class Block(nn.Module):
        def __init__(self, name):
            super().__init__()
            self.bn1, self.conv1 = batch_norm(f"{name}_1_bn"), conv(f"{name}_conv1")
            self.bn2, self.conv2 = batch_norm(f"{name}_2_bn"), conv(f"{name}_conv2")
            shortcut = f"{name}_shortcut_conv"
            self.shortcut = conv(shortcut) if shortcut in layers else None

        def forward(self, x):
            preactivated = torch.relu(self.bn1(x))
            shortcut = x if self.shortcut is None else self.shortcut(preactivated)
            return self.conv2(torch.relu(self.bn2(self.conv1(preactivated)))) + shortcut

    class WideResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = conv("stem_conv")
            names = sorted({name.rsplit("_conv1", 1)[0] for name in layers if name.endswith("_conv1")})
            self.blocks = nn.Sequential(*[Block(name) for name in names])
            self.final_bn = batch_norm("final_bn")
            logits = layers["logits"]
            self.logits = nn.Linear(*logits.kernel.shape)
            with torch.no_grad():
                self.logits.weight.copy_(torch.from_numpy(np.ascontiguousarray(logits.kernel.numpy().T)))
                self.logits.bias.copy_(torch.from_numpy(logits.bias.numpy()))

        def forward(self, x):
            x = torch.relu(self.final_bn(self.blocks(self.stem(x))))
            return self.logits(x.mean(dim=(2, 3)))

    return WideResNet().eval()


def train_cifar_classifier(args) -> keras.Model:
    """PGD adversarial training of WRN-16-1 on CIFAR-10 with the CPU study's recipe, cached.

    The study's standard-AT settings (`pipeline/studies/cpu_study.py`): the first
    ``--cifar-train-examples`` (5,000) training images with random crop and flip, 10 epochs
    of batch 128, SGD lr 0.1 (divided by 10 after epochs 8 and 9), momentum 0.9, weight decay
    2e-4, PGD-10 at eps 8/255 with step 2/255 from ``x + 0.001 N(0, I)``.
    """
    model = wide_resnet((32, 32, 3), 10, depth=16, widen_factor=1)
    epochs, examples = args.cifar_train_epochs, args.cifar_train_examples
    weights = CACHE_DIR / f"cifar10_wrn16_1_pgd_e{epochs}_n{examples}_s{args.seed}.weights.h5"
    if load_cached_weights(model, weights, args.retrain):
        return model
    dataset, _ = load_dataset(
        f"npz:{CIFAR_DIR}/cifar10_{{split}}.npz",
        "train",
        batch_size=128,
        augment="crop_flip",
        seed=args.seed,
        validation_size=0,
        take=examples,
    )
    steps_per_epoch = -(-examples // 128)
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
        [8 * steps_per_epoch, 9 * steps_per_epoch], [0.1, 0.01, 0.001]
    )
    optimizer = keras.optimizers.SGD(schedule, momentum=0.9, weight_decay=2e-4)
    attack = PGD(EPS["cifar10"], steps=10, step_size=2 / 255, random_start=RandomStart.NORMAL)
    step = tf.function(lambda x, y, seed: adversarial_step(model, optimizer, attack, x, y, seed))
    started = time.perf_counter()
    for epoch in range(epochs):
        losses = [
            float(step(images, labels, tf.constant([args.seed, epoch * 100000 + index], tf.int64)))
            for index, (images, labels) in enumerate(dataset)
        ]
        print(
            f"epoch {epoch + 1}: adversarial loss {np.mean(losses):.3f}, {time.perf_counter() - started:.0f} s so far"
        )
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    model.save_weights(weights)
    return model


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


def time_forward_passes(keras_model, torch_model, x, repeats: int = 20) -> tuple[float, float]:
    """Seconds for ``repeats`` forward passes on one batch, TF vs PyTorch: the only model work
    of Square, which bounds its speedup."""
    import torch

    forward = tf.function(lambda images: keras_model(images, training=False))
    images = tf.constant(x)
    forward(images)  # trace
    started = time.perf_counter()
    for _ in range(repeats):
        forward(images).numpy()
    tf_seconds = time.perf_counter() - started
    torch_images = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    started = time.perf_counter()
    with torch.no_grad():
        for _ in range(repeats):
            torch_model(torch_images)
    return tf_seconds, time.perf_counter() - started


def our_attacks(args, eps: float) -> dict:
    targets = {"n_target_classes": 9}
    return {
        "PGD-40": PGD(eps, steps=40, step_size=eps / 4, random_start=RandomStart.UNIFORM),
        "APGD-CE": APGD(eps, loss=AttackLoss.CE, steps=args.steps, name="APGD-CE"),
        "APGD-T": APGDTargeted(eps, steps=args.steps, **targets, name="APGD-T"),
        "FAB-T": FAB(eps, steps=args.steps, targeted=True, **targets, name="FAB-T"),
        "Square": Square(eps, queries=args.square_queries, p_init=0.8, name="Square"),
        "AutoAttack": AutoAttack(
            eps,
            version="standard",
            steps=args.steps,
            queries=args.square_queries,
            batch_size=args.batch_size,
        ),
    }


def torch_attacks(args, model, eps: float) -> dict:
    import torchattacks

    seed = {"seed": args.seed}
    common = {"norm": "Linf", "eps": eps, **seed}
    auto_attack = torchattacks.AutoAttack(model, version="standard", n_classes=10, **common)
    if not args.torch_autoattack_as_shipped:
        apgd, apgd_targeted, fab, square = auto_attack._autoattack.attacks
        for attack in (apgd, apgd_targeted, fab):
            attack.steps = args.steps
        square.n_queries, square.rescale_schedule = args.square_queries, False
    return {
        "PGD-40": torchattacks.PGD(model, eps=eps, alpha=eps / 4, steps=40, random_start=True),
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


def load_case(args, dataset: str):
    """The Keras model, its PyTorch twin and the attacked test slice of one dataset."""
    if dataset == "mnist":
        model = keras.saving.load_model(args.model) if args.model else train_classifier(args)
        test, _ = load_dataset(f"idx:{MNIST_DIR}", "test", batch_size=None)
        data = DataSlice.from_source(test, args.n, f"MNIST test, first {args.n}")
        return model, torch_small_cnn(model), data
    model = keras.saving.load_model(args.cifar_model) if args.cifar_model else train_cifar_classifier(args)
    # The test file is grouped by class: a seeded shuffle gives a class-balanced slice.
    test, _ = load_dataset(f"npz:{CIFAR_DIR}/cifar10_{{split}}.npz", "test", batch_size=None, shuffle=True, seed=0)
    data = DataSlice.from_source(test, args.cifar_n, f"CIFAR-10 test, {args.cifar_n} shuffled (seed 0)")
    return model, torch_wide_resnet(model), data


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
    results = {}
    for dataset in args.datasets:
        keras.utils.set_random_seed(args.seed)
        torch.manual_seed(args.seed)  # torchattacks' PGD draws its start from the global generator
        if args.train_only:
            load_case(args, dataset)
        else:
            results[dataset] = run_case(args, dataset)
            print_table(dataset, results[dataset])
    if results and not args.quick:  # docs/benchmarks.md is rendered from this file by bench/report.py
        print(record_results(results, argv if argv is not None else sys.argv[1:]))
    return 0


def record_results(results: dict[str, list[tuple]], arguments: list[str]):
    """Writes results/bench/attacks_vs_torch.json: one row per dataset and attack."""
    columns = ["dataset", "attack", "n", "ours robust %", "torchattacks robust %", "diff pp", "+- SE pp"]
    columns += ["ours s", "torchattacks s", "speedup"]
    rows = [
        [
            dataset,
            name,
            n,
            round(100 * ours, 1),
            round(100 * theirs, 1),
            round(100 * (ours - theirs), 1),
            round(binomial_standard_error(ours, n), 1),
            round(our_seconds, 1),
            round(torch_seconds, 1),
            f"{torch_seconds / our_seconds:.2f}x",
        ]
        for dataset, rows in results.items()
        for name, ours, theirs, our_seconds, torch_seconds, n in rows
    ]
    notes = [
        f"Targets: speedup >= {SPEEDUP_TARGET}x and |diff| <= {AGREEMENT_PP} pp on every row; "
        "our times include each attack's tracing."
    ]
    command = " ".join(["python bench/attacks_vs_torch.py", *arguments])
    return write_result("attacks_vs_torch", "Our attacks vs torchattacks 3.5.1", command, columns, rows, notes)


def run_case(args, dataset: str) -> list[tuple]:
    """Both libraries' rows on one dataset: ``(name, ours, theirs, our s, their s, n)``."""
    import torch

    eps = EPS[dataset]
    model, torch_model, data = load_case(args, dataset)
    difference = check_logits(model, torch_model, data.x)
    warm_up_torch(torch_model, data.x[: args.batch_size])
    runner = AttackRunner(model, batch_size=args.batch_size, seed=args.seed, progress=False)
    clean = runner.predict(data.x) == data.y
    print(
        f"{data.description}: clean accuracy {100 * clean.mean():.1f}%, eps {eps:.4g}; "
        f"PyTorch copy max |logits difference| {difference:.1e}; threads: TensorFlow intra-op "
        f"{tf.config.threading.get_intra_op_parallelism_threads()} inter-op "
        f"{tf.config.threading.get_inter_op_parallelism_threads()}, PyTorch "
        f"{torch.get_num_threads()} / inter-op {torch.get_num_interop_threads()}; torch "
        f"{torch.__version__}; load average {os.getloadavg()[0]:.2f}"
    )
    tf_seconds, torch_seconds = time_input_gradients(
        model, torch_model, data.x[: args.batch_size], data.y[: args.batch_size]
    )
    print(
        f"20 input-gradient passes at batch {min(args.batch_size, len(data))}: TensorFlow "
        f"{tf_seconds:.2f} s, PyTorch {torch_seconds:.2f} s ({torch_seconds / tf_seconds:.2f}x)"
    )
    tf_seconds, torch_seconds = time_forward_passes(model, torch_model, data.x[: args.batch_size])
    print(
        f"20 forward passes at batch {min(args.batch_size, len(data))}: TensorFlow "
        f"{tf_seconds:.2f} s, PyTorch {torch_seconds:.2f} s ({torch_seconds / tf_seconds:.2f}x)"
    )
    ours, theirs = our_attacks(args, eps), torch_attacks(args, torch_model, eps)
    rows = []
    for name in args.rows:
        outcome = runner.run(ours[name], data.x, data.y, stream=name)
        our_accuracy = float(np.mean(clean & outcome.correct))
        x_adv, torch_seconds = run_torch(theirs[name], data.x, data.y, args.batch_size)
        outside = float(np.max(np.abs(x_adv - data.x)))
        if outside > eps + 1e-5 or x_adv.min() < 0 or x_adv.max() > 1:
            raise RuntimeError(f"torchattacks {name} left the eps ball or [0, 1] ({outside:.4f}).")
        torch_accuracy = float(np.mean(clean & (runner.predict(x_adv) == data.y)))
        rows.append((name, our_accuracy, torch_accuracy, outcome.seconds, torch_seconds, len(data)))
        if outcome.details:
            print(f"    ours, seconds per AutoAttack attack: {outcome.details['seconds']}")
        print(
            f"  {name}: ours {100 * our_accuracy:.1f}% in {outcome.seconds:.1f} s, "
            f"torchattacks {100 * torch_accuracy:.1f}% in {torch_seconds:.1f} s "
            f"(load average {os.getloadavg()[0]:.2f})",
            flush=True,
        )
    return rows


def binomial_standard_error(accuracy: float, n: int) -> float:
    """Standard error of an accuracy measured on ``n`` images, in percentage points."""
    return 100 * float(np.sqrt(accuracy * (1 - accuracy) / n))


def print_table(dataset: str, rows) -> None:
    print(f"\n{dataset}")
    print(
        "| attack | ours robust % | torchattacks robust % | diff pp | +- SE pp | ours s | torch s | speedup | targets |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, ours, theirs, our_seconds, torch_seconds, n in rows:
        speedup = torch_seconds / our_seconds
        agreement = "agree" if abs(ours - theirs) * 100 <= AGREEMENT_PP else "DIFFER"
        speed = "fast" if speedup >= SPEEDUP_TARGET else "SLOW"
        print(
            f"| {name} | {100 * ours:.1f} | {100 * theirs:.1f} | {100 * (ours - theirs):+.1f} | "
            f"{binomial_standard_error(ours, n):.1f} | {our_seconds:.1f} | {torch_seconds:.1f} | "
            f"{speedup:.2f}x | {agreement} / {speed} |"
        )


if __name__ == "__main__":
    sys.exit(main())
