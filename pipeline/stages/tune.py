"""Tune: a KerasTuner search of MIAT's alpha and lambda (optionally the learning rate)."""

from __future__ import annotations

import pathlib

import keras
import keras_tuner as kt
import tensorflow as tf

# KerasTuner's own reading of its KERASTUNER_* variables (it has no public one).
from keras_tuner.src.distribute import utils as dist_utils

from mi_keras.distribution import is_multi_worker
from pipeline.components.artifacts import EstimatorFiles, TuningResult
from pipeline.components.callbacks.selection_score import SCORE_KEY
from pipeline.components.miat_hypermodel import MIATHyperModel
from pipeline.components.stage_data import StageData
from pipeline.orchestration.artifact import Artifact, ArtifactType
from pipeline.orchestration.config_view import ConfigView
from pipeline.orchestration.stage import Inputs, Stage, StageContext, StageName, register_stage
from pipeline.settings import ConfigError, PipelineConfig, TuneObjective, TunerAlgorithm

_OBJECTIVES = {TuneObjective.ADVERSARIAL: "val_adversarial_accuracy", TuneObjective.MEAN: SCORE_KEY}


@register_stage("tune", order=40)
class Tune(Stage):
    """Searches MIAT's loss weights with KerasTuner on the validation split.

    Off by default: ``--stages ... tune`` or ``tune.enabled=true`` runs it, and
    ``train.use_tuned=true`` makes the MIAT stage train with the best values. The budget is
    ``tune.max_trials`` trials of ``tune.epochs`` epochs; the objective is the validation
    PGD accuracy (``tune.objective=adversarial``) or (clean + PGD) / 2 (``mean``). Trials
    live in the stage's work folder, so an interrupted search resumes where it stopped.
    Each trial logs to TensorBoard with its hyperparameters (the HParams tab).
    Output ``hyperparameters``: a `TuningResult` (the best values and every trial).

    Distributed (KerasTuner's chief / worker mode): the pipeline run whose environment has
    ``KERASTUNER_TUNER_ID=chief``, ``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT``
    serves the oracle from this stage and writes the artifact; each process started with the
    same command, pipeline root and oracle address but ``KERASTUNER_TUNER_ID=tuner<i>`` is a
    worker (`run_tuner_worker`): it reads the upstream artifacts and runs trials, writing only
    into the shared trial folder. See docs/distributed.md.
    """

    def upstream(self, config: PipelineConfig) -> tuple[StageName, ...]:
        return (StageName.INGEST, StageName.ESTIMATORS)

    def enabled_by_default(self, config: PipelineConfig) -> bool:
        return config.tune.enabled or config.train.use_tuned

    def config_sections(self, config: PipelineConfig) -> tuple[str, ...]:
        return ("seed", "data", "model", "attack", "train", "tune")

    def run(self, context: StageContext, inputs: Inputs) -> list[Artifact]:
        config = context.config
        if is_multi_worker(context.strategy):
            raise ConfigError(
                "tune does not run under --strategy multiworker (KerasTuner trains each trial with "
                "model.fit); spread the trials over KerasTuner workers instead (docs/distributed.md)."
            )
        strategy = context.strategy if context.strategy.num_replicas_in_sync > 1 else None
        tuner = make_tuner(config, hypermodel(config, inputs), context.work_dir, strategy)
        # On the KerasTuner chief (KERASTUNER_TUNER_ID=chief) this serves the oracle until
        # the workers have run every trial; otherwise it runs the trials here.
        search(tuner, config, inputs, context.tensorboard_dir, context.verbose)
        result = TuningResult.from_tuner(tuner)
        result.save(context.output_dir / "hyperparameters")
        best = result.best.to_values()
        context.log_metrics({"best_score": result.best_score, **{f"best_{key}": value for key, value in best.items()}})
        print(f"[tune] best of {len(result.trials)} trials: {best} ({result.objective} = {result.best_score:.4f})")
        return [
            context.artifact(
                "hyperparameters", ArtifactType.HYPERPARAMETERS, "hyperparameters", best_score=result.best_score, **best
            )
        ]


def is_tuner_worker() -> bool:
    """Whether this process is a KerasTuner worker: ``KERASTUNER_ORACLE_IP`` set, not the chief."""
    return dist_utils.has_chief_oracle() and not dist_utils.is_chief_oracle()


def run_tuner_worker(
    config: ConfigView, inputs: Inputs, work_dir: pathlib.Path, tensorboard_dir: pathlib.Path, verbose: int
) -> None:
    """Runs trials for the chief's oracle until the search is over (see `Tune`).

    Args:
        config: the tune stage's view of the chief's config (`Stage.config_view`).
        inputs: the tune stage's inputs (`PipelineRunner.cached_inputs`).
        work_dir: the tune stage's work folder, whose ``trials/`` the chief's oracle uses.
        tensorboard_dir: this worker's TensorBoard folder (one subfolder per trial it runs).
        verbose: Keras' ``fit`` verbosity.
    """
    tuner = make_tuner(config, hypermodel(config, inputs), work_dir, strategy=None)
    search(tuner, config, inputs, tensorboard_dir, verbose)


def hypermodel(config: PipelineConfig, inputs: Inputs) -> MIATHyperModel:
    data = StageData(inputs[StageName.INGEST]["dataset"])
    return MIATHyperModel(
        config,
        data.image_shape,
        data.num_classes,
        EstimatorFiles.of(inputs[StageName.ESTIMATORS]["estimators"]),
        data.steps_per_epoch(config.train.batch_size),
    )


def make_tuner(
    config: PipelineConfig,
    hypermodel: kt.HyperModel,
    directory: pathlib.Path,
    strategy: tf.distribute.Strategy | None,
) -> kt.Tuner:
    """The configured tuner; its trials live in ``directory/trials`` (shared by its workers)."""
    tune = config.tune
    search_class = kt.BayesianOptimization if tune.algorithm == TunerAlgorithm.BAYESIAN else kt.RandomSearch
    return search_class(
        hypermodel,
        objective=kt.Objective(_OBJECTIVES[tune.objective], direction="max"),
        max_trials=tune.max_trials,
        seed=config.seed,
        directory=str(directory),
        project_name="trials",
        overwrite=False,
        distribution_strategy=strategy,
    )


def search(
    tuner: kt.Tuner, config: PipelineConfig, inputs: Inputs, tensorboard_dir: pathlib.Path, verbose: int
) -> None:
    data = StageData(inputs[StageName.INGEST]["dataset"])
    batch_size = config.train.batch_size
    keras.utils.set_random_seed(config.seed)
    tuner.search(
        data.split("train", batch_size, augment=config.data.augment, seed=config.seed),
        validation_data=data.evaluation_split("validation", batch_size),
        epochs=config.tune.epochs,
        verbose=verbose,
        shuffle=False,  # the training dataset reshuffles itself at every epoch
        callbacks=[keras.callbacks.TensorBoard(log_dir=str(tensorboard_dir), write_graph=False)],
    )
