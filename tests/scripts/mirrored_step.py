"""One MIDefenseModel step on one device and on two logical CPUs must give the same weights.

Run as a separate process: logical devices must be configured before TensorFlow starts.
``--recompute-clean`` runs the memory-saving step (`AdversarialModel`'s ``recompute_clean``).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from multi_worker_step import SHAPE, build_model  # noqa: E402  (the same model as the multi-worker test)

BATCH, LEARNING_RATE = 16, 0.5
RECOMPUTE_CLEAN = "--recompute-clean" in sys.argv[1:]


def build(weights=None):
    model = build_model(LEARNING_RATE, recompute_clean=RECOMPUTE_CLEAN)
    if weights is not None:
        model.set_weights(weights)
    return model


def main():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, *SHAPE), dtype=np.float32)
    y = rng.integers(0, 10, BATCH).astype(np.int32)
    single = build()
    initial = single.get_weights()
    single_logs = single.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0).history
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        mirrored = build(initial)
    mirrored_logs = mirrored.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0).history
    assert single_logs["selected_fraction"][0] > 0, "the MI loss must be active for this check to mean anything"
    differences = [np.abs(a - b).max() for a, b in zip(single.get_weights(), mirrored.get_weights())]
    moved = max(np.abs(a - b).max() for a, b in zip(single.get_weights(), initial))
    print("single", single_logs, "\nmirrored", mirrored_logs)
    print(f"max weight difference {max(differences):.2e} (weights moved by up to {moved:.2e})")
    assert moved > 1e-3
    assert max(differences) < 1e-5
    for key in ("loss", "mi_loss", "selected_fraction"):
        assert abs(single_logs[key][0] - mirrored_logs[key][0]) < 1e-5, key


if __name__ == "__main__":
    main()
