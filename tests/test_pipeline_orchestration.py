"""The orchestrator with toy stages: staging, metadata, caching, --force, failures, kills, locks."""

from __future__ import annotations

import fcntl
import json
import pathlib
import subprocess
import sys

import pytest

from pipeline.orchestration import stage as stage_module
from pipeline.orchestration.artifact import ArtifactType, fingerprint_path
from pipeline.orchestration.metadata_store import (
    EventKind,
    ExecutionState,
    MetadataStore,
)
from pipeline.orchestration.runner import (
    LOCK_FILE,
    METADATA_FILE,
    PipelineBusyError,
    PipelineRunner,
)
from pipeline.orchestration.stage import Stage, StageName, all_stages, register_stage
from pipeline.settings import ConfigError, PipelineConfig, with_overrides

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
CALLS: list[str] = []
# Per stage, the files its work folder held when it started (the last execution's).
WORK_SEEN: dict[str, list[str]] = {}


class _Source(Stage):
    """Writes the seed into a file (stands for ingest)."""

    name = StageName.INGEST

    def config_sections(self, config):
        return ("seed",)

    def run(self, context, inputs):
        CALLS.append(self.name.value)
        (context.output_dir / "value.txt").write_text(str(context.config.seed))
        return [context.artifact("dataset", ArtifactType.DATASET, "value.txt")]


class _Double(Stage):
    """Reads its upstream value and doubles it; ``upstream_name`` picks the upstream stage."""

    def __init__(self, name: StageName, upstream_name: StageName, section: str, fail: bool = False):
        self.name = name
        self.upstream_name = upstream_name
        self.section = section
        self.fail = fail

    def upstream(self, config):
        return (self.upstream_name,)

    def config_sections(self, config):
        return (self.section,)

    def run(self, context, inputs):
        CALLS.append(self.name.value)
        WORK_SEEN[self.name.value] = sorted(path.name for path in context.work_dir.iterdir())
        (upstream,) = inputs[self.upstream_name].values()
        value = int(upstream.path.read_text()) * 2
        (context.output_dir / "value.txt").write_text(str(value))
        (context.work_dir / "resume-state").write_text("kept until success")
        if self.fail:
            raise RuntimeError("boom")
        context.log_metrics({"value": value})
        return [context.artifact("model", ArtifactType.MODEL, "value.txt", value=value)]


def _stages(fail_train: bool = False) -> list[Stage]:
    return [
        _Source(),
        _Double(StageName.PRETRAIN, StageName.INGEST, "pretrain"),
        _Double(StageName.TRAIN, StageName.PRETRAIN, "train", fail=fail_train),
        _Double(StageName.EVALUATE, StageName.TRAIN, "evaluate"),
    ]


@pytest.fixture(autouse=True)
def _reset_calls():
    CALLS.clear()
    WORK_SEEN.clear()


def _config(*overrides: str) -> PipelineConfig:
    return with_overrides(PipelineConfig(name="toy", seed=3), list(overrides))


def test_outputs_are_renamed_into_place_and_recorded(tmp_path):
    result = PipelineRunner(_stages(), _config(), tmp_path, log=lambda line: None).run()
    assert CALLS == ["ingest", "pretrain", "train", "evaluate"]
    evaluate = result.outputs[StageName.EVALUATE]["model"]
    assert evaluate.path.read_text() == "24"  # 3 * 2 * 2 * 2
    assert evaluate.path.parent.name == str(result.execution_ids[StageName.EVALUATE])
    assert not list(tmp_path.glob("*/.staging-*")), "staging folders must be renamed away"
    assert not list(tmp_path.glob("*/.work/*")), "work folders are removed after success"
    store = MetadataStore(tmp_path / METADATA_FILE, tmp_path)
    records = store.executions(run_id=result.run_id)
    assert [record.state for record in records] == [ExecutionState.COMPLETE] * 4
    execution_id = result.execution_ids[StageName.EVALUATE]
    assert store.metrics(execution_id) == {"value": 24.0}
    (output,) = store.artifacts(execution_id, EventKind.OUTPUT)
    assert output.fingerprint == fingerprint_path(evaluate.uri)
    assert output.properties == {"value": 24}
    (input_artifact,) = store.artifacts(execution_id, EventKind.INPUT)
    assert input_artifact.uri == result.outputs[StageName.TRAIN]["model"].uri


