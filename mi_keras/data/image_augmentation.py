"""Random crop with zero padding and horizontal flip, as one Keras preprocessing layer."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="mi_keras")
class ImageAugmentation(keras.layers.Layer):
    """Pads with zeros, crops back to the input size at a random offset, and maybe flips.

    This is the standard CIFAR augmentation of adversarial training (``RandomCrop(32,
    padding=4)`` and ``RandomHorizontalFlip()`` in the official MIAT code; Madry et al.,
    2018, "Towards Deep Learning Models Resistant to Adversarial Attacks"): a
    `keras.layers.ZeroPadding2D`, then TensorFlow's stateless `tf.image.stateless_random_crop`
    and `tf.image.stateless_random_flip_left_right`, whose seeds come from the caller or
    from the layer's `keras.random.SeedGenerator`. In inference mode it returns its input
    unchanged.

    The crop draws one offset per call, so `load_dataset` applies this layer to one image
    at a time (a batch of one) to give each image its own crop; flips are drawn per image.
    The same ``seed`` gives the same sequence of crops and flips; a ``seed`` tensor passed
    to the call makes that call a pure function of it, which is how the input pipeline
    stays reproducible whatever tf.data reads ahead.

    Example:
    ```python
    import numpy as np
    import tensorflow as tf
    from mi_keras.data import ImageAugmentation

    images = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    augmentation = ImageAugmentation(32, 32, padding=4, horizontal_flip=True, seed=0)
    augmented = augmentation(images, training=True)
    augmented = augmentation(images, training=True, seed=tf.constant([3, 4]))  # reproducible
    ```

    Args:
        height: the images' height (checked when the layer is built).
        width: the images' width (checked when the layer is built).
        padding: zeros added on every side before cropping; 0 disables the crop.
        horizontal_flip: whether to flip left-right with probability 1/2.
        seed: optional int for a reproducible sequence.
        **kwargs: passed to `keras.layers.Layer` (e.g. ``name``).
    """

    def __init__(
        self,
        height: int,
        width: int,
        padding: int = 4,
        horizontal_flip: bool = True,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if height < 1 or width < 1:
            raise ValueError(f"`height` and `width` must be >= 1; got {height} and {width}.")
        if padding < 0:
            raise ValueError(f"`padding` must be >= 0 pixels; got {padding}.")
        self.height = height
        self.width = width
        self.padding = padding
        self.horizontal_flip = horizontal_flip
        self.seed = seed
        self.pad = keras.layers.ZeroPadding2D(padding) if padding else None
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        size = tuple(input_shape)[1:3]
        if None not in size and size != (self.height, self.width):
            raise ValueError(
                f"ImageAugmentation({self.height}, {self.width}) got images of {size[0]}x{size[1]}; "
                "pass the images' own height and width (the crop keeps the input size)."
            )
        super().build(input_shape)

    def call(self, images, training=True, seed=None):
        """Augments ``images`` in training mode.

        Args:
            images: ``[batch, height, width, channels]`` floats.
            training: False returns ``images`` unchanged.
            seed: optional int tensor of shape ``[2]``: one stream for the crop, one for the
                flip. Without it the layer's seed generator advances call after call.
        """
        if not training:
            return images
        if seed is None:
            crop_seed, flip_seed = self.seed_generator.next(), self.seed_generator.next()
        else:
            seed = tf.cast(seed, tf.int64)
            crop_seed, flip_seed = (tf.stack([stream, tf.zeros_like(stream)]) for stream in (seed[0], seed[1]))
        if self.pad is not None:
            images = tf.image.stateless_random_crop(self.pad(images), tf.shape(images), seed=crop_seed)
        if self.horizontal_flip:
            images = tf.image.stateless_random_flip_left_right(images, seed=flip_seed)
        return images

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "height": self.height,
                "width": self.width,
                "padding": self.padding,
                "horizontal_flip": self.horizontal_flip,
                "seed": self.seed,
            }
        )
        return config
