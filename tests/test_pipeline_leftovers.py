"""A run starts on a usable root and removes what killed executions provably left behind."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pipeline import run
from pipeline.orchestration.artifact import ArtifactType
from pipeline.orchestration.metadata_store import ExecutionState, MetadataStore
from pipeline.orchestration.runner import METADATA_FILE, PipelineRunner
from pipeline.orchestration.stage import Stage, StageName
from pipeline.settings import ConfigError, PipelineConfig, with_overrides
from pipeline.stages.export import Export


class _Train(Stage):
    """Writes a file; ``fail`` raises after writing its resume state; ``version`` is its code."""

    name = StageName.TRAIN

    def __init__(self, version: str = "v1", fail: bool = False):
        self.version = version
        self.fail = fail

    def config_sections(self, config):
        return ("train",)

    def code_version(self) -> str:
        return self.version

    def run(self, context, inputs):
        (context.work_dir / "backup").write_text("epoch 3")
        if self.fail:
            raise RuntimeError("killed")
        (context.output_dir / "model.txt").write_text("weights")
        return [context.artifact("model", ArtifactType.MODEL, "model.txt")]


def _config(*overrides: str) -> PipelineConfig:
    return with_overrides(PipelineConfig(name="toy"), list(overrides))


def _runner(root, *stages: Stage, lines: list[str] | None = None, config=None) -> PipelineRunner:
    log = lines.append if lines is not None else (lambda line: None)
    return PipelineRunner(list(stages), config or _config(), root, log=log)


def _work_dirs(root) -> list[str]:
    return sorted(path.name for path in (root / "train" / ".work").glob("*"))


def test_a_file_in_place_of_the_root_or_of_a_parent_is_a_one_line_config_error(tmp_path):
    (tmp_path / "taken").write_text("a file")
    for root, blocking in ((tmp_path / "taken", tmp_path / "taken"), (tmp_path / "taken" / "root", tmp_path / "taken")):
        with pytest.raises(ConfigError, match=f"{blocking} is a file, not a folder") as error:
            _runner(root, _Train()).run()
        assert "\n" not in str(error.value)


@pytest.mark.skipif(not os.path.isdir("/sys/kernel"), reason="needs a read-only /sys (Linux)")
def test_a_root_that_cannot_be_created_is_a_one_line_error_from_the_command_line(capsys):
    # /sys refuses new folders even to root, where a chmod-ed folder would not.
    code = run.main(["--pipeline-root", "/sys/pipeline_root", "--quiet"])
    error = capsys.readouterr().err
    assert code == 1
    assert error.startswith("error: pipeline root /sys/pipeline_root cannot be created or written:"), error
    assert error.count("\n") == 1 and "Traceback" not in error


def test_work_dirs_no_run_can_resume_are_removed_and_resumable_ones_are_kept(tmp_path):
    # An interrupted execution of the current code: the same command resumes it, so it stays.
    with pytest.raises(RuntimeError):
        _runner(tmp_path, _Train(fail=True)).run()
    (kept,) = _work_dirs(tmp_path)
    lines: list[str] = []
    with pytest.raises(RuntimeError):
        _runner(tmp_path, _Train(fail=True), lines=lines).run()
    assert _work_dirs(tmp_path) == [kept]
    assert any(line.startswith(f"[train] kept {tmp_path / 'train' / '.work' / kept}") for line in lines), lines

    # Once the code changed, that key can never come back: removed, and said so.
    (tmp_path / "train" / ".work" / "0123456789abcdef").mkdir()  # used by no execution
    lines.clear()
    _runner(tmp_path, _Train(version="v2"), lines=lines).run()
    assert _work_dirs(tmp_path) == []
    assert any(
        f"removed {tmp_path / 'train' / '.work' / kept}: execution" in line and "code that has changed" in line
        for line in lines
    ), lines
    assert any("0123456789abcdef: no execution in the metadata store uses it" in line for line in lines), lines

    # A kill between completion and clean-up leaves the folder of a complete key.
    store = MetadataStore(tmp_path / METADATA_FILE, tmp_path)
    (complete,) = [record for record in store.executions(stage="train") if record.state is ExecutionState.COMPLETE]
    (tmp_path / "train" / ".work" / complete.cache_key[:16]).mkdir()
    lines.clear()
    _runner(tmp_path, _Train(version="v2"), lines=lines).run()
    assert _work_dirs(tmp_path) == []
    assert any("completed with its cache key" in line for line in lines), lines


def test_unfinished_exports_of_dead_processes_are_removed_at_the_start_of_a_run(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(finished.stdout)
    model_dir = tmp_path / "saved_models" / "toy"
    (model_dir / "1").mkdir(parents=True)
    (model_dir / f".2-{dead_pid}-abc123").mkdir()  # what export_classifier leaves when killed
    (model_dir / f".2-{os.getpid()}-def456").mkdir()  # a live export
    config = _config(f"export.base_dir={tmp_path / 'saved_models'}", "export.name=toy")
    lines: list[str] = []
    _runner(tmp_path / "root", _Train(), Export(), lines=lines, config=config).run(requested=[StageName.TRAIN])
    assert sorted(path.name for path in model_dir.iterdir()) == [f".2-{os.getpid()}-def456", "1"]
    assert lines[0] == (
        f"[export] removed {model_dir / f'.2-{dead_pid}-abc123'}: an unfinished export whose process {dead_pid} is gone."
    )
