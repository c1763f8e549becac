"""docs/benchmarks.md is what bench/report.py renders from results/bench/*.json."""

from __future__ import annotations

import importlib.util
import json
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmarks_document_is_generated_from_the_result_files():
    assert (REPO / "docs" / "benchmarks.md").read_text() == load("report").render(), (
        "docs/benchmarks.md is stale: run python bench/report.py"
    )


def test_a_written_result_appears_in_the_document(tmp_path, monkeypatch):
    record, report = load("record"), load("report")
    monkeypatch.setattr(record, "RESULTS", tmp_path)
    monkeypatch.setattr(report, "RESULTS", tmp_path)
    path = record.write_result("train_step", "Step time", "python bench/train_step.py", ["case", "s"], [["tiny", 1.25]])
    written = json.loads(path.read_text())
    assert written["source"] == "measured" and "cores" in written["machine"]
    text = report.render()
    assert "## Step time" in text and "| tiny | 1.25 |" in text and written["machine"] in text
