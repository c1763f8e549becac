"""MIAT stage 1: trains the natural and adversarial MI estimators against a frozen classifier."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from mi_keras.attacks.attack import Attack, logits_of
from mi_keras.distribution import num_replicas
from mi_keras.enums import EstimatorObjective, Selection
from mi_keras.losses.batch_statistics import masked_count, masked_mean
from mi_keras.losses.estimator_objectives import estimator_objectives
from mi_keras.losses.selection import selection_masks
from mi_keras.mi.mi_terms import mi_terms, pattern_features
from mi_keras.models.step_guard import StepGuard, apply_if_finite
from mi_keras.models.training_utils import (
    adversarial_batch,
    as_attack,
    as_estimator,
    build_from_classifier,
    check_estimator_pair,
    classifier_classes,
    deserialize_if_config,
    images_and_labels,
    training_seed,
    update_means,
)

_MI_METRICS = ("natural_mi_robust", "natural_mi_fooled", "adversarial_mi_robust", "adversarial_mi_fooled")


@keras.saving.register_keras_serializable(package="mi_keras")
class MIEstimatorTrainer(StepGuard, keras.Model):
    """Trains ``phi_n`` (natural MI) and ``phi_a`` (adversarial MI) of MIAT (Zhou et al., ICML 2022).

    The classifier is frozen and runs in inference mode, on ``x`` and on ``x_adv`` crafted on
    the fly with the same threat model as stage 2 (the released code mixed L2 estimators with
    L-inf training: a bug we do not copy). Objectives: ``"contrastive"`` (the code's Eq. 5
    reading, weights 5, 8, 0.1, 1.0, 0.5) or ``"mim"`` (Eq. 4). One optimizer serves both
    estimators: their losses touch disjoint weights, so this equals the code's two Adams.

    Metrics: ``loss``, ``natural_loss``, ``adversarial_loss`` and the mean MI of the adversarial
    sample, ``I_N(x; h(x_adv))`` and ``I_A(n; h(x_adv))``, on robust and on fooled samples
    (each averaged over every such sample of the epoch). The guards of `AdversarialModel`
    apply: images must be floats in [0, 1], a non-finite loss stops training before its
    update, ``save`` refuses non-finite weights.

    Under ``tf.distribute`` the batch-level sums are global but each replica's DV negatives
    are its own samples (stage 1 trains the encoders, whose features would need a
    differentiable all-gather).

    Resuming: the classifier stays fixed, so ``trainable_variables`` are the estimators'
    alone; Keras builds the optimizer over them and its state round-trips through `.keras`
    files and `keras.callbacks.BackupAndRestore`. Random draws derive from
    ``(seed, optimizer.iterations)``, so a loaded trainer continues the saved run exactly.

    Example:
    ```python
    import keras
    from mi_keras.attacks import PGD
    from mi_keras.data import load_dataset
    from mi_keras.models import build_classifier

    train_ds, info = load_dataset("digits", "train", batch_size=32, take=64)  # tiny: a smoke run
    val_ds, _ = load_dataset("digits", "validation", batch_size=32, take=32)
    classifier = build_classifier("small_cnn", info.image_shape, info.num_classes, padding="same")
    from mi_keras.mi import MIEstimator
    from mi_keras.models import MIEstimatorTrainer

    at_classifier = classifier  # in practice trained by AdversarialModel first
    trainer = MIEstimatorTrainer(
        at_classifier,
        MIEstimator.for_classifier(info.image_shape, 10, units=64),
        MIEstimator.for_classifier(info.image_shape, 10, units=64),
        attack=PGD(eps=8 / 255, steps=10),
    )
    trainer.compile(optimizer=keras.optimizers.Adam(1e-2))
    trainer.fit(train_ds, epochs=1)  # the paper: 25 epochs
    ```

    Args:
        classifier: the frozen target (a standard-AT model in the paper).
        natural_estimator: the `MIEstimator` trained on ``(x, h(.))``.
        adversarial_estimator: the `MIEstimator` trained on ``(x_adv - x, h(.))``.
        attack: crafts ``x_adv`` against the classifier.
        objective: ``"contrastive"`` (default) or ``"mim"``.
        selection: how predictions are taken for the masks (``"logits"`` or ``"batch_softmax"``).
        seed: the int that each step's randomness (attack starts, the estimators' random
            layers) derives from with the optimizer step; None takes the attack's seed or
            draws one, recorded in the config.
        stop_on_non_finite: stop at the first step whose loss or gradients are not finite,
            before its update.
        **kwargs: forwarded to `keras.Model`.
    """

    def __init__(
        self,
        classifier: keras.Model,
        natural_estimator,
        adversarial_estimator,
        attack: Attack,
        objective: str | EstimatorObjective = EstimatorObjective.CONTRASTIVE,
        selection: str | Selection = Selection.LOGITS,
        seed: int | None = None,
        stop_on_non_finite: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.classifier = deserialize_if_config(classifier)
        self.natural_estimator = as_estimator(natural_estimator, "natural_estimator")
        self.adversarial_estimator = as_estimator(adversarial_estimator, "adversarial_estimator")
        check_estimator_pair(self, classifier_classes(self.classifier))
        self._set_stop_on_non_finite(stop_on_non_finite)
        self.attack = as_attack(attack, "attack")
        self.objective = EstimatorObjective.parse(objective, "objective")
        self.selection = Selection.parse(selection, "selection")
        self.seed = training_seed(seed, self.attack)
        names = ("loss", "natural_loss", "adversarial_loss", *_MI_METRICS)
        self._trackers = {name: keras.metrics.Mean(name=name) for name in names}
        build_from_classifier(self)

    @property
    def metrics(self):
        return list(self._trackers.values())

    def call(self, inputs, training=False):
        return self.classifier(inputs, training=False)

    @property
    def trainable_weights(self):
        # The variables train_step updates; Keras builds the optimizer over these (at fit, at
        # load_model and in BackupAndRestore), never over the fixed classifier's.
        return self.natural_estimator.trainable_weights + self.adversarial_estimator.trainable_weights

    @property
    def trainable_variables(self):
        return self.trainable_weights

    def _estimator_losses(self, x, x_adv, y, training):
        clean_logits = tf.stop_gradient(logits_of(self.classifier, x, training=False))
        adversarial_logits = tf.stop_gradient(logits_of(self.classifier, x_adv, training=False))
        features = pattern_features(self.natural_estimator, self.adversarial_estimator, x, x_adv, training=training)
        mi = mi_terms(
            self.natural_estimator,
            self.adversarial_estimator,
            *features,
            clean_logits,
            adversarial_logits,
            training=training,
        )
        masks = selection_masks(clean_logits, adversarial_logits, y, self.selection)
        natural, adversarial = estimator_objectives(self.objective, mi, masks)
        values = {
            "loss": natural + adversarial,
            "natural_loss": natural,
            "adversarial_loss": adversarial,
            "natural_mi_robust": _weighted_mean(mi.natural_mi_adversarial, masks["robust"]),
            "natural_mi_fooled": _weighted_mean(mi.natural_mi_adversarial, masks["fooled"]),
            "adversarial_mi_robust": _weighted_mean(mi.adversarial_mi_adversarial, masks["robust"]),
            "adversarial_mi_fooled": _weighted_mean(mi.adversarial_mi_adversarial, masks["fooled"]),
        }
        return values

    def train_step(self, data):
        x, y, x_adv = adversarial_batch(self, data)
        variables = self.trainable_variables
        with tf.GradientTape() as tape:
            values = self._estimator_losses(x, x_adv, y, training=True)
            # Every replica holds the global loss; Keras sums replica gradients.
            scaled = self.optimizer.scale_loss(values["loss"] / num_replicas())
        gradients = tape.gradient(scaled, variables)
        apply_if_finite(self.optimizer, gradients, variables, values["loss"], enabled=self.stop_on_non_finite)
        return self._update(values)

    def test_step(self, data):
        x, y = images_and_labels(data)
        return self._update(self._estimator_losses(x, self.attack(self.classifier, x, y), y, training=False))

    def _update(self, values):
        update_means(self._trackers, values)
        return {name: tracker.result() for name, tracker in self._trackers.items()}

    def build(self, input_shape):
        if not self.classifier.built:
            self.classifier.build(input_shape)
        num_classes = self.classifier.compute_output_shape(tuple(input_shape))[-1]
        check_estimator_pair(self, num_classes)
        for estimator in (self.natural_estimator, self.adversarial_estimator):
            if not estimator.built:
                estimator.build((None, *tuple(input_shape)[1:]), (None, num_classes))
        self.built = True

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "classifier": keras.saving.serialize_keras_object(self.classifier),
            "natural_estimator": keras.saving.serialize_keras_object(self.natural_estimator),
            "adversarial_estimator": keras.saving.serialize_keras_object(self.adversarial_estimator),
            "attack": keras.saving.serialize_keras_object(self.attack),
            "objective": self.objective.value,
            "selection": self.selection.value,
            "seed": self.seed,
            "stop_on_non_finite": self.stop_on_non_finite,
        }


def _weighted_mean(values: tf.Tensor, mask: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The masked mean with its count, tracked as a weighted mean (`update_means`)."""
    return masked_mean(values, mask), masked_count(mask)
