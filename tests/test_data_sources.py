"""Every source on real data: shapes, dtypes, ranges and class counts against official figures.

MNIST and CIFAR-10 come from ../shared/data (skipped, with the reason, where it is absent),
Fashion-MNIST from the Debian package dataset-fashion-mnist when installed, digits always.
"""

from __future__ import annotations

import hashlib
import pathlib

import numpy as np
import pytest

from mi_keras.data import DatasetSource, load_dataset

# ../shared/data/README.md (equal to the official MNIST distribution).
MNIST_TRAIN_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
MNIST_TEST_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)
# The first test labels of the official t10k-labels-idx1-ubyte.
MNIST_FIRST_TEST_LABELS = (7, 2, 1, 0, 4, 1, 4, 9, 5, 9)
# Fashion-MNIST (Xiao et al., 2017): 6,000 training and 1,000 test images per class.
FASHION_MNIST_FOLDER = pathlib.Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
# Per-channel means of the CIFAR-10 test set, as widely quoted for [0, 1] pixels.
CIFAR10_TEST_MEANS = (0.4942, 0.4851, 0.4504)
# scikit-learn's digits are UCI optdigits' test set: 1,797 images, these counts per class.
DIGITS_COUNTS = (178, 182, 177, 183, 181, 182, 181, 179, 174, 180)


def read_all(dataset) -> tuple[np.ndarray, np.ndarray]:
    batches = list(dataset.as_numpy_iterator())
    return np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches])


def fingerprints(images: np.ndarray) -> set[str]:
    return {hashlib.sha1(image.tobytes()).hexdigest() for image in images}


def check_contract(images: np.ndarray, labels: np.ndarray, shape, num_classes: int) -> None:
    assert images.dtype == np.float32 and images.shape[1:] == shape
    assert labels.dtype == np.int32 and labels.shape == (len(images),)
    assert images.min() == 0.0 and images.max() == 1.0
    assert 0 <= labels.min() and labels.max() < num_classes


@pytest.mark.shared_data
def test_mnist_idx_test_split(shared_data_dir):
    dataset, info = load_dataset(f"idx:{shared_data_dir / 'mnist'}", "test", batch_size=1000)
    images, labels = read_all(dataset)
    check_contract(images, labels, (28, 28, 1), 10)
    assert info.source is DatasetSource.IDX and info.num_classes == 10
    assert info.num_examples == {"test": 10_000}
    assert tuple(np.bincount(labels)) == MNIST_TEST_COUNTS == info.class_counts["test"]
    assert tuple(labels[:10]) == MNIST_FIRST_TEST_LABELS  # file order kept: no shuffle
    # Every value is a multiple of 1/255: the uint8 pixels went through unchanged.
    np.testing.assert_allclose(images * 255, np.round(images * 255), atol=1e-4)
    assert images.mean(dtype=np.float64) == pytest.approx(0.1325, abs=5e-4)


@pytest.mark.shared_data
def test_mnist_idx_train_and_validation_counts(shared_data_dir):
    dataset, info = load_dataset("idx:mnist", "train", batch_size=128, data_dir=shared_data_dir, split_seed=0)
    train_counts = np.array(info.class_counts["train"])
    validation_counts = np.array(info.class_counts["validation"])
    assert tuple(train_counts + validation_counts) == MNIST_TRAIN_COUNTS
    assert info.num_examples == {"train": 54_000, "validation": 6_000}
    # Stratified: every class gives 10% of its examples, to within rounding.
    assert np.abs(validation_counts - np.array(MNIST_TRAIN_COUNTS) * 0.1).max() <= 1
    images, labels = next(iter(dataset))
    assert images.shape == (128, 28, 28, 1) and labels.shape == (128,)


