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
