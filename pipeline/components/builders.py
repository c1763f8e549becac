"""Builds the Keras objects a config describes: attacks, optimizers, schedules, strategies."""

from __future__ import annotations

import os
import pathlib

import keras
import tensorflow as tf

from mi_keras.attacks import PGD
from mi_keras.distribution import is_chief, multi_worker_strategy
from mi_keras.enums import ParsableEnum
from mi_keras.models import MIDefenseModel, WMIMModel
from pipeline.components.artifacts import EstimatorFiles
from pipeline.settings import (
    AttackConfig,
    DefenseMethod,
    EstimatorConfig,
    MIATConfig,
    Optimizer,
    PipelineConfig,
    TrainingConfig,
)


class StrategyName(ParsableEnum):
    """The ``--strategy`` flag."""

    DEFAULT = "default"  # one device
    MIRRORED = "mirrored"  # tf.distribute.MirroredStrategy over every visible GPU (or the CPU)
    MULTIWORKER = "multiworker"  # tf.distribute.MultiWorkerMirroredStrategy, cluster from TF_CONFIG


def make_strategy(name: str | StrategyName) -> tf.distribute.Strategy:
    """The strategy; ``multiworker`` must be made before any other TensorFlow op runs."""
    strategy = StrategyName.parse(name, "--strategy")
    if strategy == StrategyName.MIRRORED:
        return tf.distribute.MirroredStrategy()
    if strategy == StrategyName.MULTIWORKER:
        return multi_worker_strategy()
    return tf.distribute.get_strategy()


def worker_pipeline_root(root: str | os.PathLike, strategy: tf.distribute.Strategy) -> pathlib.Path:
    """Where this process writes: ``root`` on the chief, ``root/workers/<task>-<index>`` elsewhere.

    Only the chief writes the job's artifacts, metadata and checkpoints. The other workers
    run the same stages (they take part in every collective) but keep their own copies
    apart, as Keras has non-chief workers do; each restores its own backups on a restart.
    """
    if is_chief(strategy):
        return pathlib.Path(root)
    resolver = strategy.cluster_resolver
    return pathlib.Path(root) / "workers" / f"{resolver.task_type}-{resolver.task_id}"


def training_attack(attack: AttackConfig, seed: int, steps: int | None = None, step_size: float | None = None) -> PGD:
    """The PGD of the training stages (standard AT, the estimators and MIAT); ``steps`` and
    ``step_size`` replace the section's when given (MIAT's own ``train.attack_*``)."""
    return PGD(
        attack.eps,
        step_size=step_size or attack.resolved_step_size,
        steps=steps or attack.steps,
        threat_model=attack.threat_model,
        random_start=attack.random_start,
        seed=seed,
    )


def mi_defense_model(
    config: PipelineConfig,
    classifier: keras.Model,
    estimators: EstimatorFiles,
    steps_per_epoch: int,
    alpha: float | None = None,
    lam: float | None = None,
) -> MIDefenseModel | WMIMModel:
    """The (uncompiled) MIAT model of ``config.train`` (a `WMIMModel` with
    ``train.method="wmim"``): the one builder of train and tune.

    Args:
        config: the pipeline config.
        classifier: the classifier to train.
        estimators: the stage-1 estimators, loaded afresh so no two models share their state.
        steps_per_epoch: converts ``train.lam_ramp_epochs`` to steps.
        alpha, lam: tuned values replacing the section's (None keeps them).
    """
    section: MIATConfig = config.train
    natural, adversarial = estimators.load()
    shared = {
        "attack": training_attack(config.attack, config.seed, section.attack_steps, section.attack_step_size),
        "base_loss": section.base_loss,
        "beta": section.beta,
        "recompute_clean": section.recompute_clean,
        "alpha": section.alpha if alpha is None else alpha,
        "seed": config.seed,
    }
    if section.method == DefenseMethod.WMIM:
        return WMIMModel(classifier, natural, **shared)
    return MIDefenseModel(
        classifier,
        natural,
        adversarial,
        **shared,
        lam=section.lam if lam is None else lam,
        selection=section.selection,
        lam_ramp_steps=section.lam_ramp_epochs * steps_per_epoch,
        difference=section.difference,
        mi_bound=section.mi_bound,
        min_selected=section.min_selected,
        weight_by_selected_share=section.weight_by_selected_share,
        cosine_epsilon=section.cosine_epsilon,
    )


def learning_rate_schedule(
    learning_rate: float, milestones: tuple[int, ...], decay: float, steps_per_epoch: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """``learning_rate``, multiplied by ``decay`` after each milestone epoch (PyTorch's MultiStepLR).

    The schedule counts optimizer steps, which `keras.callbacks.BackupAndRestore` restores,
    so a resumed run continues on the same schedule.
    """
    if not milestones:
        return learning_rate
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        boundaries=[epoch * steps_per_epoch for epoch in milestones],
        values=[learning_rate * decay**index for index in range(len(milestones) + 1)],
    )


def classifier_optimizer(
    section: TrainingConfig, steps_per_epoch: int, learning_rate: float | None = None
) -> keras.optimizers.Optimizer:
    """The optimizer of a classifier-training section (SGD by default, as the paper).

    ``section.weight_decay`` is PyTorch's (an L2 term added to the gradient, so it passes
    through the momentum buffer), as the paper and the official code state it. Keras'
    ``weight_decay`` is decoupled (applied to the weights directly); in the steady state a
    coupled decay ``wd`` under momentum ``m`` shrinks the weights like a decoupled
    ``wd / (1 - m)``, which is what SGD gets here. Adam gets the value unchanged.
    """
    schedule = learning_rate_schedule(
        learning_rate or section.learning_rate, section.lr_milestones, section.lr_decay, steps_per_epoch
    )
    if section.optimizer == Optimizer.SGD:
        weight_decay = section.weight_decay / (1 - section.momentum) or None
        return keras.optimizers.SGD(schedule, momentum=section.momentum, weight_decay=weight_decay)
    return keras.optimizers.Adam(schedule, weight_decay=section.weight_decay or None)


def estimator_optimizer(section: EstimatorConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """Adam without weight decay, as the official code's stage 1."""
    return keras.optimizers.Adam(
        learning_rate_schedule(section.learning_rate, section.lr_milestones, section.lr_decay, steps_per_epoch)
    )
