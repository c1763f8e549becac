"""The README's `model.fit` example (examples/train_miat_with_fit.py), run as written at a tiny size."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

ENVIRONMENT = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO_ROOT)}


def run(arguments: list[str]) -> str:
    process = subprocess.run(
        [sys.executable, *arguments], capture_output=True, text=True, timeout=900, env=ENVIRONMENT, cwd=REPO_ROOT
    )
    assert process.returncode == 0, process.stdout[-2000:] + process.stderr[-4000:]
    return process.stdout


def test_the_example_trains_finite_and_exports_a_model_that_answers_without_mi_keras(tmp_path):
    script = str(REPO_ROOT / "examples" / "train_miat_with_fit.py")
    output = run(
        [script, "--epochs", "1", "--estimator-epochs", "1", "--samples", "256", "--export-dir", str(tmp_path / "new")]
    )
    assert "health verdict: {'healthy'" in output and "exported to" in output
    served = tmp_path / "new" / "miat" / "1"
    assert json.loads((served / "assets" / "metadata.json").read_text())["health"]["epochs_checked"] == 1
    answer = run(
        [
            "-c",
            textwrap.dedent(
                f"""
                import sys, numpy as np, tensorflow as tf
                predict = tf.saved_model.load({str(served)!r}).signatures["serving_default"]
                out = predict(images=tf.constant(np.random.default_rng(0).random((3, 8, 8, 1), dtype=np.float32)))
                assert "mi_keras" not in sys.modules
                print(np.isfinite(out["logits"].numpy()).all(), out["class_ids"].numpy().shape)
                """
            ),
        ]
    )
    assert answer.strip().endswith("True (3,)")
    assert (tmp_path / "new" / "miat.keras").is_file()


def test_the_readme_snippet_is_taken_from_the_example_line_for_line():
    readme = (REPO_ROOT / "README.md").read_text()
    snippet = readme.split("## Train with `model.fit`")[1].split("```python")[1].split("```")[0]
    example = {line.strip() for line in (REPO_ROOT / "examples" / "train_miat_with_fit.py").read_text().splitlines()}
    code = [line.strip() for line in snippet.splitlines() if line.strip() and not line.strip().startswith("#")]
    assert len(code) > 10 and [line for line in code if line not in example] == []
