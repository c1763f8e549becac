"""The TensorFlow threads of a test process, one rule for the suite and the scripts it starts.

`make test` runs one pytest-xdist worker per core; each worker gets its share of two threads
so that the workers do not oversubscribe the cores. A script a test starts inherits the
worker's environment and takes the same count, so that both processes compute alike.
"""

from __future__ import annotations

import os


def configure_threads() -> None:
    import tensorflow as tf

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    try:
        tf.config.threading.set_intra_op_parallelism_threads(max(1, 2 // workers))
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # already initialised by an earlier import; harmless
        pass
