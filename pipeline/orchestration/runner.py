"""Runs the selected stages in order: cache look-up, staged outputs, metadata, resume."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import pathlib
import shutil
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import keras
import tensorflow as tf

import mi_keras
from pipeline.orchestration.artifact import (
    Artifact,
    fingerprint_path,
    fingerprint_values,
)
from pipeline.orchestration.config_values import ConfigError
from pipeline.orchestration.leftovers import WORK_DIR, prepare_root, remove_dead_work_dirs
from pipeline.orchestration.metadata_store import ExecutionState, MetadataStore
from pipeline.orchestration.stage import Inputs, Stage, StageContext, StageName

if TYPE_CHECKING:  # the engine runs any settings schema; this one is the pipeline's
    from pipeline.settings import PipelineConfig

METADATA_FILE = "metadata.sqlite"
LOCK_FILE = ".lock"


class PipelineBusyError(RuntimeError):
    """Another process is running a pipeline on the same root."""


@dataclasses.dataclass
class RunResult:
    """What a run did: per stage, its outputs and whether it executed or was cached."""

    run_id: int
    root: pathlib.Path
    outputs: dict[StageName, dict[str, Artifact]]
    states: dict[StageName, ExecutionState]
    execution_ids: dict[StageName, int]


class PipelineRunner:
    """Executes stages like a small TFX orchestrator.

    * Selection: the requested stages (default: every stage enabled by the config) plus,
      transitively, the stages they read from.
    * Cache: a stage whose code version, config sections and input fingerprints match a
      complete execution whose outputs still exist is skipped (recorded as ``cached``).
    * Contracts: a stage's ``run`` gets `Stage.config_view`, which refuses any config
      section it does not declare, so its cache key covers everything it reads.
    * ``force``: those stages and every selected stage downstream of them execute anew,
      and their resume folders are cleared.
    * Outputs are written to ``<root>/<stage>/.staging-<id>`` and renamed to
      ``<root>/<stage>/<id>`` once the stage returns; only then is the execution complete.
    * Leftovers: at the start of a run, the staging folders of killed executions, the work
      folders no run can resume (`leftovers.remove_dead_work_dirs`) and each stage's own
      (`Stage.remove_leftovers`: unfinished exports) are removed, and each removal is logged.

    Example:
    ```python
    runner = PipelineRunner(all_stages(), config, "pipeline_root")
    result = runner.run(requested=None, force=[StageName.TRAIN])
    ```

    Args:
        stages: every stage, in execution order.
        config: a validated `PipelineConfig`.
        root: the pipeline root folder.
        data_dir: the ``--data-dir`` flag, passed to the stages.
        strategy: the `tf.distribute.Strategy` stages build models under.
        verbose: Keras progress-bar verbosity passed to the stages (1: bars, 0: none).
        log: where progress lines go.
    """

    def __init__(
        self,
        stages: Sequence[Stage],
        config: PipelineConfig,
        root: str | os.PathLike,
        data_dir: str | None = None,
        strategy: tf.distribute.Strategy | None = None,
        verbose: int = 1,
        log: Callable[[str], None] = print,
    ):
        self.stages = {stage.name: stage for stage in stages}
        self.config = config
        self.root = pathlib.Path(root).resolve()
        self.data_dir = data_dir
        self.strategy = strategy or tf.distribute.get_strategy()
        self.verbose = verbose
        self.log = log

    def plan(
        self, requested: Sequence[StageName] | None, force: Sequence[StageName] = ()
    ) -> tuple[list[Stage], set[StageName]]:
        """The stages to visit, in order, and the subset that must execute anew."""
        wanted = (
            set(requested)
            if requested
            else {name for name, stage in self.stages.items() if stage.enabled_by_default(self.config)}
        )
        pending = list(wanted)
        while pending:
            for upstream in self.stages[pending.pop()].upstream(self.config):
                if upstream not in wanted:
                    wanted.add(upstream)
                    pending.append(upstream)
        ordered = [stage for name, stage in self.stages.items() if name in wanted]
        unselected = sorted(name.value for name in set(force) - wanted)
        if unselected:
            raise ConfigError(
                f"--force {', '.join(unselected)}: not among the stages of this run ({', '.join(stage.name.value for stage in ordered)})."
            )
        forced = set(force)
        for stage in ordered:  # execution order: a stage's upstream is settled before it
            if forced & set(stage.upstream(self.config)):
                forced.add(stage.name)
        return ordered, forced

    def run(
        self, requested: Sequence[StageName] | None = None, force: Sequence[StageName] = (), command: str = ""
    ) -> RunResult:
        prepare_root(self.root)
        with self._exclusive_lock():
            store = MetadataStore(self.root / METADATA_FILE, self.root)
            try:
                return self._run(store, requested, force, command)
            finally:
                store.close()

    def _run(self, store: MetadataStore, requested, force, command) -> RunResult:
        for record in store.abandon_dead_executions():
            self.log(
                f"[{record.stage}] execution {record.id} was interrupted (process {record.pid} died); it is marked abandoned."
            )
            shutil.rmtree(self._staging_dir(record.stage, record.id), ignore_errors=True)
        for line in remove_dead_work_dirs(self.root, store, self.stages.values()):
            self.log(line)
        for stage in self.stages.values():
            for line in stage.remove_leftovers(self.config):
                self.log(line)
        stages, forced = self.plan(requested, force)
        run_id = store.start_run(self.config.name, command)
        result = RunResult(run_id=run_id, root=self.root, outputs={}, states={}, execution_ids={})
        try:
            for stage in stages:
                self._visit(store, stage, stage.name in forced, result)
        except BaseException:
            store.finish_run(run_id, ExecutionState.FAILED)
            raise
        store.finish_run(run_id, ExecutionState.COMPLETE)
        return result

    def cached_inputs(self, name: StageName) -> tuple[Inputs, pathlib.Path]:
        """The inputs of stage ``name`` from complete executions, and its work folder.

        For a process that helps another run's execution of that stage (a KerasTuner
        worker of the tune stage): it reads the metadata store and writes nothing.
        Raises ConfigError when an upstream stage has no complete execution for this config.
        """
        stages, _ = self.plan([name])
        outputs: dict[StageName, dict[str, Artifact]] = {}
        store = MetadataStore(self.root / METADATA_FILE, self.root)
        try:
            for stage in stages[:-1]:
                cached = store.find_cached(stage.name.value, self._cache_key(stage, outputs))
                if cached is None:
                    raise ConfigError(
                        f"[{stage.name.value}] has no complete execution for this config under {self.root}: "
                        f"run `python pipeline/run.py --stages {name.value}` there first (the tuner chief does)."
                    )
                outputs[stage.name] = {artifact.name: artifact for artifact in cached[1]}
        finally:
            store.close()
        target = stages[-1]
        inputs = {upstream: outputs[upstream] for upstream in target.upstream(self.config)}
        return inputs, self._work_dir(name.value, self._cache_key(target, outputs))

    def _cache_key(self, stage: Stage, outputs: dict[StageName, dict[str, Artifact]]) -> str:
        return fingerprint_values(
            stage.name.value,
            stage.code_version(),
            stage.cache_config(self.config),
            {
                upstream.value: {key: artifact.fingerprint for key, artifact in outputs[upstream].items()}
                for upstream in stage.upstream(self.config)
            },
            stage.external_fingerprint(self.config, self.data_dir),
        )

    def _visit(self, store: MetadataStore, stage: Stage, forced: bool, result: RunResult) -> None:
        inputs = {name: result.outputs[name] for name in stage.upstream(self.config)}
        input_artifacts = [artifact for outputs in inputs.values() for artifact in outputs.values()]
        code_version = stage.code_version()
        cache_key = self._cache_key(stage, result.outputs)
        cached = None if forced else store.find_cached(stage.name.value, cache_key)
        if cached is not None:
            source, outputs = cached
            result.execution_ids[stage.name] = store.record_cached(result.run_id, source, input_artifacts, outputs)
            result.outputs[stage.name] = {artifact.name: artifact for artifact in outputs}
            result.states[stage.name] = ExecutionState.CACHED
            self.log(
                f"[{stage.name.value}] cached: reusing execution {source.id} ({self._stage_dir(stage.name.value) / str(source.id)})"
            )
            return
        execution_id = store.start_execution(
            result.run_id,
            stage.name.value,
            cache_key,
            code_version,
            stage.cache_config(self.config),
            self._properties(),
            input_artifacts,
        )
        outputs = self._execute(store, stage, execution_id, cache_key, forced, inputs)
        result.execution_ids[stage.name] = execution_id
        result.outputs[stage.name] = {artifact.name: artifact for artifact in outputs}
        result.states[stage.name] = ExecutionState.COMPLETE

    def _execute(self, store, stage: Stage, execution_id: int, cache_key: str, forced: bool, inputs) -> list[Artifact]:
        name = stage.name.value
        staging = self._staging_dir(name, execution_id)
        work_dir = self._work_dir(name, cache_key)
        if forced:
            shutil.rmtree(work_dir, ignore_errors=True)
        staging.mkdir(parents=True)
        work_dir.mkdir(parents=True, exist_ok=True)
        context = StageContext(
            config=stage.config_view(self.config),
            execution_id=execution_id,
            output_dir=staging,
            work_dir=work_dir,
            tensorboard_dir=self.root / "tensorboard" / stage.tensorboard_run(self.config),
            data_dir=self.data_dir,
            strategy=self.strategy,
            store=store,
            verbose=self.verbose,
        )
        self.log(f"[{name}] running execution {execution_id}{' (forced)' if forced else ''}")
        started = time.perf_counter()
        try:
            artifacts = stage.run(context, inputs)
        except BaseException as error:
            store.fail_execution(execution_id, f"{type(error).__name__}: {error}")
            shutil.rmtree(staging, ignore_errors=True)
            raise
        final = self._stage_dir(name) / str(execution_id)
        artifacts = [self._finalize(artifact, staging, final) for artifact in artifacts]
        os.replace(staging, final)
        seconds = time.perf_counter() - started
        recorded = store.complete_execution(
            execution_id, artifacts, {**self._properties(), "seconds": round(seconds, 3)}
        )
        shutil.rmtree(work_dir, ignore_errors=True)
        self.log(f"[{name}] done in {seconds:.1f} s -> {final}")
        return recorded

    @staticmethod
    def _finalize(artifact: Artifact, staging: pathlib.Path, final: pathlib.Path) -> Artifact:
        """Fingerprints an output and points it at its post-rename location."""
        fingerprint = fingerprint_path(artifact.uri)
        path = pathlib.Path(artifact.uri)
        if path.is_relative_to(staging):
            path = final / path.relative_to(staging)
        return dataclasses.replace(artifact, uri=str(path), fingerprint=fingerprint)

    def _properties(self) -> dict:
        return {
            "seed": self.config.seed,
            "mi_keras": mi_keras.__version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "strategy": type(self.strategy).__name__,
            "replicas": self.strategy.num_replicas_in_sync,
        }

    def _work_dir(self, name: str, cache_key: str) -> pathlib.Path:
        return self._stage_dir(name) / WORK_DIR / cache_key[:16]

    def _stage_dir(self, name: str) -> pathlib.Path:
        return self.root / name

    def _staging_dir(self, name: str, execution_id: int) -> pathlib.Path:
        return self._stage_dir(name) / f".staging-{execution_id}"

    @contextlib.contextmanager
    def _exclusive_lock(self):
        with open(self.root / LOCK_FILE, "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise PipelineBusyError(
                    f"Another pipeline run is using {self.root}; wait for it or pass another --pipeline-root."
                ) from None
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
