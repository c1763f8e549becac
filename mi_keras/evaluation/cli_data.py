"""The data arguments shared by the evaluation command lines, and the slice they select."""

from __future__ import annotations

import argparse
import inspect
import os

import numpy as np

from mi_keras.data import load_dataset
from mi_keras.evaluation.data_slice import DataSlice

# The split settings default to load_dataset's own, which the pipeline's data section shares.
_LOADER_DEFAULTS = {name: parameter.default for name, parameter in inspect.signature(load_dataset).parameters.items()}


def add_data_arguments(parser: argparse.ArgumentParser, n_examples: int = 1000) -> None:
    """``--dataset`` or ``--npz``, the split settings of ``--dataset`` and ``--n-examples``.

    With the pipeline's data settings (``data.dataset``, ``validation_size``, ``test_size``,
    ``split_seed``, ``num_classes``, ``image_size`` and ``test_take`` as ``--n-examples``),
    ``--dataset`` selects exactly the test split the pipeline evaluated.
    """
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--dataset",
        help="a spec for mi_keras.data.load_dataset: 'digits', 'mnist', 'idx:DIR', 'npz:FILE', ...; "
        "its --split is drawn as the pipeline draws it, from the split settings below",
    )
    source.add_argument(
        "--npz",
        help="an .npz whose every row is an evaluation example: 'x' (images [n,H,W,C] or [n,H,W], "
        "uint8 0-255 or float 0-1) and 'y'; the first --n-examples rows, in file order. For the "
        "test split of an .npz pool as the pipeline draws it, use --dataset npz:FILE",
    )
    parser.add_argument("--split", default="test", help="dataset split with --dataset (default: test)")
    parser.add_argument("--data-dir", help="tensorflow_datasets folder, or the base of relative file specs")
    for flag, key in (("--validation-size", "validation_size"), ("--test-size", "test_size")):
        parser.add_argument(
            flag,
            type=float,
            default=_LOADER_DEFAULTS[key],
            help=f"with --dataset: the pipeline's data.{key} (default {_LOADER_DEFAULTS[key]}); "
            "decides which examples each split holds",
        )
    parser.add_argument(
        "--split-seed",
        type=int,
        default=_LOADER_DEFAULTS["split_seed"],
        help=f"with --dataset: the pipeline's data.split_seed (default {_LOADER_DEFAULTS['split_seed']})",
    )
    parser.add_argument("--num-classes", type=int, help="with --dataset: the pipeline's data.num_classes")
    parser.add_argument(
        "--image-size",
        type=_image_size,
        help="with --dataset: the pipeline's data.image_size, HEIGHT,WIDTH",
    )
    parser.add_argument(
        "--n-examples",
        type=_count_or_all,
        default=n_examples,
        help="examples evaluated, or 'all': with --dataset, drawn at random under --split-seed "
        "as the pipeline's data.test_take draws them; with --npz, the file's first rows "
        f"(default {n_examples})",
    )


def load_data(args) -> DataSlice:
    """The slice the arguments of `add_data_arguments` (and ``--batch-size``) select."""
    if args.npz:
        return _npz_slice(args.npz, args.n_examples)
    dataset, _ = load_dataset(
        args.dataset,
        split=args.split,
        batch_size=args.batch_size,
        take=args.n_examples,
        data_dir=args.data_dir,
        validation_size=args.validation_size,
        test_size=args.test_size,
        split_seed=args.split_seed,
        num_classes=args.num_classes,
        image_size=args.image_size,
    )
    drawn = "every example" if args.n_examples is None else f"{args.n_examples} examples drawn at random"
    description = (
        f"{args.dataset} ({args.split} split of validation_size={args.validation_size}, "
        f"test_size={args.test_size}, split_seed={args.split_seed}), {drawn} "
        "(mi_keras.data.load_dataset, as the pipeline loads it)"
    )
    return DataSlice.from_source(dataset, args.n_examples, description)


def _count_or_all(text: str) -> int | None:
    if text.strip().lower() == "all":
        return None
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all'; got {text!r}")
    return count


def _image_size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHT,WIDTH; got {text!r}") from None
    if min(height, width) < 1:
        raise argparse.ArgumentTypeError(f"expected positive HEIGHT,WIDTH; got {text!r}")
    return height, width


def _npz_slice(path: str, n_examples: int | None) -> DataSlice:
    if not os.path.isfile(path):
        raise ValueError(f"--npz {path}: no such file.")
    with np.load(path) as arrays:
        missing = {"x", "y"} - set(arrays.files)
        if missing:
            raise ValueError(f"{path}: the .npz needs arrays 'x' and 'y'; missing {sorted(missing)}.")
        x, y = arrays["x"][:n_examples], arrays["y"][:n_examples]
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    if x.ndim == 3:
        x = x[..., None]
    return DataSlice(x, y, f"{os.path.basename(path)}, its first {len(x)} rows, in file order")
