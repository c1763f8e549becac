"""Wall time of the test suite: `make test` and `make test-fast`, one after the other.

Both run the linter and then pytest with one xdist worker per core (`PYTEST_WORKERS`, 2 by
default); `--serial` adds the whole suite in one process (`PYTEST_WORKERS=0`), the way it ran
before it was spread over workers, so the speed-up is measured in the same run. Each row
records the tests that passed and were skipped, and the load average before it started: the
machine must be otherwise idle for the figures to mean anything.

```
python bench/test_suite.py            # make test, make test-fast (about 15 minutes on 2 cores)
python bench/test_suite.py --serial   # and the serial suite (about 17 minutes more)
python bench/test_suite.py --quick    # a smoke run: one small test file, nothing written
```
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from record import write_result  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
COMMANDS = {
    "make test": ["make", "test"],
    "make test-fast": ["make", "test-fast"],
}
SERIAL = {"make test, one process": ["make", "test", "PYTEST_WORKERS=0"]}
QUICK = {"pytest tests/test_docs.py": [sys.executable, "-m", "pytest", "-q", "tests/test_docs.py"]}


def run(command: list[str]) -> dict:
    """Runs ``command`` in the repository; its wall time, counts and the load before it."""
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        sys.stdout.write(completed.stdout[-3000:])
        raise SystemExit(f"{' '.join(command)} failed (exit {completed.returncode}); no figure recorded.")
    counts = {kind: int(number) for number, kind in re.findall(r"(\d+) (passed|skipped)", completed.stdout)}
    return {"seconds": seconds, "load_before": load_before, **counts}


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serial", action="store_true", help="also time the suite in one process")
    parser.add_argument("--quick", action="store_true", help="smoke run: one small test file, nothing written")
    args = parser.parse_args()
    commands = QUICK if args.quick else {**COMMANDS, **(SERIAL if args.serial else {})}
    results = {}
    for label, command in commands.items():
        results[label] = run(command)
        result = results[label]
        print(
            f"{label}: {minutes(result['seconds'])}, {result.get('passed', 0)} passed, "
            f"{result.get('skipped', 0)} skipped (load average before {result['load_before']:.2f})",
            flush=True,
        )
    if "make test, one process" in results:
        ratio = results["make test, one process"]["seconds"] / results["make test"]["seconds"]
        print(f"one process / {COMMANDS['make test'][1]} with workers: {ratio:.2f}x")
    if args.quick:
        return
    rows = [
        [label, minutes(r["seconds"]), r.get("passed", 0), r.get("skipped", 0), round(r["load_before"], 2)]
        for label, r in results.items()
    ]
    command = "python bench/test_suite.py" + (" --serial" if args.serial else "")
    columns = ["command", "wall time", "passed", "skipped", "load average before"]
    notes = ["`make test` and `make test-fast` include the linter and use one pytest-xdist worker per core."]
    print(write_result("test_suite", "Test suite", command, columns, rows, notes))


if __name__ == "__main__":
    main()
