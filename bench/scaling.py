"""Benchmark: MIAT step time on 1 vs 2 replicas, as logical CPU devices and as local workers.

Four runs of the same `MIDefenseModel` step (the quick-start's small CNN on 8x8x1, 256-unit
estimators, PGD-10, global batch 64), each in a fresh process driven by
`mi_keras.distributed_fit.DistributedFit`, so only the strategy differs:

- ``devices=1``: one CPU device, no strategy;
- ``devices=2``: `tf.distribute.MirroredStrategy` over 2 logical CPU devices;
- ``workers=1``: `MultiWorkerMirroredStrategy`, a one-worker cluster on 127.0.0.1;
- ``workers=2``: `MultiWorkerMirroredStrategy`, two local worker processes.

Each prints the median step time (after warm-up steps) and the communication cost per step:
the number of collective ops in the step's graph (MIAT's batch-level sums and gathers, their
gradients and the gradients' all-reduce), the median time of one scalar all-reduce (the
latency each of them pays) and that of an all-reduce of one step's gradients (every
trainable weight of the classifier). The lines ``ratio ...`` divide the 2-replica step time
by the 1-replica one and give the difference in milliseconds. On a CPU the replicas share the same cores, so a ratio near or above 1 is
expected: this shows the strategies' overhead and correctness, not the speed-up of real
devices (docs/distributed.md says what to expect there).

    python bench/scaling.py [--steps 20] [--warmup 3]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import socket
import subprocess
import sys
import time

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
GLOBAL_BATCH, SHAPE = 64, (8, 8, 1)


def child(kind: str, replicas: int, steps: int, warmup: int) -> dict:
    """One run; ``kind`` is ``devices`` or ``workers``. Returns the timings in seconds."""
    import tensorflow as tf

    if kind == "workers":
        from mi_keras.distribution import multi_worker_strategy

        tf.config.threading.set_intra_op_parallelism_threads(max(1, (os.cpu_count() or 1) // replicas))
        strategy = multi_worker_strategy(collective_timeout_seconds=300, startup_timeout_seconds=300)
    else:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
        strategy = (
            tf.distribute.MirroredStrategy([f"/cpu:{index}" for index in range(replicas)])
            if replicas > 1
            else tf.distribute.get_strategy()
        )
    import keras
    import numpy as np

    from mi_keras.attacks import PGD
    from mi_keras.distributed_fit import DistributedFit
    from mi_keras.mi import MIEstimator
    from mi_keras.models import MIDefenseModel, build_classifier

    keras.utils.set_random_seed(0)
    with strategy.scope():
        classifier = build_classifier("small_cnn", SHAPE, 10, padding="same")
        estimators = [MIEstimator.for_classifier(SHAPE, 10, units=256) for _ in range(2)]
        model = MIDefenseModel(classifier, *estimators, attack=PGD(0.2, steps=10), seed=0)
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    rng = np.random.default_rng(0)
    count = GLOBAL_BATCH * (warmup + steps)
    data = tf.data.Dataset.from_tensor_slices(
        (rng.random((count, *SHAPE), dtype=np.float32), rng.integers(0, 10, count).astype(np.int32))
    ).batch(GLOBAL_BATCH, drop_remainder=True)

    class StepTimes(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ends = []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())

    times = StepTimes()
    runner = DistributedFit(model, strategy)
    runner.fit(data, epochs=1, callbacks=[times])
    step = float(np.median(np.diff(times.ends)[warmup:]))
    # The step's collectives: every all-reduce / all-gather op of its graph, gradients included.
    step_function = runner._replicated(model.train_step, runner._distribute(data))
    graph = step_function.get_concrete_function().graph.as_graph_def()
    nodes = [*graph.node, *(node for function in graph.library.function for node in function.node_def)]
    collectives = sum(node.op.startswith("Collective") for node in nodes)

    gradients = [tf.zeros_like(variable) for variable in classifier.trainable_variables]

    @tf.function
    def all_reduce():
        def replica_fn():
            return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, gradients)

        return strategy.run(replica_fn)

    @tf.function
    def scalar_all_reduce():
        def replica_fn():
            return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, tf.ones([]))

        return strategy.run(replica_fn)

    def median_seconds(function):
        function()  # trace and warm up
        durations = []
        for _ in range(steps):
            started = time.perf_counter()
            tf.nest.map_structure(lambda value: strategy.experimental_local_results(value)[0].numpy(), function())
            durations.append(time.perf_counter() - started)
        return float(np.median(durations))

    return {
        "step": step,
        "communication": median_seconds(all_reduce),
        "latency": median_seconds(scalar_all_reduce),
        "collectives": collectives,
    }


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def run_case(kind: str, replicas: int, steps: int, warmup: int) -> dict:
    """Starts the case's processes (one per worker) and returns the chief's timings."""
    processes = replicas if kind == "workers" else 1
    ports = free_ports(processes)
    started = []
    try:
        for index in range(processes):
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO_ROOT)}
            env.pop("TF_CONFIG", None)
            if kind == "workers":
                env["TF_CONFIG"] = json.dumps(
                    {
                        "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
                        "task": {"type": "worker", "index": index},
                    }
                )
            command = [
                sys.executable,
                __file__,
                "--child",
                kind,
                str(replicas),
                "--steps",
                str(steps),
                "--warmup",
                str(warmup),
            ]
            started.append(
                subprocess.Popen(
                    command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
                )
            )
        outputs = [process.communicate(timeout=1800) for process in started]
    finally:
        for process in started:
            if process.poll() is None:
                os.killpg(process.pid, 9)
                process.wait()
    for process, (_, stderr) in zip(started, outputs):
        if process.returncode != 0:
            raise RuntimeError(f"{kind}={replicas} failed:\n{stderr[-3000:]}")
    return json.loads(outputs[0][0].strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "REPLICAS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args.steps, args.warmup)))
        return
    print(
        f"MIAT step, small CNN 8x8x1, PGD-10, global batch {GLOBAL_BATCH}; {os.cpu_count()} CPU cores; load {os.getloadavg()[0]:.2f}"
    )
    results = {}
    for kind in ("devices", "workers"):
        for replicas in (1, 2):
            result = results[kind, replicas] = run_case(kind, replicas, args.steps, args.warmup)
            print(
                f"{kind}={replicas}: step {1000 * result['step']:.1f} ms; {result['collectives']} collective ops per step, "
                f"one scalar all-reduce {1000 * result['latency']:.2f} ms, "
                f"the gradients' all-reduce {1000 * result['communication']:.2f} ms"
            )
    for kind, label in (
        ("devices", "MirroredStrategy, 2 vs 1 logical CPU devices"),
        ("workers", "MultiWorkerMirroredStrategy, 2 vs 1 local workers"),
    ):
        ratio = results[kind, 2]["step"] / results[kind, 1]["step"]
        extra = results[kind, 2]["step"] - results[kind, 1]["step"]
        print(
            f"ratio {label}: step time x{ratio:.2f} ({1000 * extra:+.1f} ms per step; "
            f"gradients' all-reduce {1000 * results[kind, 2]['communication']:.2f} ms per step)"
        )
    print("On a CPU the replicas share the cores: these ratios show overhead, not GPU speed-ups.")


if __name__ == "__main__":
    main()
