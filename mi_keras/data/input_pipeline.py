"""The tf.data pipeline behind `load_dataset`: select, resize, cache, shuffle, augment, batch."""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from mi_keras.data.image_augmentation import ImageAugmentation
from mi_keras.data.pixels import to_uint8, to_unit_float
from mi_keras.data.source_data import SourceData

# Prepared uint8 examples up to this size are cached in memory (CIFAR-10 train: 150 MB).
CACHE_LIMIT_BYTES = 2 * 1024**3
# Shuffle buffer for streams too large to cache; in-memory data is shuffled whole.
STREAM_SHUFFLE_BUFFER = 10_000


def build_input_pipeline(
    source: SourceData,
    images: np.ndarray | None,
    labels: np.ndarray,
    indices: np.ndarray,
    image_shape: tuple[int, int, int],
    batch_size: int | None,
    shuffle: bool,
    seed: int | None,
    augmentation: ImageAugmentation | None,
    drop_remainder: bool,
    cache: bool | None,
) -> tf.data.Dataset:
    """Yields ``(image float32 [0, 1] [H, W, C], label int32)``, batched when ``batch_size``.

    Args:
        source: the source; its ``stream`` is read when ``images`` is None.
        images: the validated in-memory images (uint8 or float32 in [0, 1]), or None.
        labels: the validated labels of every example of ``source``.
        indices: which examples to yield, in file order.
        image_shape: the ``(H, W, C)`` to yield; images of another size are resized.
        batch_size: examples per batch, or None for single examples.
        shuffle: whether to reshuffle (seeded) at every epoch.
        seed: seeds the shuffle (the augmentation layer carries its own seed).
        augmentation: applied to one example at a time, or None.
        drop_remainder: whether to drop the last, smaller batch.
        cache: cache the prepared examples in memory; None caches decoded or resized
            examples when they fit in `CACHE_LIMIT_BYTES`.
    """
    labels = labels.astype(np.int32)
    if images is not None:
        dataset = tf.data.Dataset.from_tensor_slices((images[indices], labels[indices]))
        stored_shape = images.shape[1:]
    else:
        dataset = _select(source.stream(), indices, len(labels))
        stored_shape = source.image_shape
    needs_resize = tuple(stored_shape[:2]) != tuple(image_shape[:2])
    if needs_resize:
        dataset = dataset.map(_resizer(image_shape[:2]), num_parallel_calls=tf.data.AUTOTUNE)
    fits = len(indices) * math.prod(image_shape) <= CACHE_LIMIT_BYTES  # as uint8
    cached = cache if cache is not None else fits and (images is None or needs_resize)
    if cached:
        dataset = dataset.cache()
    if shuffle:
        in_memory = images is not None or cached
        buffer = len(indices) if in_memory else min(len(indices), STREAM_SHUFFLE_BUFFER)
        dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if augmentation is not None:
        # One seed pair per example, new at every epoch and fixed by `seed`: each example's
        # crop and flip depend on (seed, epoch, position) only, not on how far tf.data read
        # ahead before an iterator was dropped. The map stays sequential because the layer
        # writes each seed into shared seed-generator state before drawing from it.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip(dataset, seeds).map(
            lambda example, pair: (_augment_one(augmentation, example[0], pair), example[1])
        )
    else:
        dataset = dataset.map(lambda image, label: (to_unit_float(image), label), num_parallel_calls=tf.data.AUTOTUNE)
    if batch_size is not None:
        # A parallel batch would pull from the augmentation map on several threads at once.
        parallel = None if augmentation is not None else tf.data.AUTOTUNE
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=parallel)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _augment_one(augmentation: ImageAugmentation, image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    # A batch of one, so that every image gets its own crop offset.
    return augmentation(to_unit_float(image)[tf.newaxis], training=True, seed=seed)[0]


def _select(stream: tf.data.Dataset, indices: np.ndarray, total: int) -> tf.data.Dataset:
    """The examples of ``stream`` at ``indices`` (sorted), by position in the stream."""
    mask = np.zeros([total], bool)
    mask[indices] = True
    mask = tf.constant(mask)
    selected = stream.enumerate().filter(lambda position, example: tf.gather(mask, position))
    # tfds labels are int64; the contract is int32.
    selected = selected.map(lambda position, example: (example[0], tf.cast(example[1], tf.int32)))
    return selected.apply(tf.data.experimental.assert_cardinality(len(indices)))


def _resizer(size: tuple[int, int]):
    def resize(image, label):
        resized = tf.image.resize(tf.cast(image, tf.float32), size)
        if image.dtype == tf.uint8:
            resized = to_uint8(resized)
        return tf.ensure_shape(resized, [*size, image.shape[-1]]), label

    return resize
