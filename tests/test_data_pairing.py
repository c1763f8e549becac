"""Images and labels stay paired through every source and every split.

Class counts cannot see a permutation of the labels within a split; these tests can. The
synthetic sources' label is a function of the image (each image is one grey level, which
names its class), written in every file format; the sources whose content we do not choose
(digits, tensorflow_datasets, Tiny-ImageNet) are checked against the pairs they hold.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image
from sklearn.datasets import load_digits
from test_data_validation import write_idx
from test_tiny_imagenet import make_miniature

from mi_keras.data import load_dataset

COUNT, CLASSES = 80, 4
FIRST_LEVEL, LEVEL_STEP = 16, 2  # image i is one grey level, FIRST_LEVEL + LEVEL_STEP * i
TEST_COUNT = 20  # for the sources with their own test files


def synthetic() -> tuple[np.ndarray, np.ndarray]:
    """``COUNT`` uint8 8x8 images, each a single distinct grey level, and their labels."""
    levels = FIRST_LEVEL + LEVEL_STEP * np.arange(COUNT)
    images = np.broadcast_to(levels[:, None, None], (COUNT, 8, 8)).astype(np.uint8)
    return images, label_of_level(levels)


def label_of_level(levels: np.ndarray) -> np.ndarray:
    return ((levels - FIRST_LEVEL) // LEVEL_STEP % CLASSES).astype(np.int32)


def synthetic_labels(images: np.ndarray) -> np.ndarray:
    """The label each image names. Its brightest pixel is its level: a padded crop and a
    resize of a constant image keep it."""
    return label_of_level(np.round(images.reshape(len(images), -1).max(axis=1) * 255).astype(np.int64))


def write_npz_pool(folder: pathlib.Path, images, labels) -> str:
    np.savez(folder / "pool.npz", x=images, y=labels)
    return f"npz:{folder / 'pool.npz'}"


def write_npz_keras_layout(folder: pathlib.Path, images, labels) -> str:
    np.savez(
        folder / "keras.npz",
        x_train=images[TEST_COUNT:],
        y_train=labels[TEST_COUNT:],
        x_test=images[:TEST_COUNT],
        y_test=labels[:TEST_COUNT],
    )
    return f"npz:{folder / 'keras.npz'}"


def write_npz_per_split(folder: pathlib.Path, images, labels) -> str:
    np.savez(folder / "data_train.npz", x=images[TEST_COUNT:], y=labels[TEST_COUNT:])
    np.savez(folder / "data_test.npz", x=images[:TEST_COUNT], y=labels[:TEST_COUNT])
    return f"npz:{folder / 'data_{split}.npz'}"


def write_npy_folder(folder: pathlib.Path, images, labels) -> str:
    rgb = np.repeat(images[..., None], 3, axis=-1)
    for split, part in (("train", slice(TEST_COUNT, None)), ("test", slice(0, TEST_COUNT))):
        np.save(folder / f"{split}_images.npy", rgb[part])
        np.save(folder / f"{split}_labels.npy", labels[part])
    return f"npy:{folder}"


def write_idx_folder(folder: pathlib.Path, images, labels) -> str:
    for prefix, part in (("train", slice(TEST_COUNT, None)), ("t10k", slice(0, TEST_COUNT))):
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images[part])
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels[part])
    return f"idx:{folder}"


def write_image_folder_pool(folder: pathlib.Path, images, labels) -> str:
    for index, (image, label) in enumerate(zip(images, labels)):
        (folder / "pool" / f"class_{label}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, mode="L").save(folder / "pool" / f"class_{label}" / f"{index:03d}.png")
    return f"folder:{folder / 'pool'}"


def write_image_folder_splits(folder: pathlib.Path, images, labels) -> str:
    for index, (image, label) in enumerate(zip(images, labels)):
        class_folder = folder / "photos" / ("test" if index < TEST_COUNT else "train") / f"class_{label}"
        class_folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, mode="L").save(class_folder / f"{index:03d}.png")
    return f"folder:{folder / 'photos'}"


SYNTHETIC_WRITERS = [
    write_npz_pool,
    write_npz_keras_layout,
    write_npz_per_split,
    write_npy_folder,
    write_idx_folder,
    write_image_folder_pool,
    write_image_folder_splits,
]

# Every way `load_dataset` reaches a split: each split plain, then the training split
# shuffled, augmented, subsampled and resized, and the validation split subsampled.
PATHS = [
    ("train", {"shuffle": False}),
    ("validation", {}),
    ("test", {}),
    ("train", {"seed": 3}),
    ("train", {"augment": True, "seed": 3, "take": 30}),
    ("train", {"image_size": (12, 12), "seed": 1}),
    ("validation", {"take": 4, "validation_size": 0.25}),
]


def every_pair(spec: str, split: str, **options) -> tuple[np.ndarray, np.ndarray]:
    dataset, _ = load_dataset(spec, split, batch_size=5, drop_remainder=False, **options)
    batches = list(dataset.as_numpy_iterator())
    return np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches])


@pytest.mark.parametrize("write", SYNTHETIC_WRITERS, ids=lambda write: write.__name__.removeprefix("write_"))
def test_labels_stay_paired_with_their_images_in_every_split(tmp_path, write):
    spec = write(tmp_path, *synthetic())
    for split, options in PATHS:
        images, labels = every_pair(spec, split, **options)
        assert len(labels) > 0
        np.testing.assert_array_equal(labels, synthetic_labels(images), err_msg=f"{split} {options}")


def assert_pairs_known(images: np.ndarray, labels: np.ndarray, key: Callable[[np.ndarray], bytes], known) -> None:
    """Every (image, label) yielded is a pair the source holds (``known``: key -> labels)."""
    unpaired = [index for index, (image, label) in enumerate(zip(images, labels)) if label not in known[key(image)]]
    assert not unpaired, f"{len(unpaired)} of {len(labels)} labels are not their image's"


def known_pairs(images, labels, key) -> dict[bytes, set[int]]:
    known: dict[bytes, set[int]] = {}
    for image, label in zip(images, labels):
        known.setdefault(key(image), set()).add(int(label))
    return known


def test_digits_labels_stay_paired_in_every_split():
    digits = load_digits()

    def key(image):
        return np.round(np.asarray(image).reshape(8, 8) * 16).astype(np.uint8).tobytes()

    known = known_pairs(digits.images / 16, digits.target, key)
    for split, options in PATHS:
        if "augment" in options or "image_size" in options:
            continue  # a crop or a resize makes an image no digit holds
        assert_pairs_known(*every_pair("digits", split, **options), key, known)


def test_tfds_labels_stay_paired_in_every_split():
    def key(image):
        return np.round(np.asarray(image, np.float32) * 255).astype(np.uint8).tobytes()

    with tfds.testing.mock_data(num_examples=40):
        raw = list(tfds.load("cifar10", split="train", as_supervised=True, shuffle_files=False).as_numpy_iterator())
        known = known_pairs([image / 255 for image, _ in raw], [label for _, label in raw], key)
        for split, options in [("train", {"seed": 2}), ("validation", {}), ("train", {"take": 10})]:
            assert_pairs_known(*every_pair("tfds:cifar10", split, download=True, **options), key, known)


def test_tiny_imagenet_labels_stay_paired_in_every_split(tmp_path):
    spec = f"tiny_imagenet:{make_miniature(tmp_path)}"
    for split, options in [("train", {"seed": 2}), ("validation", {"validation_size": 6}), ("test", {})]:
        images, labels = every_pair(spec, split, **options)
        # The miniature's class k is brightest in channel k (its grayscale images aside).
        colour = images.std(axis=-1).mean(axis=(1, 2)) > 0.05
        np.testing.assert_array_equal(images.mean(axis=(1, 2)).argmax(-1)[colour], labels[colour])
