"""Tune: a KerasTuner search of MIAT's alpha and lambda (optionally the learning rate)."""

from __future__ import annotations

import json
import pathlib

import keras
import keras_tuner as kt

from pipeline.components.callbacks.selection_score import SCORE_KEY
from pipeline.components.miat_hypermodel import MIATHyperModel
from pipeline.components.stage_data import StageData
from pipeline.orchestration.artifact import Artifact, ArtifactType
from pipeline.orchestration.config import PipelineConfig, TuneObjective, TunerAlgorithm
from pipeline.orchestration.stage import Inputs, Stage, StageContext, StageName
from pipeline.stages.estimators import ADVERSARIAL_FILE, NATURAL_FILE

HYPERPARAMETERS_FILE = "hyperparameters.json"
_OBJECTIVES = {TuneObjective.ADVERSARIAL: "val_adversarial_accuracy", TuneObjective.MEAN: SCORE_KEY}


class Tune(Stage):
    """Searches MIAT's loss weights with KerasTuner on the validation split.

    Off by default: ``--stages ... tune`` or ``tune.enabled=true`` runs it, and
    ``train.use_tuned=true`` makes the MIAT stage train with the best values. The budget is
    ``tune.max_trials`` trials of ``tune.epochs`` epochs; the objective is the validation
    PGD accuracy (``tune.objective=adversarial``) or (clean + PGD) / 2 (``mean``). Trials
    live in the stage's work folder, so an interrupted search resumes where it stopped.
    Each trial logs to TensorBoard with its hyperparameters (the HParams tab).
    Output ``hyperparameters``: ``hyperparameters.json`` with the best values and every trial.
    """

    name = StageName.TUNE

    def upstream(self, config: PipelineConfig) -> tuple[StageName, ...]:
        return (StageName.INGEST, StageName.ESTIMATORS)

    def enabled_by_default(self, config: PipelineConfig) -> bool:
        return config.tune.enabled or config.train.use_tuned

    def config_sections(self, config: PipelineConfig) -> tuple[str, ...]:
        return ("seed", "data", "model", "attack", "train", "tune")

    def run(self, context: StageContext, inputs: Inputs) -> list[Artifact]:
        config, tune = context.config, context.config.tune
        data = StageData(inputs[StageName.INGEST]["dataset"])
        estimators_dir = pathlib.Path(inputs[StageName.ESTIMATORS]["estimators"].uri)
        batch_size = config.train.batch_size
        hypermodel = MIATHyperModel(
            config,
            data.image_shape,
            data.num_classes,
            estimators_dir / NATURAL_FILE,
            estimators_dir / ADVERSARIAL_FILE,
            data.steps_per_epoch(batch_size),
        )
        objective = kt.Objective(_OBJECTIVES[tune.objective], direction="max")
        search = kt.BayesianOptimization if tune.algorithm == TunerAlgorithm.BAYESIAN else kt.RandomSearch
        tuner = search(
            hypermodel,
            objective=objective,
            max_trials=tune.max_trials,
            seed=config.seed,
            directory=str(context.work_dir),
            project_name="trials",
            overwrite=False,
            distribution_strategy=context.strategy if context.strategy.num_replicas_in_sync > 1 else None,
        )
        keras.utils.set_random_seed(config.seed)
        tuner.search(
            data.split("train", batch_size, augment=config.data.augment, seed=config.seed),
            validation_data=data.evaluation_split("validation", batch_size),
            epochs=tune.epochs,
            verbose=context.verbose,
            shuffle=False,  # the training dataset reshuffles itself at every epoch
            callbacks=[keras.callbacks.TensorBoard(log_dir=str(context.tensorboard_dir), write_graph=False)],
        )
        trials = [
            {
                "trial_id": trial.trial_id,
                "values": trial.hyperparameters.values,
                "score": trial.score,
                "status": str(trial.status),
            }
            for trial in tuner.oracle.trials.values()
        ]
        best_trial = tuner.oracle.get_best_trials(1)[0]
        best = dict(best_trial.hyperparameters.values)
        output = context.output_dir / "hyperparameters"
        output.mkdir()
        result = {"objective": objective.name, "best": best, "best_score": best_trial.score, "trials": trials}
        (output / HYPERPARAMETERS_FILE).write_text(json.dumps(result, indent=2))
        context.log_metrics({"best_score": best_trial.score, **{f"best_{key}": value for key, value in best.items()}})
        print(f"[tune] best of {len(trials)} trials: {best} ({objective.name} = {best_trial.score:.4f})")
        return [
            context.artifact(
                "hyperparameters", ArtifactType.HYPERPARAMETERS, "hyperparameters", best_score=best_trial.score, **best
            )
        ]
