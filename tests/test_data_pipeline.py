"""Specs, splits, augmentation and the file sources the real-data tests do not cover."""

from __future__ import annotations

import json
import pathlib

import keras
import numpy as np
import pytest
from harness import check_config_round_trip
from PIL import Image
from sklearn.datasets import load_digits

from mi_keras.data import (
    AugmentPolicy,
    DatasetSource,
    DatasetSpec,
    ImageAugmentation,
    load_dataset,
)
from mi_keras.data.splits import random_subset, resolve_size, stratified_split


def read_all(dataset) -> tuple[np.ndarray, np.ndarray]:
    batches = list(dataset.batch(10_000).as_numpy_iterator())
    return np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches])


# ---- specs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, source, location",
    [
        ("digits", DatasetSource.DIGITS, ""),
        ("cifar10", DatasetSource.TFDS, "cifar10"),
        ("tfds:mnist:3.0.1", DatasetSource.TFDS, "mnist:3.0.1"),
        ("idx:/data/mnist", DatasetSource.IDX, "/data/mnist"),
        ("NPZ:c.npz", DatasetSource.NPZ, "c.npz"),
        ("npy:miat/data", DatasetSource.NPY, "miat/data"),
        ("folder:/photos", DatasetSource.IMAGE_FOLDER, "/photos"),
        ("image_folder:/photos", DatasetSource.IMAGE_FOLDER, "/photos"),
    ],
)
def test_spec_parsing(text, source, location):
    spec = DatasetSpec.parse(text)
    assert (spec.source, spec.location) == (source, location)
    assert DatasetSpec.parse(str(spec)) == spec


def test_spec_paths_and_errors(tmp_path):
    assert DatasetSpec.parse("idx:mnist").path(tmp_path) == tmp_path / "mnist"
    assert DatasetSpec.parse("idx:/abs/mnist").path(tmp_path) == pathlib.Path("/abs/mnist")
    for bad, message in [("data/c.npz", "prefix"), ("", "non-empty"), ("idx:", "location")]:
        with pytest.raises(ValueError, match=message):
            DatasetSpec.parse(bad)


# ---- splits --------------------------------------------------------------------------


def test_stratified_split_is_exact_proportional_and_seeded():
    labels = np.repeat(np.arange(4), [500, 300, 150, 50])
    kept, carved = stratified_split(labels, 100, seed=3)
    assert len(carved) == 100 and len(kept) == 900
    assert not set(kept) & set(carved) and set(kept) | set(carved) == set(range(1000))
    np.testing.assert_array_equal(np.bincount(labels[carved]), [50, 30, 15, 5])
    np.testing.assert_array_equal(stratified_split(labels, 100, seed=3)[1], carved)
    assert not np.array_equal(stratified_split(labels, 100, seed=4)[1], carved)
    # Remainders: 7 of (3, 2, 2) examples -> shares 3, 2, 2 exactly.
    _, carved = stratified_split(np.repeat([0, 1, 2], [6, 4, 4]), 7, seed=0)
    np.testing.assert_array_equal(np.bincount(np.repeat([0, 1, 2], [6, 4, 4])[carved]), [3, 2, 2])


def test_sizes_and_subsets():
    assert resolve_size(0.1, 1797, "validation_size") == 180
    assert resolve_size(25, 100, "test_size") == 25
    for bad in (1.0, -0.1, 100, True, "0.1"):
        with pytest.raises(ValueError, match="test_size"):
            resolve_size(bad, 100, "test_size")
    subset = random_subset(np.arange(100, 200), 10, seed=0)
    assert len(subset) == 10 and np.all(np.diff(subset) > 0) and subset.min() >= 100
    assert subset.max() - subset.min() > 50  # spread over the file, not its first rows


def test_take_limits_the_split():
    dataset, info = load_dataset("digits", "validation", batch_size=None, take=50)
    images, labels = read_all(dataset)
    assert len(images) == 50 == info.num_examples["validation"] == sum(info.class_counts["validation"])
    again, _ = load_dataset("digits", "validation", batch_size=None, take=50)
    np.testing.assert_array_equal(read_all(again)[0], images)
    assert json.loads(json.dumps(info.to_dict()))["num_examples"] == {
        "train": 1294,
        "validation": 50,
    }


