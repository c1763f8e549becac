"""Writes a benchmark's result as a small JSON under results/bench/, which `bench/report.py`
renders into docs/benchmarks.md.

Schema (one file per benchmark): ``title``, ``command``, ``machine`` (a description),
``source`` (``"measured"`` for a file a bench wrote, or where seeded figures came from),
``columns``, ``rows`` (lists of cells, numbers or strings) and ``notes`` (sentences).
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import platform
import sys

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "results" / "bench"


def machine_description() -> str:
    """CPU model, core count, Python and TensorFlow versions of this machine."""
    model = platform.processor() or platform.machine()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = f"Python {platform.python_version()}"
    if "tensorflow" in sys.modules:
        versions += f", TensorFlow {sys.modules['tensorflow'].__version__}"
    try:
        load = f", load average {os.getloadavg()[0]:.2f}"
    except OSError:
        load = ""
    return f"{model}, {os.cpu_count()} cores, {versions}{load}"


def write_result(
    name: str, title: str, command: str, columns: list[str], rows: list[list], notes: list[str] | None = None
) -> pathlib.Path:
    """Writes ``results/bench/<name>.json`` for this machine and returns its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    record = {
        "title": title,
        "command": command,
        "machine": machine_description(),
        "date": datetime.date.today().isoformat(),
        "source": "measured",
        "columns": columns,
        "rows": rows,
        "notes": notes or [],
    }
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path
