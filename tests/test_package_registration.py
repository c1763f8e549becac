"""`import mi_keras` alone registers every serializable class, so any .keras file it wrote loads.

Each class's file loading in a fresh process is tests/test_serialization.py's check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

ENVIRONMENT = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def run_fresh(script: str) -> str:
    process = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=300, env=ENVIRONMENT
    )
    assert process.returncode == 0, process.stderr[-3000:]
    return process.stdout


def test_importing_the_package_registers_what_importing_every_module_registers():
    output = run_fresh(
        """
        import importlib, json, pkgutil
        import keras
        import mi_keras

        def registered():
            return sorted(name for name in keras.saving.get_custom_objects() if name.startswith("mi_keras>"))

        after_package = registered()
        for module in pkgutil.walk_packages(mi_keras.__path__, "mi_keras."):
            if not module.name.endswith("__main__"):
                importlib.import_module(module.name)
        print(json.dumps({"package": after_package, "all": registered()}))
        """
    )
    names = json.loads(output.splitlines()[-1])
    assert "mi_keras>MIEstimator" in names["all"] and "mi_keras>MIDefenseModel" in names["all"]
    assert names["package"] == names["all"], sorted(set(names["all"]) - set(names["package"]))
