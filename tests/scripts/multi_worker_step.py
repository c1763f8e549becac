"""One worker of a MultiWorkerMirroredStrategy job (``TF_CONFIG``) training a few MIAT steps.

The worker trains `build_model()` through `DistributedFit` on its half of each global batch
of `dataset()`. After each epoch it saves its weights to ``--out``/weights-<name>-epoch<E>.npz
(``name``: chief, worker-1) and prints ``epoch E done <logs as JSON>``; at the start it prints
``resumed at epoch E``. With ``--backup`` a `keras.callbacks.BackupAndRestore` keeps a
per-epoch backup there, so a test can kill a worker and restart the job. The test imports
`build_model` and `dataset` for its single-process reference. Run as separate processes:
the strategy must be created before any other TensorFlow op.
"""

import argparse
import json
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

import tensorflow as tf  # noqa: E402

SHAPE, GLOBAL_BATCH, STEPS_PER_EPOCH = (8, 8, 1), 16, 2


def parse_arguments():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--backup", default=None)
    parser.add_argument("--epoch-pause", type=float, default=0.0, help="seconds to sleep after each epoch")
    return parser.parse_args()


def build_model(learning_rate: float = 0.1, recompute_clean: bool = False):
    import keras

    from mi_keras.attacks import PGD
    from mi_keras.mi import MIEstimator
    from mi_keras.models import MIDefenseModel

    keras.utils.set_random_seed(0)  # the same initial weights in every process
    # No BatchNorm: per-replica batch statistics would differ by design.
    classifier = keras.Sequential(
        [
            keras.Input(SHAPE),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )
    estimators = [MIEstimator.for_classifier(SHAPE, 10, units=16) for _ in range(2)]
    # A deterministic attack start, so every run crafts the same x_adv.
    model = MIDefenseModel(
        classifier, *estimators, attack=PGD(0.3, steps=3, random_start="none"), lam=0.5, recompute_clean=recompute_clean
    )
    model.compile(optimizer=keras.optimizers.SGD(learning_rate))
    return model


def dataset():
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.random((GLOBAL_BATCH * STEPS_PER_EPOCH, *SHAPE), dtype=np.float32)
    y = rng.integers(0, 10, GLOBAL_BATCH * STEPS_PER_EPOCH).astype(np.int32)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH, drop_remainder=True)


def main():
    args = parse_arguments()
    tf.config.threading.set_intra_op_parallelism_threads(1)  # two workers share two cores
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from mi_keras.distribution import is_chief, multi_worker_strategy

    strategy = multi_worker_strategy(
        collective_timeout_seconds=60,
        startup_timeout_seconds=60,
        health_check_interval_seconds=1,
        health_check_timeout_seconds=2,
    )
    import keras
    import numpy as np

    from mi_keras.distributed_fit import DistributedFit

    name = "chief" if is_chief(strategy) else f"worker-{strategy.cluster_resolver.task_id}"
    out = pathlib.Path(args.out)

    class Progress(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            print(f"resumed at epoch {getattr(self.model, '_initial_epoch', None) or 0}", flush=True)

        def on_epoch_end(self, epoch, logs=None):
            np.savez(out / f"weights-{name}-epoch{epoch + 1}.npz", *self.model.get_weights())
            print(f"epoch {epoch + 1} done {json.dumps(logs)}", flush=True)
            time.sleep(args.epoch_pause)

    # The backup first: an epoch is reported once it is backed up, and a kill after the
    # report leaves every worker with the same last backup.
    callbacks = [Progress()]
    if args.backup:
        callbacks.insert(0, keras.callbacks.BackupAndRestore(args.backup, delete_checkpoint=False))
    with strategy.scope():
        model = build_model()
    DistributedFit(model, strategy).fit(dataset(), epochs=args.epochs, callbacks=callbacks)
    print("finished", flush=True)


if __name__ == "__main__":
    main()