def test_second_run_is_cached_and_a_config_change_reruns_downstream_only(tmp_path):
    PipelineRunner(_stages(), _config(), tmp_path, log=lambda line: None).run()
    CALLS.clear()
    cached = PipelineRunner(_stages(), _config(), tmp_path, log=lambda line: None).run()
    assert CALLS == []
    assert set(cached.states.values()) == {ExecutionState.CACHED}
    CALLS.clear()
    changed = PipelineRunner(_stages(), _config("train.epochs=3"), tmp_path, log=lambda line: None).run()
    assert CALLS == ["train"]
    assert changed.states[StageName.PRETRAIN] == ExecutionState.CACHED
    # Inputs are matched by content: train wrote the same bytes, so evaluate stays cached.
    assert changed.states[StageName.EVALUATE] == ExecutionState.CACHED
    CALLS.clear()
    PipelineRunner(_stages(), _config("seed=4"), tmp_path, log=lambda line: None).run()
    assert CALLS == ["ingest", "pretrain", "train", "evaluate"]


def test_force_reruns_the_stage_and_its_downstream(tmp_path):
    PipelineRunner(_stages(), _config(), tmp_path, log=lambda line: None).run()
    CALLS.clear()
    result = PipelineRunner(_stages(), _config(), tmp_path, log=lambda line: None).run(force=[StageName.TRAIN])
    assert CALLS == ["train", "evaluate"]
    assert result.states[StageName.INGEST] == ExecutionState.CACHED


def test_a_forced_stage_starts_from_an_empty_work_folder(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        PipelineRunner(_stages(fail_train=True), _config(), tmp_path, log=lambda line: None).run()
    assert [path.name for path in (tmp_path / "train" / ".work").glob("*/*")] == ["resume-state"]
    with pytest.raises(RuntimeError, match="boom"):  # unforced, the same command resumes from it
        PipelineRunner(_stages(fail_train=True), _config(), tmp_path, log=lambda line: None).run()
    assert WORK_SEEN["train"] == ["resume-state"]
    PipelineRunner(_stages(), _config(), tmp_path, log=lambda line: None).run(force=[StageName.TRAIN])
    assert WORK_SEEN["train"] == [], "--force must clear the failed run's resume folder"


def test_requested_stage_pulls_its_upstream_and_force_outside_the_run_is_an_error(tmp_path):
    runner = PipelineRunner(_stages(), _config(), tmp_path, log=lambda line: None)
    stages, forced = runner.plan([StageName.TRAIN])
    assert [stage.name for stage in stages] == [StageName.INGEST, StageName.PRETRAIN, StageName.TRAIN]
    assert forced == set()
    with pytest.raises(ConfigError, match="--force evaluate"):
        runner.plan([StageName.TRAIN], force=[StageName.EVALUATE])


def test_a_failed_stage_is_recorded_failed_keeps_its_work_dir_and_never_caches(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        PipelineRunner(_stages(fail_train=True), _config(), tmp_path, log=lambda line: None).run()
    store = MetadataStore(tmp_path / METADATA_FILE, tmp_path)
    (train,) = store.executions(stage="train")
    assert train.state == ExecutionState.FAILED and "boom" in train.error
    assert not (tmp_path / "train" / str(train.id)).exists()
    assert not list(tmp_path.glob("train/.staging-*"))
    assert [path.name for path in (tmp_path / "train" / ".work").glob("*/resume-state")] == ["resume-state"]
    CALLS.clear()
    PipelineRunner(_stages(), _config(), tmp_path, log=lambda line: None).run()
    assert CALLS == ["train", "evaluate"]


def test_an_execution_whose_process_died_is_marked_abandoned(tmp_path):
    # A process that starts a run and an execution, then exits without finishing them.
    script = (
        "import sys; from pipeline.orchestration.metadata_store import MetadataStore; "
        "store = MetadataStore(sys.argv[1], sys.argv[2]); run = store.start_run('toy', 'test'); "
        "print(run, store.start_execution(run, 'train', 'key', 'version', {}, {}, []))"
    )
    finished = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / METADATA_FILE), str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    )
    run_id, execution_id = (int(value) for value in finished.stdout.split())
    (tmp_path / "train" / f".staging-{execution_id}").mkdir(parents=True)
    lines = []
    PipelineRunner(_stages(), _config(), tmp_path, log=lines.append).run()
    store = MetadataStore(tmp_path / METADATA_FILE, tmp_path)
    assert store.execution(execution_id).state == ExecutionState.ABANDONED
    assert store.run_state(run_id) == ExecutionState.ABANDONED
    assert not (tmp_path / "train" / f".staging-{execution_id}").exists()
    assert any("interrupted" in line for line in lines)


