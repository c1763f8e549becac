"""``model.fit`` for `tf.distribute.MultiWorkerMirroredStrategy`, which Keras 3's own fit cannot run."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from mi_keras.distribution import is_multi_worker

AutoShardPolicy = tf.data.experimental.AutoShardPolicy


class DistributedFit:
    """Trains a compiled model with its own ``train_step`` / ``test_step`` under a strategy.

    Keras 3 (checked with 3.15.1 and TensorFlow 2.21) cannot ``fit`` under a multi-worker
    `tf.distribute.MultiWorkerMirroredStrategy` (keras-team/keras#20585): its symbolic build
    calls ``strategy.reduce`` on a nested batch, and its step reduces every scalar log with
    ``axis=0``; both raise ``ValueError`` on the first batch. This loop drives the same
    ``train_step`` through ``strategy.run``, so a `MIDefenseModel` step is the one of
    ``fit``: its batch-level cosines and DV negatives span the global batch.

    Data: each dataset yields *global* batches and is distributed with the auto-shard policy
    ``auto_shard_policy`` (``DATA`` by default: every worker reads the whole dataset and
    keeps its own rows of each global batch, so batch ``i`` of worker ``k`` holds rows
    ``[k * b / W, (k + 1) * b / W)`` of global batch ``i``; ``FILE`` shards by input file).
    Every worker must see the same dataset in the same order (same seed).

    Callbacks: a `keras.callbacks.CallbackList` with a ``History``, called as ``fit`` calls
    them. Batch logs are this worker's (a `MIDefenseModel`'s losses are already global);
    epoch logs, ``val_`` ones included, are aggregated over every replica. A
    `keras.callbacks.BackupAndRestore` resumes at its last epoch; the workers then check
    that they all resume at the same epoch and raise ``RuntimeError`` if not. Callbacks
    write on every worker: give the non-chief workers their own folders (see
    ``mi_keras.distribution.is_chief``).

    Example:
    ```python
    # Needs a multi-worker cluster (TF_CONFIG naming several hosts): tests/test_public_api.py skips it.
    import keras
    from mi_keras.attacks import PGD
    from mi_keras.data import load_dataset
    from mi_keras.distributed_fit import DistributedFit
    from mi_keras.distribution import multi_worker_strategy
    from mi_keras.mi import MIEstimator
    from mi_keras.models import MIDefenseModel, build_classifier

    strategy = multi_worker_strategy()  # first TensorFlow call of the process
    train_ds, info = load_dataset("cifar10", "train", batch_size=128, augment=True, seed=0)
    val_ds, _ = load_dataset("cifar10", "validation", batch_size=512)
    with strategy.scope():
        classifier = build_classifier("resnet18", info.image_shape, info.num_classes)
        natural, adversarial = (MIEstimator.for_classifier(info.image_shape, 10) for _ in range(2))  # trained
        model = MIDefenseModel(classifier, natural, adversarial, attack=PGD(eps=8 / 255))
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    history = DistributedFit(model, strategy).fit(train_ds, epochs=100, validation_data=val_ds)
    ```

    Args:
        model: a compiled Keras model whose variables were created under ``strategy.scope()``.
        strategy: the strategy; defaults to the model's.
        auto_shard_policy: a `tf.data.experimental.AutoShardPolicy`.
    """

    def __init__(
        self,
        model: keras.Model,
        strategy: tf.distribute.Strategy | None = None,
        auto_shard_policy: AutoShardPolicy = AutoShardPolicy.DATA,
    ):
        if not model.compiled:
            raise ValueError("DistributedFit needs a compiled model: call `model.compile(...)` first.")
        self.model = model
        self.strategy = strategy or model.distribute_strategy
        if model.distribute_strategy is not self.strategy:
            raise ValueError(
                "The model was not built under this strategy: create and compile it inside `strategy.scope()`."
            )
        self.auto_shard_policy = auto_shard_policy

    def _replicated(self, step, distributed) -> tf.types.experimental.GenericFunction:
        """``step`` on every replica, traced once for the dataset's batches (its element spec)."""

        def run(batch):
            return self.strategy.run(step, args=(batch,))

        return tf.function(run, input_signature=[distributed.element_spec])

    def _distribute(self, dataset: tf.data.Dataset):
        if not isinstance(dataset, tf.data.Dataset):
            raise ValueError(f"DistributedFit takes a tf.data.Dataset of global batches; got {type(dataset).__name__}.")
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = self.auto_shard_policy
        return self.strategy.experimental_distribute_dataset(dataset.with_options(options))

    def fit(
        self,
        x: tf.data.Dataset,
        epochs: int = 1,
        validation_data: tf.data.Dataset | None = None,
        callbacks: Sequence[keras.callbacks.Callback] = (),
        verbose: int = 0,
        initial_epoch: int = 0,
    ) -> keras.callbacks.History:
        """Trains to ``epochs`` epochs in total, like ``model.fit``; returns its ``History``."""
        model = self.model
        train = self._distribute(x)
        validation = self._distribute(validation_data) if validation_data is not None else None
        # What `fit` does first, minus the reduction that fails under a multi-worker strategy:
        # build the optimizer and compiled metrics, so no variable is created inside a step.
        with self.strategy.scope():
            model._symbolic_build(data_batch=next(iter(x)))
        train_function = self._replicated(model.train_step, train)
        test_function = self._replicated(model.test_step, validation) if validation is not None else None
        callback_list = keras.callbacks.CallbackList(
            list(callbacks), add_history=True, add_progbar=verbose != 0, model=model, verbose=verbose, epochs=epochs
        )
        model.stop_training = False
        callback_list.on_train_begin()
        # `BackupAndRestore.on_train_begin` sets the epoch to resume at, as `fit` reads it.
        initial_epoch = model._initial_epoch or initial_epoch
        self._check_same_epoch(initial_epoch)
        logs = {}
        for epoch in range(initial_epoch, epochs):
            model.reset_metrics()
            callback_list.on_epoch_begin(epoch)
            step_logs = {}
            for step, per_replica_logs in self._steps(train_function, train, callback_list.on_train_batch_begin):
                step_logs = self._local(per_replica_logs)
                callback_list.on_train_batch_end(step, step_logs)
                if model.stop_training:
                    break
            logs = self._global(step_logs)
            if validation is not None:
                validation_logs = self._evaluate(test_function, validation, callback_list)
                logs.update({f"val_{name}": value for name, value in validation_logs.items()})
            callback_list.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
        callback_list.on_train_end(logs)
        return model.history

    def _evaluate(self, test_function, dataset, callback_list) -> dict[str, float]:
        self.model.reset_metrics()
        callback_list.on_test_begin()
        step_logs = {}
        for step, per_replica_logs in self._steps(test_function, dataset, callback_list.on_test_batch_begin):
            step_logs = self._local(per_replica_logs)
            callback_list.on_test_batch_end(step, step_logs)
        logs = self._global(step_logs)
        callback_list.on_test_end(logs)
        return logs

    @staticmethod
    def _steps(function, distributed, on_batch_begin):
        """``(step, per-replica logs)`` of each step of one pass over ``distributed``.

        Iterating in Python lets the workers agree on the end of the data (a worker without
        rows gets an empty batch until none has any); running a step on data that ran out
        inside the function would update the metrics with a dummy batch.
        """
        for step, batch in enumerate(distributed):
            on_batch_begin(step)
            yield step, function(batch)

    def _local(self, per_replica_logs) -> dict[str, float]:
        """This worker's first replica's logs: no communication."""
        return {
            name: float(self.strategy.experimental_local_results(value)[0]) for name, value in per_replica_logs.items()
        }

    def _global(self, local_logs: dict[str, float]) -> dict[str, float]:
        """Each logged metric aggregated over every replica (its variables sum on read)."""
        results = {}
        with self.strategy.scope():
            for metric in self.model.metrics:  # compiled metrics return a dict of results
                result = metric.result()
                results.update(result if isinstance(result, dict) else {metric.name: result})
        return {name: float(results[name]) if name in results else value for name, value in local_logs.items()}

    def _check_same_epoch(self, epoch: int) -> None:
        if not is_multi_worker(self.strategy):
            return

        def gather():
            return tf.distribute.get_replica_context().all_gather(tf.constant([epoch], tf.int64), axis=0)

        epochs = self.strategy.experimental_local_results(self.strategy.run(tf.function(gather)))[0].numpy()
        if len(set(epochs.tolist())) > 1:
            raise RuntimeError(
                f"The workers resume at different epochs ({epochs.tolist()}, one per replica): a worker's "
                "backup is older than the others' (it died while they wrote theirs). Delete every "
                "worker's backup folder and restart, or restore the same backup on every worker."
            )
