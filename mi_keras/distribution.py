"""Cross-replica reductions, so that batch-level losses are exact under ``tf.distribute``.

MIAT's loss is not a mean of per-sample terms: its cosines span the whole batch and the DV
bound uses the whole batch as negatives. Under ``MirroredStrategy`` each replica therefore
gathers the (gradient-free) local features of every replica and all-reduces the partial sums
it needs. Outside a strategy each function is the identity.
"""

from __future__ import annotations

import tensorflow as tf


def _context():
    return tf.distribute.get_replica_context()


def num_replicas() -> int:
    context = _context()
    return 1 if context is None else context.num_replicas_in_sync


def global_sum(value: tf.Tensor) -> tf.Tensor:
    """The sum of ``value`` over replicas; its gradient reaches every replica's inputs."""
    if num_replicas() == 1:
        return value
    return _context().all_reduce(tf.distribute.ReduceOp.SUM, value)


def gather_rows(value: tf.Tensor) -> tf.Tensor:
    """Concatenates every replica's rows, in replica order (use on gradient-free values)."""
    if num_replicas() == 1:
        return value
    return _context().all_gather(value, axis=0)


def row_offset(local_rows: tf.Tensor) -> tf.Tensor:
    """How many rows come before this replica's in `gather_rows` order."""
    if num_replicas() == 1:
        return tf.zeros([], tf.int32)
    sizes = _context().all_gather(tf.reshape(local_rows, [1]), axis=0)
    replica = _context().replica_id_in_sync_group
    return tf.reduce_sum(sizes[:replica])


# Multi-worker training: the strategy, with bounded waits, and the chief.

# TensorFlow's defaults wait forever for the cluster to form and notice a dead peer after
# 30 s + 3 x 10 s; these make a dead or missing worker fail the job in bounded time.
_HEALTH_CHECK_RETRIES = 3


def multi_worker_strategy(
    collective_timeout_seconds: float = 600.0,
    startup_timeout_seconds: float = 600.0,
    health_check_interval_seconds: float = 10.0,
    health_check_timeout_seconds: float = 5.0,
) -> tf.distribute.MultiWorkerMirroredStrategy:
    """`tf.distribute.MultiWorkerMirroredStrategy` from ``TF_CONFIG``, which never hangs.

    Must be called before any other TensorFlow op of the process (collectives are
    configured at program start). Every worker must call it with the same values.

    Args:
        collective_timeout_seconds: a collective (gradient all-reduce, DV gather) that
            waits longer than this for a peer fails with ``DeadlineExceededError``. Keep it
            above the longest stretch one worker computes alone (e.g. the chief's checkpoint
            writes and its evaluation between epochs).
        startup_timeout_seconds: how long to wait for every worker of ``TF_CONFIG`` to start.
        health_check_interval_seconds: how often every peer is pinged; a peer that misses
            3 pings of ``health_check_timeout_seconds`` is declared dead and every pending
            collective aborts with ``UnavailableError``.
        health_check_timeout_seconds: the timeout of one ping.

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

    strategy = multi_worker_strategy(collective_timeout_seconds=300)  # first TF call
    train_ds, info = load_dataset("cifar10", "train", batch_size=128, augment=True, seed=0)
    with strategy.scope():
        classifier = build_classifier("resnet18", info.image_shape, info.num_classes)
        natural, adversarial = (MIEstimator.for_classifier(info.image_shape, 10) for _ in range(2))  # trained
        model = MIDefenseModel(classifier, natural, adversarial, attack=PGD(eps=8 / 255))
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    DistributedFit(model, strategy).fit(train_ds, epochs=100)
    ```
    """
    from tensorflow.python.distribute.collective_all_reduce_strategy import CollectiveAllReduceExtended

    for name, value in {
        "collective_timeout_seconds": collective_timeout_seconds,
        "startup_timeout_seconds": startup_timeout_seconds,
        "health_check_interval_seconds": health_check_interval_seconds,
        "health_check_timeout_seconds": health_check_timeout_seconds,
    }.items():
        if not value > 0:
            raise ValueError(f"`{name}` must be > 0; got {value}.")
    # The health check has no public setting: the class attributes are read while the
    # strategy is constructed (the start-up barrier) and by its health-check thread.
    settings = {
        "_check_health_initial_timeout": startup_timeout_seconds,
        "_check_health_interval": health_check_interval_seconds,
        "_check_health_timeout": health_check_timeout_seconds,
        "_check_health_retry_limit": _HEALTH_CHECK_RETRIES,
    }
    defaults = {name: getattr(CollectiveAllReduceExtended, name) for name in settings}
    for name, value in settings.items():
        setattr(CollectiveAllReduceExtended, name, value)
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=tf.distribute.experimental.CommunicationOptions(
                timeout_seconds=collective_timeout_seconds
            )
        )
        for name, value in settings.items():  # the running health-check thread reads these
            setattr(strategy.extended, name, value)
        return strategy
    except RuntimeError as error:
        if "configured at program startup" in str(error):
            raise RuntimeError(
                "multi_worker_strategy() must run before any other TensorFlow op of the process; "
                "create it first thing, before building models or datasets."
            ) from error
        raise
    finally:
        for name, value in defaults.items():
            setattr(CollectiveAllReduceExtended, name, value)


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    """Whether ``strategy`` spans several processes (``TF_CONFIG`` with more than one task)."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and strategy.extended._in_multi_worker_mode()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the job's checkpoints and artifacts: the ``chief`` task,
    else worker 0 when the cluster has no chief; always true outside a multi-worker job."""
    if not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    if resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()