def test_a_second_runner_on_the_same_root_is_refused(tmp_path):
    tmp_path.mkdir(exist_ok=True)
    with open(tmp_path / LOCK_FILE, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(PipelineBusyError, match="Another pipeline run"):
            PipelineRunner(_stages(), _config(), tmp_path, log=lambda line: None).run()


def test_artifact_paths_are_stored_relative_so_a_root_can_move(tmp_path):
    PipelineRunner(_stages(), _config(), tmp_path / "a", log=lambda line: None).run()
    (tmp_path / "a").rename(tmp_path / "b")
    CALLS.clear()
    result = PipelineRunner(_stages(), _config(), tmp_path / "b", log=lambda line: None).run()
    assert CALLS == []
    assert result.outputs[StageName.EVALUATE]["model"].path.read_text() == "24"
    assert json.loads(json.dumps(result.outputs[StageName.EVALUATE]["model"].properties)) == {"value": 24}


@pytest.fixture
def registry(monkeypatch):
    """The stage registry, restored after the test (a toy stage must not outlive it)."""
    monkeypatch.setattr(stage_module, "_REGISTRY", dict(stage_module._REGISTRY))
    return stage_module._REGISTRY


def test_a_stage_declared_in_one_module_joins_the_names_the_order_and_the_runs(registry, tmp_path):
    # Everything a new stage needs is here: no list, enum or config elsewhere changes.
    @register_stage("summary", order=65)  # between evaluate (60) and surrogate (70)
    class Summary(Stage):
        def upstream(self, config):
            return (StageName.INGEST,)

        def config_sections(self, config):
            return ("seed",)

        def run(self, context, inputs):
            (context.output_dir / "summary.txt").write_text(f"seed {context.config.seed}")
            return [context.artifact("summary", ArtifactType.EVALUATION, "summary.txt")]

    assert StageName.SUMMARY == StageName.parse("Summary", "--stages") == "summary"
    names = [name.value for name in StageName]
    assert names.index("evaluate") < names.index("summary") < names.index("surrogate")
    assert [type(stage) for stage in all_stages()][names.index("summary")] is Summary
    toy = {stage.name: stage for stage in _stages()}
    runner = PipelineRunner([toy[StageName.INGEST], Summary()], _config(), tmp_path, log=lambda line: None)
    result = runner.run(requested=[StageName.parse("summary", "--stages")])
    assert result.outputs[StageName.SUMMARY]["summary"].path.read_text() == "seed 3"
    with pytest.raises(ValueError, match="order 65 is already stage 'summary'"):
        register_stage("other", order=65)(Summary)
