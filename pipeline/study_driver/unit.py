"""A unit of a study, (dataset, method, seed, kind), and how it is run and recorded."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import platform
import subprocess
import time
from typing import Any

import keras
import tensorflow as tf

from mi_keras.enums import ParsableEnum
from pipeline.components.artifacts import ClassifierFiles, EstimatorFiles
from pipeline.components.callbacks import TrainingDivergedError
from pipeline.components.stage_data import StageData
from pipeline.orchestration.runner import PipelineRunner
from pipeline.orchestration.stage import StageName
from pipeline.recipes import recipe_overrides
from pipeline.settings import ConfigError, PipelineConfig, load_config, validate, with_overrides
from pipeline.stages import all_stages
from pipeline.study_driver.study import REPO_ROOT, Method, Study, StudyDataset
from pipeline.study_driver.unit_evaluation import UnitEvaluator

RESULT_SCHEMA_VERSION = 1


class UnitKind(ParsableEnum):
    """What a unit does."""

    TRAINING = "training"  # train (or reuse) the model; clean, PGD-40, masking checks, MI probe
    AUTOATTACK = "autoattack"  # AutoAttack standard on the study's AutoAttack subset


@dataclasses.dataclass(frozen=True)
class Unit:
    dataset: str
    method: Method
    seed: int
    kind: UnitKind = UnitKind.TRAINING

    def result_path(self, results_dir: pathlib.Path, study: Study) -> pathlib.Path:
        suffix = "" if self.kind is UnitKind.TRAINING else f".{self.kind.value}"
        folder = results_dir / study.results_study(self.method) / self.dataset / self.method.value
        return folder / f"seed{self.seed}{suffix}.json"

    def __str__(self) -> str:
        return f"{self.dataset}/{self.method.value}/seed{self.seed}/{self.kind.value}"


@dataclasses.dataclass(frozen=True)
class TrainedModel:
    """The model a unit evaluates: its checkpoints, its training record, the stage states."""

    best: pathlib.Path
    last: pathlib.Path | None  # None: the run diverged, its last weights are NaN
    record: dict[str, Any]  # "summary", "history" and, for a diverged run, "diverged"
    states: dict[str, str]


def plan_units(study: Study) -> list[Unit]:
    """Every unit, in run order: seed by seed (so paired comparisons fill early), AutoAttack last."""
    training = [
        Unit(dataset.name, method, seed)
        for seed in study.seeds
        for dataset in study.datasets
        for method in study.methods
    ]
    autoattack = [
        Unit(dataset.name, method, seed, UnitKind.AUTOATTACK)
        for seed in study.evaluation.autoattack_seeds
        if seed in study.seeds
        for dataset in study.datasets
        for method in study.methods
    ]
    return training + autoattack


def method_recipe(method: Method, base: PipelineConfig) -> dict[str, Any]:
    """``{"name", "overrides"}``: the named recipe a method applies (`pipeline.recipes`), or
    ``"study"`` (the study's own settings) with none."""
    if method.recipe is None:
        return {"name": "study", "overrides": []}
    return {"name": method.recipe.value, "overrides": recipe_overrides(method.recipe, base)}


def unit_config(dataset: StudyDataset, seed: int, overrides: list[str]) -> PipelineConfig:
    config = with_overrides(load_config(dataset.config), [*dataset.overrides, f"seed={seed}", *overrides])
    validate(config, dataset.resolved_data_dir())
    return config


class UnitRunner:
    """Runs units through the pipeline, sharing one pipeline root per (dataset, seed).

    The standard-AT model and the estimators of a (dataset, seed) are pipeline stages, so
    they are trained once and cached for every method; a killed unit resumes its training
    stage from the last finished epoch (the pipeline's BackupAndRestore). A unit's JSON is
    written atomically when it is complete.

    Args:
        study: the `Study`.
        results_dir: where ``<study>/<dataset>/<method>/seed<k>.json`` go.
        work_root: pipeline roots (models, checkpoints): ``<work_root>/<study>/<dataset>/seed<k>``.
        verbose: progress bars.
    """

    def __init__(self, study: Study, results_dir: pathlib.Path, work_root: pathlib.Path, verbose: int = 0):
        self.study = study
        self.results_dir = results_dir
        self.work_root = work_root
        self.verbose = verbose

    def run(self, unit: Unit) -> dict[str, Any]:
        started, load_before = time.perf_counter(), os.getloadavg()
        dataset = self.study.dataset(unit.dataset)
        if self.study.results_study(unit.method) != self.study.name:
            raise ConfigError(
                f"{unit} is reused from study {self.study.results_study(unit.method)!r} and has no JSON there; "
                "run it in that study."
            )
        base = unit_config(dataset, unit.seed, [])
        recipe = method_recipe(unit.method, base)
        method = [*unit.method.overrides(self.study.lambda_remedy), *dataset.overrides_for(unit.method)]
        config = unit_config(dataset, unit.seed, [*recipe["overrides"], *method])
        shared = self._pipeline(base, dataset, unit).run(
            [StageName.PRETRAIN, StageName.ESTIMATORS], command=f"study {unit} (shared)"
        )
        trained = self._train(config, dataset, unit)
        evaluator = UnitEvaluator(
            self.study.evaluation,
            config,
            # The test split is the dataset-seed's, shared by every method's unit.
            StageData(shared.outputs[StageName.INGEST]["dataset"]).arrays("test"),
            EstimatorFiles.of(shared.outputs[StageName.ESTIMATORS]["estimators"]),
            ClassifierFiles.of(shared.outputs[StageName.PRETRAIN]["model"]).best,
            progress=self.verbose > 0,
        )
        record: dict[str, Any] = {
            "schema_version": RESULT_SCHEMA_VERSION,
            "study": self.study.name,
            "dataset": unit.dataset,
            "method": unit.method.value,
            "seed": unit.seed,
            "kind": unit.kind.value,
            "recipe": recipe,
            "config": config.to_dict(),
            "subsets": evaluator.describe_subsets(),
            "stages": {**{name.value: state.value for name, state in shared.states.items()}, **trained.states},
            # Every unit records the training of the model it evaluated: an AutoAttack unit whose
            # training unit's model is gone trains it again, and the two runs can differ.
            "training": trained.record,
        }
        if unit.kind is UnitKind.TRAINING:
            record["test"] = evaluator.training_unit(trained.best, trained.last)
        else:
            record["test"] = evaluator.autoattack(trained.best)
        record["wall_time_seconds"] = time.perf_counter() - started
        record["machine"] = machine_description(load_before)
        record["git"] = git_revision()
        write_json_atomically(unit.result_path(self.results_dir, self.study), record)
        return record

    def _train(self, config: PipelineConfig, dataset: StudyDataset, unit: Unit) -> TrainedModel:
        """The unit's model; a run whose loss became NaN is kept at its best epoch before the NaN.

        Divergence is a finding about the method, so the unit is scored like a run that
        collapsed: by its best-by-validation checkpoint. Its last-epoch weights are NaN, so
        it has no last-epoch model. A run that diverged before its first epoch ended has
        no checkpoint and raises.
        """
        try:
            own = self._pipeline(config, dataset, unit).run([unit.method.stage], command=f"study {unit}")
        except TrainingDivergedError as error:
            if error.fit is None or error.fit.best_model_path is None:
                raise
            print(f"[study] {unit}: {error} The unit is scored at epoch {error.fit.best_epoch}.", flush=True)
            record = {"summary": error.fit.summary(), "history": error.fit.history, "diverged": error.where()}
            return TrainedModel(error.fit.best_model_path, None, record, {unit.method.stage.value: "diverged"})
        model = ClassifierFiles.of(own.outputs[unit.method.stage]["model"])
        record = {"summary": model.read_summary(), "history": model.read_history()}
        return TrainedModel(
            model.best, model.last, record, {name.value: state.value for name, state in own.states.items()}
        )

    def _pipeline(self, config: PipelineConfig, dataset: StudyDataset, unit: Unit) -> PipelineRunner:
        root = self.work_root / self.study.name / dataset.name / f"seed{unit.seed}"
        return PipelineRunner(all_stages(), config, root, dataset.resolved_data_dir(), verbose=self.verbose)


def machine_description(load_before: tuple[float, float, float]) -> dict[str, Any]:
    """Cores, versions and the load average before and after (a shared machine says so)."""
    return {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "load_average_before": list(load_before),
        "load_average_after": list(os.getloadavg()),
    }


def git_revision() -> dict[str, Any]:
    """The commit the code ran from, and whether the library or the pipeline had local changes."""

    def git(*arguments: str) -> str:
        return subprocess.run(
            ["git", *arguments], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD") or None,
        "dirty": bool(git("status", "--porcelain", "--", "mi_keras", "pipeline")),
    }


def write_json_atomically(path: pathlib.Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(record, indent=1, allow_nan=False) + "\n")
    os.replace(temporary, path)
