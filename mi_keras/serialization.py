"""The one helper for Keras objects whose constructor also accepts their serialized config."""

from __future__ import annotations

import keras


def deserialize_if_config(value):
    """A Keras object from its serialized config (as `from_config` passes it), else unchanged.

    Example:
    ```python
    self.attack = deserialize_if_config(attack)  # a PGD instance, or PGD's get_config() dict
    ```
    """
    return keras.saving.deserialize_keras_object(value) if isinstance(value, dict) else value
