"""tensorflow_datasets: the offline error is fast and clear; mock data yields the contract."""

from __future__ import annotations

import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from mi_keras.data import DataError, DatasetSource, load_dataset


def test_offline_tfds_fails_fast_and_says_how_to_place_the_data(tmp_path):
    data_dir = tmp_path / "tensorflow_datasets"
    start = time.perf_counter()
    with pytest.raises(DataError) as raised:
        load_dataset("cifar10", data_dir=data_dir)
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0, f"took {elapsed:.1f} s: tfds.load would have retried for ~205 s"
    message = str(raised.value)
    for needed in (
        str(data_dir / "cifar10" / "3.0.2"),
        "not prepared",
        "tfds build cifar10 --data_dir=DIR",
        "download=True",
        "'idx:'",
    ):
        assert needed in message, f"{needed!r} not in {message!r}"
    assert not data_dir.exists(), "the failed call created the data folder"


def test_unknown_tfds_name_is_a_short_clear_error(tmp_path):
    with pytest.raises(DataError, match="not_a_dataset_xyz: is not a tensorflow_datasets dataset"):
        load_dataset("tfds:not_a_dataset_xyz", data_dir=tmp_path)


def test_mock_tfds_yields_the_contract():
    # Mocked builders are never "prepared"; download=True runs the mock's no-op preparation.
    with tfds.testing.mock_data(num_examples=40):
        dataset, info = load_dataset("tfds:cifar10", "train", batch_size=8, augment=True, seed=0, download=True)
        batches = list(dataset.as_numpy_iterator())
        raw = tfds.load("cifar10", split="train", as_supervised=True, shuffle_files=False)
        mocked_names = tuple(tfds.builder("cifar10").info.features["label"].names)
        raw_images = np.stack([image for image, _ in raw.as_numpy_iterator()])
        selected = {}
        for split in ("train", "validation"):
            unshuffled, _ = load_dataset("tfds:cifar10", split, batch_size=None, shuffle=False, download=True)
            selected[split] = np.stack([image for image, _ in unshuffled.as_numpy_iterator()])
    assert info.source is DatasetSource.TFDS and info.name == "cifar10"
    # Mocked from code, cifar10's ClassLabel has no names file: tfds itself says "0".."9".
    assert info.class_names == mocked_names and info.num_classes == 10
    assert info.image_shape == (32, 32, 3)
    assert info.num_examples == {"train": 36, "validation": 4}
    assert len(batches) == 36 // 8  # drop_remainder: full batches only
    for images, labels in batches:
        assert images.shape == (8, 32, 32, 3) and images.dtype == np.float32
        assert 0.0 <= images.min() and images.max() <= 1.0
        assert labels.dtype == np.int32 and 0 <= labels.min() and labels.max() < 10
    # Train and validation partition the examples tfds gave, pixel for pixel.
    together = np.concatenate([selected["train"], selected["validation"]]) * 255
    assert len(together) == len(raw_images) == 40
    together_sorted = np.sort(np.round(together).astype(np.uint8).reshape(40, -1), axis=0)
    np.testing.assert_array_equal(together_sorted, np.sort(raw_images.reshape(40, -1), axis=0))


def test_mock_tfds_grayscale_test_split():
    with tfds.testing.mock_data(num_examples=12):
        dataset, info = load_dataset("mnist", "test", batch_size=4, download=True)
        images, labels = next(iter(dataset))
    assert info.image_shape == (28, 28, 1) and info.num_examples == {"test": 12}
    assert images.shape == (4, 28, 28, 1) and labels.shape == (4,)


def test_non_image_dataset_is_rejected():
    with tfds.testing.mock_data(num_examples=4):
        with pytest.raises(DataError, match="not an image-classification dataset"):
            load_dataset("tfds:imdb_reviews", download=True)


def test_prepared_tfds_dataset_is_read_from_data_dir(tmp_path):
    """A really prepared dataset (tfds' offline DummyMnist), read with no mock at all."""
    data_dir = tmp_path / "tensorflow_datasets"
    tfds.testing.DummyMnist(data_dir=data_dir).download_and_prepare()
    dataset, info = load_dataset("tfds:dummy_mnist", "test", batch_size=5, data_dir=data_dir)
    images = np.concatenate([x for x, _ in dataset.as_numpy_iterator()])
    labels = np.concatenate([y for _, y in dataset.as_numpy_iterator()])
    raw = tfds.load("dummy_mnist", split="test", data_dir=data_dir, shuffle_files=False)
    raw_images = np.stack([example["image"] for example in raw.as_numpy_iterator()])
    raw_labels = np.array([example["label"] for example in raw.as_numpy_iterator()])
    assert info.origin == str(data_dir / "dummy_mnist" / "3.0.1")
    assert info.num_examples == {"test": 20} and info.image_shape == (28, 28, 1)
    assert images.dtype == np.float32 and labels.dtype == np.int32
    np.testing.assert_array_equal(np.round(images * 255).astype(np.uint8), raw_images)
    np.testing.assert_array_equal(labels, raw_labels)
    assert info.class_counts["test"] == tuple(np.bincount(raw_labels, minlength=10))
    _, info = load_dataset("tfds:dummy_mnist", "train", batch_size=4, data_dir=data_dir)
    assert info.num_examples == {"train": 18, "validation": 2}
    # DummyMnist is in no registry: tfds found it only through the files under data_dir.
    with pytest.raises(DataError, match="dummy_mnist: is not a tensorflow_datasets dataset"):
        load_dataset("tfds:dummy_mnist", data_dir=tmp_path / "elsewhere")