# ---- augmentation --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, shape, expected",
    [
        ("cifar10", (32, 32, 3), AugmentPolicy.CROP_FLIP),
        ("svhn_cropped", (32, 32, 3), AugmentPolicy.CROP),
        ("mnist", (28, 28, 1), AugmentPolicy.CROP),
        ("fashion_mnist", (28, 28, 1), AugmentPolicy.CROP),
        ("digits", (8, 8, 1), AugmentPolicy.CROP),
    ],
)
def test_auto_policy_never_flips_digits(name, shape, expected):
    assert AugmentPolicy.from_argument(True).resolve(name, shape) is expected
    assert AugmentPolicy.from_argument("crop_flip").resolve(name, shape) is AugmentPolicy.CROP_FLIP
    assert AugmentPolicy.from_argument(False) is AugmentPolicy.NONE


def explain(original: np.ndarray, augmented: np.ndarray, padding: int) -> tuple[int, int, bool]:
    """The (dy, dx, flipped) for which ``augmented`` is ``original`` shifted with zero fill."""
    height, width = original.shape[:2]
    padded = np.pad(original, ((padding, padding), (padding, padding), (0, 0)))
    for dy in range(2 * padding + 1):
        for dx in range(2 * padding + 1):
            crop = padded[dy : dy + height, dx : dx + width]
            for flipped, candidate in ((False, crop), (True, crop[:, ::-1])):
                if np.array_equal(candidate, augmented):
                    return dy - padding, dx - padding, flipped
    raise AssertionError("the output is no padded crop (or its mirror) of the input")


def test_image_augmentation_is_a_per_image_padded_crop_and_flip():
    rng = np.random.default_rng(0)
    images = rng.uniform(0.1, 1.0, (64, 12, 12, 3)).astype(np.float32)
    augmentation = ImageAugmentation(12, 12, padding=2, horizontal_flip=True, seed=5)
    moves = [explain(image, out, 2) for image, out in zip(images, _per_image(augmentation, images), strict=True)]
    assert len({move[:2] for move in moves}) > 5, "every image should get its own offset"
    assert {move[2] for move in moves} == {False, True}
    assert all(abs(dy) <= 2 and abs(dx) <= 2 for dy, dx, _ in moves)
    np.testing.assert_array_equal(augmentation(images, training=False), images)
    no_flip = ImageAugmentation(12, 12, padding=2, horizontal_flip=False, seed=5)
    assert not any(explain(image, out, 2)[2] for image, out in zip(images, _per_image(no_flip, images), strict=True))


def test_seed_tensor_makes_a_call_reproducible():
    images = np.random.default_rng(1).uniform(0.1, 1.0, (1, 12, 12, 3)).astype(np.float32)
    layer = ImageAugmentation(12, 12, padding=3, seed=None)
    by_seed = {
        seed: [np.asarray(layer(images, training=True, seed=np.array([seed, seed + 100]))) for _ in range(2)]
        for seed in range(6)
    }
    for first, second in by_seed.values():
        np.testing.assert_array_equal(first, second)
    assert len({outputs[0].tobytes() for outputs in by_seed.values()}) > 1


def _per_image(augmentation, images):
    return np.stack([np.asarray(augmentation(image[None], training=True)[0]) for image in images])


def test_image_augmentation_config_round_trip():
    layer = ImageAugmentation(32, 32, padding=4, horizontal_flip=False, seed=9, name="augment")
    assert check_config_round_trip(layer).padding == 4
    with pytest.raises(ValueError, match="padding"):
        ImageAugmentation(8, 8, padding=-1)
    with pytest.raises(ValueError, match="got images of 32x32"):
        ImageAugmentation(28, 28)(np.zeros((1, 32, 32, 3), "float32"), training=True)


def test_augmented_digits_pipeline_keeps_the_contract():
    dataset, info = load_dataset("digits", "train", batch_size=32, augment=True, seed=0)
    plain, _ = load_dataset("digits", "train", batch_size=32, seed=0)
    (images, labels), (plain_images, plain_labels) = next(iter(dataset)), next(iter(plain))
    assert images.shape == (32, 8, 8, 1) and images.dtype == "float32"
    np.testing.assert_array_equal(labels, plain_labels)  # same shuffle
    assert not np.array_equal(images, plain_images)  # but cropped
    for original, out in zip(plain_images.numpy(), images.numpy(), strict=True):
        assert not explain(original, out, padding=1)[2]  # never flipped


# ---- file sources round trip pixel for pixel -----------------------------------------


@pytest.fixture(scope="module")
def digits_uint8() -> tuple[np.ndarray, np.ndarray]:
    digits = load_digits()
    return (digits.images * 15).astype(np.uint8), digits.target


