"""Local clusters for the multi-worker tests: processes on 127.0.0.1, bounded and always cleaned up."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time


def free_ports(count: int) -> list[int]:
    """Ports the kernel reports free (bound to port 0 at once, so they are distinct)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def tf_config(ports: list[int], index: int) -> str:
    """The ``TF_CONFIG`` of worker ``index`` (worker 0 is the chief) of a loopback cluster."""
    return json.dumps(
        {"cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]}, "task": {"type": "worker", "index": index}}
    )


def start(arguments: list[str], log_path, environment: dict[str, str]) -> subprocess.Popen:
    """``python arguments...`` in its own process group, output to ``log_path``."""
    log = open(log_path, "w")
    # No cluster settings inherited from the caller: only those given here.
    inherited = {
        key: value for key, value in os.environ.items() if key != "TF_CONFIG" and not key.startswith("KERASTUNER_")
    }
    env = {**inherited, "TF_CPP_MIN_LOG_LEVEL": "2", **environment}
    return subprocess.Popen(
        [sys.executable, *arguments], stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )


def stop(process: subprocess.Popen) -> None:
    """Kills ``process``'s whole group (it may have started children)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@contextlib.contextmanager
def processes():
    """A list to append started processes to; every one is killed on exit, whatever happened."""
    started: list[subprocess.Popen] = []
    try:
        yield started
    finally:
        for process in started:
            stop(process)


def wait_all(started: list[subprocess.Popen], timeout: float) -> list[int]:
    """Return codes once every process exits; ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    for process in started:
        remaining = deadline - time.monotonic()
        try:
            process.wait(timeout=max(remaining, 0.1))
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"process {process.args} still running after {timeout} s") from None
    return [process.returncode for process in started]


def wait_for_line(log_path, text: str, process: subprocess.Popen, timeout: float) -> None:
    """Waits until ``text`` appears in ``log_path``; fails if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log_path) as log:
            if text in log.read():
                return
        if process.poll() is not None:
            raise AssertionError(f"{process.args} exited ({process.returncode}) before printing {text!r}")
        time.sleep(0.1)
    raise TimeoutError(f"{text!r} not printed within {timeout} s")
