"""Peak memory of one training step: plain PGD adversarial training vs MIAT, each in its own process.

Every (case, method) pair runs in a fresh child process (this script with ``--child``), so no
measurement inherits another's allocator state or traced graphs. The child builds the model
of `bench/train_step.py` (same classifier, PGD-10 at step eps/4, SGD), runs two warm-up steps
(tracing, first allocations), then measures ``STEPS`` steps (the largest peak is reported,
the smallest shown beside it) two ways:

- **step peak** (the headline figure): TensorFlow's own allocator statistics for ``CPU:0``
  (``tf.config.experimental.get_memory_info``, reset just before the step): the peak bytes of
  tensors alive during the step minus the bytes alive before it (weights, optimizer slots,
  estimator weights), i.e. what the step itself adds: activations kept for backprop, the
  attack's intermediates, gradients, the MI score tensors. This is the number that scales
  with the batch and the model; it excludes the Python heap and the traced graphs.
- **process peak**: the child's peak resident set size (``resource.getrusage(...).ru_maxrss``,
  a high-water mark that cannot be reset) minus its RSS right after the model was built and
  compiled, before the first step. It includes what tracing costs and what the C++ allocator
  keeps cached, so it is an upper bound that users see in ``top``; ``tracemalloc`` would miss
  TensorFlow's buffers entirely, which is why it is not used.

Cases: a CIFAR ResNet-18 (32x32x3, batch 32) with the paper's 2048-unit estimators, and the
TRADES small CNN (28x28x1, batch 128) with the estimator width of
`mi_keras.mi.default_units` (128) and with 2048. Prints one line per measurement and then
``<case> memory ratio <MIAT step peak / AT step peak>``, for MIAT as it trains by default and
with ``recompute_clean=True`` (the clean pass run again for its backward pass, so one set of
classifier activations is alive at a time). Target (issue 14): MIAT <= 1.4x AT for ResNet-18
at batch 32 (the official PyTorch code measured 2.36x).

```
python bench/memory.py                         # both cases
python bench/memory.py --cases small_cnn       # one case
python bench/memory.py --quick                 # a smoke run: the small CNN at batch 16
```
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MIB = 2**20
# case -> estimator widths measured for MIAT ("rule" is default_units of the classifier).
WIDTHS = {"resnet18": ("2048",), "small_cnn": ("rule", "2048")}
TARGET = {"resnet18": 1.4}
STEPS = 3  # measured steps per child; the largest peak is reported


def resident_bytes() -> int:
    """The process's current resident set size (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(case_name: str, method: str, width: str, batch: int | None) -> dict:
    """One step's memory in this process (the ``--child`` side); ``method`` is ``at``,
    ``trades``, ``miat`` or ``miat_recompute`` (MIAT with ``recompute_clean=True``)."""
    import keras
    import numpy as np
    import tensorflow as tf
    from train_step import CASES, make_models

    from mi_keras.enums import BaseLoss
    from mi_keras.mi import default_units
    from mi_keras.models import AdversarialModel, build_classifier

    tf.config.threading.set_intra_op_parallelism_threads(2)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    case = dict(CASES[case_name], **({"batch": batch} if batch else {}))
    units = 2048
    if width == "rule":
        units = default_units(build_classifier(case["architecture"], case["shape"], 10), case["shape"])
    # make_models builds both models; the AT child discards the MIAT one, whose narrowest
    # estimators keep its leftover weights small.
    is_miat = method.startswith("miat")
    plain, miat = make_models(case, units=units if is_miat else 64, recompute_clean=method == "miat_recompute")
    if method == "trades":  # the classifier on x and x_adv under the tape, no estimators
        plain = AdversarialModel(plain.classifier, attack=plain.attack, base_loss=BaseLoss.TRADES)
        plain.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))
    model = miat if is_miat else plain
    del plain, miat
    rng = np.random.default_rng(0)
    x = rng.random((case["batch"], *case["shape"]), dtype=np.float32)
    y = rng.integers(0, 10, case["batch"])
    built_rss = resident_bytes()
    for _ in range(2):
        model.train_on_batch(x, y)
    before = tf.config.experimental.get_memory_info("CPU:0")["current"]
    peaks = []
    for _ in range(STEPS):
        tf.config.experimental.reset_memory_stats("CPU:0")
        model.train_on_batch(x, y)
        peaks.append(tf.config.experimental.get_memory_info("CPU:0")["peak"] - before)
    process_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    return {
        "units": units if is_miat else None,
        "batch": case["batch"],
        "step_peak_mib": max(peaks) / MIB,
        "step_peak_min_mib": min(peaks) / MIB,
        "tensors_before_mib": before / MIB,
        "process_peak_mib": (process_peak - built_rss) / MIB,
    }


def run_child(case: str, method: str, width: str, batch: int | None) -> dict:
    command = [sys.executable, __file__, "--child", case, method, width]
    if batch:
        command += ["--batch", str(batch)]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", nargs="+", default=list(WIDTHS), choices=list(WIDTHS))
    parser.add_argument("--batch", type=int, help="override every case's batch size")
    parser.add_argument("--quick", action="store_true", help="smoke run: small CNN, batch 16")
    parser.add_argument("--child", nargs=3, metavar=("CASE", "METHOD", "WIDTH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(*args.child, args.batch)))
        return 0
    if args.quick:
        args.cases, args.batch = ["small_cnn"], 16
    for case in args.cases:
        plain = run_child(case, "at", "2048", args.batch)
        print(f"{case}: batch {plain['batch']}, AT: {describe(plain)}", flush=True)
        trades = run_child(case, "trades", "2048", args.batch)
        print(
            f"{case}: TRADES (the classifier on x and x_adv under the tape, no estimators): "
            f"{describe(trades)}; {trades['step_peak_mib'] / plain['step_peak_mib']:.2f}x AT's",
            flush=True,
        )
        for width in WIDTHS[case]:
            for method, label in (("miat", ""), ("miat_recompute", " recompute_clean")):
                miat = run_child(case, method, width, args.batch)
                ratio = miat["step_peak_mib"] / plain["step_peak_mib"]
                process_ratio = miat["process_peak_mib"] / plain["process_peak_mib"]
                target = f" (target <= {TARGET[case]:g})" if case in TARGET else ""
                print(
                    f"{case}: MIAT{label} with {miat['units']}-unit estimators: {describe(miat)}; "
                    f"process peak {process_ratio:.2f}x AT's\n"
                    f"{case} units {miat['units']}{label} memory ratio {ratio:.2f}{target}",
                    flush=True,
                )
    return 0


def describe(measured: dict) -> str:
    return (
        f"step peak {measured['step_peak_mib']:.0f} MiB (min over {STEPS} steps "
        f"{measured['step_peak_min_mib']:.0f}; tensors alive before it "
        f"{measured['tensors_before_mib']:.0f} MiB), process peak "
        f"{measured['process_peak_mib']:.0f} MiB above the built model"
    )


if __name__ == "__main__":
    sys.exit(main())