def test_npy_folder_official_miat_layout(tmp_path, digits_uint8):
    images, labels = digits_uint8
    for split, part in (("train", slice(0, 1500)), ("test", slice(1500, None))):
        np.save(tmp_path / f"{split}_images.npy", np.repeat(images[part, :, :, None], 3, axis=-1))
        np.save(tmp_path / f"{split}_labels.npy", labels[part])
    dataset, info = load_dataset(f"npy:{tmp_path}", "test", batch_size=None)
    read_images, read_labels = read_all(dataset)
    assert info.num_examples == {"test": 297} and info.image_shape == (8, 8, 3)
    np.testing.assert_array_equal(np.round(read_images[..., 0] * 255), images[1500:])
    np.testing.assert_array_equal(read_labels, labels[1500:])
    _, info = load_dataset(f"npy:{tmp_path}", "train", batch_size=None, validation_size=300)
    assert info.num_examples == {"train": 1200, "validation": 300}


def test_npz_keras_layout_uses_its_test_arrays(tmp_path, digits_uint8):
    images, labels = digits_uint8
    archive = tmp_path / "digits.npz"
    np.savez(
        archive,
        x_train=images[:1000],
        y_train=labels[:1000],
        x_test=images[1000:],
        y_test=labels[1000:],
    )
    dataset, info = load_dataset(f"npz:{archive}", "test", batch_size=None)
    read_images, _ = read_all(dataset)
    assert info.num_examples == {"test": 797} and info.name == "digits"
    np.testing.assert_array_equal(np.round(read_images[..., 0] * 255), images[1000:])


def test_npz_file_per_split_reads_each_file_whole(tmp_path, digits_uint8):
    images, labels = digits_uint8
    np.savez(tmp_path / "digits_train.npz", x=images[:1000], y=labels[:1000])
    np.savez(tmp_path / "digits_test.npz", x=images[1000:], y=labels[1000:])
    spec = "npz:digits_{split}.npz"  # relative: found under data_dir
    test, info = load_dataset(spec, "test", batch_size=None, data_dir=tmp_path)
    read_images, read_labels = read_all(test)
    assert info.num_examples == {"test": 797}  # the whole file, not a carved share of a pool
    np.testing.assert_array_equal(np.round(read_images[..., 0] * 255), images[1000:])
    np.testing.assert_array_equal(read_labels, labels[1000:])
    _, info = load_dataset(spec, "train", batch_size=None, data_dir=tmp_path, validation_size=100)
    assert info.num_examples == {"train": 900, "validation": 100}
    assert DatasetSpec.parse(spec).paths(tmp_path) == [tmp_path / "digits_train.npz", tmp_path / "digits_test.npz"]
    with pytest.raises(ValueError, match="one file per split"):
        DatasetSpec.parse(spec).path(tmp_path)


def test_image_folder_with_train_and_test(tmp_path, digits_uint8):
    images, labels = digits_uint8
    for index, (image, label) in enumerate(zip(images[:200], labels[:200], strict=True)):
        split = "test" if index % 4 == 0 else "train"
        folder = tmp_path / "photos" / split / f"digit_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, mode="L").save(folder / f"{index:04d}.png")
    dataset, info = load_dataset("folder:photos", "test", batch_size=None, data_dir=tmp_path)
    read_images, read_labels = read_all(dataset)
    assert info.image_shape == (8, 8, 1) and info.num_examples == {"test": 50}
    assert info.class_names == tuple(f"digit_{label}" for label in range(10))
    # Files are read class by class; compare as sorted (label, pixels) rows.
    expected = sorted(zip(labels[:200:4].tolist(), [image.tobytes() for image in images[:200:4]], strict=True))
    found = sorted(
        zip(
            read_labels.tolist(),
            [np.round(image[..., 0] * 255).astype(np.uint8).tobytes() for image in read_images],
            strict=True,
        )
    )
    assert found == expected
    _, info = load_dataset("folder:photos", "train", batch_size=None, data_dir=tmp_path, image_size=(16, 16))
    assert info.image_shape == (16, 16, 1) and info.num_examples == {"train": 135, "validation": 15}


def test_resize_in_memory_images():
    dataset, info = load_dataset("digits", "test", batch_size=16, image_size=(16, 16))
    images, _ = next(iter(dataset))
    assert info.image_shape == (16, 16, 1) and images.shape == (16, 16, 16, 1)
    assert 0.0 <= float(np.min(images)) and float(np.max(images)) <= 1.0


def test_keras_model_trains_on_the_pipeline():
    train, info = load_dataset("digits", "train", batch_size=64, augment=True, seed=0)
    validation, _ = load_dataset("digits", "validation", batch_size=64)
    inputs = keras.Input(info.image_shape)
    outputs = keras.layers.Dense(info.num_classes)(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(train, validation_data=validation, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert np.isfinite(history.history["val_loss"][-1])