@pytest.mark.shared_data
def test_cifar10_npz_pool_is_divided_without_overlap(shared_data_dir):
    spec = f"npz:{shared_data_dir / 'cifar10' / 'cifar10_test.npz'}"
    parts = {}
    for split in ("train", "validation", "test"):
        dataset, info = load_dataset(spec, split, batch_size=1000, shuffle=False, drop_remainder=False)
        parts[split] = read_all(dataset)
        check_contract(*parts[split], (32, 32, 3), 10)
        assert info.class_names == CIFAR10_CLASSES
    # The pool of 10,000 (1,000 per class) becomes 720 + 80 + 200 per class.
    for split, per_class in (("train", 720), ("validation", 80), ("test", 200)):
        assert tuple(np.bincount(parts[split][1])) == (per_class,) * 10
    prints = {split: fingerprints(images) for split, (images, _) in parts.items()}
    assert not prints["train"] & prints["validation"]
    assert not prints["train"] & prints["test"] and not prints["validation"] & prints["test"]
    assert len(prints["train"] | prints["validation"] | prints["test"]) == 10_000
    everything = np.concatenate([images for images, _ in parts.values()])
    np.testing.assert_allclose(everything.mean(axis=(0, 1, 2), dtype=np.float64), CIFAR10_TEST_MEANS, atol=1e-4)


@pytest.mark.skipif(
    not FASHION_MNIST_FOLDER.is_dir(),
    reason=f"{FASHION_MNIST_FOLDER} is absent: apt-get install -y dataset-fashion-mnist",
)
def test_fashion_mnist_idx():
    spec = f"idx:{FASHION_MNIST_FOLDER}"
    train, info = load_dataset(spec, "train", batch_size=64, class_names=FASHION_MNIST_CLASSES)
    counts = np.add(info.class_counts["train"], info.class_counts["validation"])
    assert tuple(counts) == (6000,) * 10 and info.num_examples["validation"] == 6000
    assert info.class_names == FASHION_MNIST_CLASSES
    test, info = load_dataset(spec, "test", batch_size=2000, class_names=FASHION_MNIST_CLASSES)
    images, labels = read_all(test)
    check_contract(images, labels, (28, 28, 1), 10)
    assert tuple(np.bincount(labels)) == (1000,) * 10
    assert images.mean(dtype=np.float64) == pytest.approx(0.2868, abs=1e-3)  # Fashion-MNIST test mean


def test_digits_always_available():
    parts, infos = {}, {}
    for split in ("train", "validation", "test"):
        dataset, infos[split] = load_dataset("digits", split, batch_size=None, shuffle=False)
        parts[split] = read_all(dataset.batch(2000))
        check_contract(*parts[split], (8, 8, 1), 10)
    all_labels = np.concatenate([labels for _, labels in parts.values()])
    assert tuple(np.bincount(all_labels)) == DIGITS_COUNTS
    assert infos["train"].num_examples == {"train": 1294, "validation": 144}
    assert infos["test"].num_examples == {"test": 359}
    prints = [fingerprints(images) for images, _ in parts.values()]
    assert len(prints[0] | prints[1] | prints[2]) == sum(len(p) for p in prints) == 1797
    # Pixels are load_digits() values (0..16) divided by 16.
    images = np.concatenate([images for images, _ in parts.values()])
    np.testing.assert_allclose(images * 16, np.round(images * 16), atol=1e-5)


def test_same_seed_same_batches():
    def first_batches(seed, epochs=1):
        dataset, _ = load_dataset("digits", "train", batch_size=32, augment=True, seed=seed)
        return [(x.numpy(), y.numpy()) for _ in range(epochs) for x, y in dataset.take(3)]

    first, again, other = first_batches(7), first_batches(7), first_batches(8)
    for (x1, y1), (x2, y2) in zip(first, again, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(first[0][1], other[0][1])
    # One dataset reshuffles and re-augments at every epoch, the same way every time.
    two_epochs = first_batches(7, epochs=2)
    assert not np.array_equal(two_epochs[0][1], two_epochs[3][1])
    for (x1, _), (x2, _) in zip(two_epochs, first_batches(7, epochs=2), strict=True):
        np.testing.assert_array_equal(x1, x2)
