"""MultiWorkerMirroredStrategy on 127.0.0.1: exact MIAT steps, a dead worker fails the job, a restart resumes.

One job serves the three checks, because every process start costs ~10 s of TensorFlow
import on the 2-core CI machine: two workers train 4 epochs of 2 MIAT steps; their weights
after epoch 1 must equal a single-process ``model.fit`` over the same global batches; worker 1
is then killed after epoch 2 and the chief must fail in bounded time; a restart of both must
resume after epoch 2 and finish with identical weights on both workers.
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import re
import time

import numpy as np
import pytest
from cluster_processes import free_ports, processes, start, tf_config, wait_all, wait_for_line

SCRIPT = pathlib.Path(__file__).parent / "scripts" / "multi_worker_step.py"
# The script's health check declares a peer dead after 3 missed pings of 2 s, 1 s apart,
# and its collectives time out after 60 s: a dead worker stops the chief well within this.
DEAD_WORKER_BOUND_SECONDS = 45
EPOCHS = 4

pytestmark = pytest.mark.slow


def load_script():
    spec = importlib.util.spec_from_file_location("multi_worker_step", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def weights(path: pathlib.Path) -> list[np.ndarray]:
    with np.load(path) as archive:
        return [archive[f"arr_{index}"] for index in range(len(archive.files))]


def start_workers(
    started: list, tmp_path: pathlib.Path, ports: list[int], tag: str, *arguments: str
) -> list[pathlib.Path]:
    logs = []
    for index in range(len(ports)):
        logs.append(tmp_path / f"worker-{index}-{tag}.log")
        command = [str(SCRIPT), "--out", str(tmp_path), "--backup", str(tmp_path / f"backup-{index}"), *arguments]
        started.append(start(command, logs[-1], {"TF_CONFIG": tf_config(ports, index)}))
    return logs


def logs_of(paths) -> str:
    return "\n".join(f"--- {path.name}\n{path.read_text()[-3000:]}" for path in paths)


def epoch_logs(log: pathlib.Path, epoch: int) -> dict:
    return json.loads(re.search(rf"^epoch {epoch} done (.*)$", log.read_text(), re.MULTILINE).group(1))


def test_multi_worker_job_is_exact_fails_loudly_and_resumes(tmp_path):
    ports = free_ports(2)
    with processes() as started:
        logs = start_workers(started, tmp_path, ports, "first", "--epochs", str(EPOCHS), "--epoch-pause", "1")
        # The single-process reference runs here while the workers start.
        script = load_script()
        reference = script.build_model()
        initial = reference.get_weights()
        history = reference.fit(script.dataset(), epochs=1, shuffle=False, verbose=0).history
        chief, worker = started
        wait_for_line(logs[1], "epoch 2 done", worker, timeout=150)
        worker.kill()
        killed_at = time.monotonic()
        try:
            chief.wait(timeout=DEAD_WORKER_BOUND_SECONDS)
        except Exception:
            pytest.fail(f"the chief still ran {DEAD_WORKER_BOUND_SECONDS} s after worker 1 died\n" + logs_of(logs))
        print(f"the chief failed {time.monotonic() - killed_at:.1f} s after worker 1 was killed")

    # 1. Exact: both workers hold the single-process weights after the first epoch.
    assert history["selected_fraction"][0] > 0, "the MI loss must be active for the comparison to mean anything"
    single = reference.get_weights()
    assert max(np.abs(a - b).max() for a, b in zip(single, initial)) > 1e-3, "the weights must move"
    chief_weights, worker_weights = (weights(tmp_path / f"weights-{name}-epoch1.npz") for name in ("chief", "worker-1"))
    assert all(np.array_equal(a, b) for a, b in zip(chief_weights, worker_weights)), (
        "workers must hold identical weights"
    )
    assert max(np.abs(a - b).max() for a, b in zip(single, chief_weights)) < 1e-5
    distributed = epoch_logs(logs[0], 1)
    for key in ("loss", "mi_loss", "selected_fraction", "adversarial_accuracy", "clean_accuracy"):
        assert distributed[key] == pytest.approx(history[key][0], abs=1e-5), key

    # 2. Loud: the chief exits with the collective error, never finishing.
    output = logs[0].read_text()
    assert chief.returncode != 0 and "finished" not in output, output[-3000:]
    assert re.search(r"UnavailableError|DeadlineExceededError|is down", output), output[-3000:]

    # 3. Resumable: both restart on the same ports and continue after the last backed-up epoch.
    with processes() as started:
        logs = start_workers(started, tmp_path, ports, "restart", "--epochs", str(EPOCHS))
        codes = wait_all(started, timeout=150)
    assert codes == [0, 0], logs_of(logs)
    restarted = logs[0].read_text()
    assert "resumed at epoch 2" in restarted, restarted[-2000:]
    assert "epoch 3 done" in restarted and f"epoch {EPOCHS} done" in restarted and "epoch 2 done" not in restarted
    final = [weights(tmp_path / f"weights-{name}-epoch{EPOCHS}.npz") for name in ("chief", "worker-1")]
    assert all(np.array_equal(a, b) for a, b in zip(*final))
