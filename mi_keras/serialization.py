"""The one helper for Keras objects whose constructor also accepts their serialized config."""

from __future__ import annotations

import keras


def deserialize_if_config(value):
    """A Keras object from its serialized config (as `from_config` passes it), else unchanged.

    Example:
    ```python
    import keras
    from mi_keras.attacks import PGD
    from mi_keras.serialization import deserialize_if_config

    attack = deserialize_if_config(keras.saving.serialize_keras_object(PGD(0.1)))  # a PGD again
    assert deserialize_if_config(attack) is attack  # an instance passes through
    ```
    """
    return keras.saving.deserialize_keras_object(value) if isinstance(value, dict) else value
