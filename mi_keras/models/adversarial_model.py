"""Adversarial training of any Keras classifier: standard AT, TRADES or MART."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from mi_keras.attacks.attack import Attack, logits_of
from mi_keras.distribution import global_sum
from mi_keras.enums import BaseLoss
from mi_keras.losses.adversarial_losses import base_loss
from mi_keras.models.step_guard import StepGuard, apply_if_finite
from mi_keras.models.training_utils import (
    adversarial_batch,
    as_attack,
    build_from_classifier,
    deserialize_if_config,
    images_and_labels,
    training_seed,
    update_means,
)


@keras.saving.register_keras_serializable(package="mi_keras")
class AdversarialModel(StepGuard, keras.Model):
    """Wraps a classifier (returning logits) and trains it on adversarial examples.

    Each ``train_step`` crafts ``x_adv = attack(classifier, x, y)`` with the classifier in
    inference mode, then minimises the base loss: cross-entropy on ``x_adv`` (standard AT,
    Madry et al., 2018), TRADES or MART. It is the baseline row of every comparison and the
    frozen target of MIAT's stage 1; `MIDefenseModel` extends it with the MI loss.

    Resuming: Keras builds the optimizer over ``trainable_variables``, which are exactly the
    classifier's trainable ones that ``train_step`` updates, so its state (momentum, step
    count) round-trips through `.keras` files and `keras.callbacks.BackupAndRestore`. The
    step's random draws derive from ``(seed, optimizer.iterations)``, so a loaded model
    continues the saved run step for step.

    Memory: with a clean pass (TRADES, MART, MIAT), the one-tape step keeps the activations
    of ``h(x)`` and ``h(x_adv)`` alive together. ``recompute_clean=True`` keeps one set at a
    time: ``h(x)`` first runs off the tape, the loss's gradient with respect to its logits is
    taken with the adversarial pass's, and ``h(x)`` is then run again under a second tape
    from the same random-layer state and pulled back by that gradient. Same gradients and
    same BatchNorm statistics, for one more forward pass of ``h(x)`` (docs/method.md, section 9).

    Guards, on by default: a step whose images are not floats in [0, 1] fails with a
    ``ValueError`` that says how to convert them; a step whose loss or gradients are NaN or
    infinite is not applied and ``fit`` stops with `NonFiniteLossError`, so the model keeps
    the last good weights; ``save`` refuses non-finite weights.

    Example:
    ```python
    import keras
    from mi_keras.attacks import PGD
    from mi_keras.data import load_dataset
    from mi_keras.models import build_classifier

    train_ds, info = load_dataset("digits", "train", batch_size=32, take=64)  # tiny: a smoke run
    val_ds, _ = load_dataset("digits", "validation", batch_size=32, take=32)
    classifier = build_classifier("small_cnn", info.image_shape, info.num_classes, padding="same")
    from mi_keras.models import AdversarialModel

    model = AdversarialModel(classifier, attack=PGD(eps=8 / 255, steps=10))
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    model.fit(train_ds, validation_data=val_ds, epochs=1)  # the paper: 100 epochs of CIFAR-10
    ```

    Args:
        classifier: a Keras model mapping images in [0, 1] to logits.
        attack: the training attack, an `mi_keras.attacks.Attack`.
        base_loss: ``"ce"``, ``"trades"`` or ``"mart"``.
        beta: the TRADES / MART trade-off weight (6.0 by default).
        eval_attack: the attack of ``test_step``; defaults to ``attack``.
        recompute_clean: trade one more forward pass of ``h(x)`` for the memory of its
            activations (see "Memory" above); no effect when the loss has no clean pass.
        seed: the int that each step's randomness (attack starts, dropout and the other
            random layers of the classifier) derives from, statelessly, with the optimizer
            step; None takes the attack's seed or draws one. It is part of the config, so a
            loaded model resumes the saved run exactly.
        stop_on_non_finite: stop training at the first step whose loss or gradients are not
            finite, before its update (see "Guards"); False applies every update, as Keras does.
        **kwargs: forwarded to `keras.Model`.
    """

    def __init__(
        self,
        classifier: keras.Model,
        attack: Attack,
        base_loss: str | BaseLoss = BaseLoss.CE,
        beta: float = 6.0,
        eval_attack: Attack | None = None,
        recompute_clean: bool = False,
        seed: int | None = None,
        stop_on_non_finite: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.classifier = deserialize_if_config(classifier)
        if not isinstance(self.classifier, keras.Model):
            raise ValueError(
                f"`classifier` must be a keras.Model returning logits; got {type(self.classifier).__name__}."
            )
        self.attack = as_attack(attack, "attack")
        self.eval_attack = as_attack(eval_attack, "eval_attack") if eval_attack is not None else self.attack
        self.base_loss = BaseLoss.parse(base_loss, "base_loss")
        if beta < 0:
            raise ValueError(f"`beta` must be >= 0; got {beta}.")
        self.beta = float(beta)
        if not isinstance(recompute_clean, bool):
            raise ValueError(f"`recompute_clean` must be True or False; got {recompute_clean!r}.")
        self.recompute_clean = recompute_clean
        self._set_stop_on_non_finite(stop_on_non_finite)
        self.seed = training_seed(seed, self.attack)
        self._trackers = {name: keras.metrics.Mean(name=name) for name in self._tracked_means()}
        self.clean_accuracy = keras.metrics.SparseCategoricalAccuracy(name="clean_accuracy")
        self.adversarial_accuracy = keras.metrics.SparseCategoricalAccuracy(name="adversarial_accuracy")
        if type(self).__init__ is AdversarialModel.__init__:  # subclasses call it at the end of theirs
            build_from_classifier(self)

    # Hooks that MIDefenseModel extends.
    def _tracked_means(self) -> list[str]:
        return ["loss", "base_loss"]

    def _needs_clean_logits(self) -> bool:
        return self.base_loss != BaseLoss.CE

    def _gradient_free_inputs(self, x, x_adv) -> dict[str, tf.Tensor]:
        return {}

    def _before_clean_pass(self) -> None:
        """Runs in the step just before ``h(x)``, after ``h(x_adv)``."""

    def _trained_variables(self) -> list:
        """The variables ``train_step`` updates (WMIM adds its jointly trained estimator's)."""
        return self.classifier.trainable_variables

    def _objective(self, x, x_adv, y, clean_logits, adversarial_logits, context):
        """Returns (this replica's share of the loss, global scalar values to track); a value
        may be ``(value, weight)``, tracked as a weighted mean (`update_means`)."""
        per_sample = base_loss(self.base_loss, clean_logits, adversarial_logits, y, self.beta)
        global_batch = global_sum(tf.cast(tf.shape(y)[0], tf.float32))
        share = tf.reduce_sum(per_sample) / global_batch
        value = global_sum(share)
        return share, {"loss": value, "base_loss": value}

    # Keras API.
    def call(self, inputs, training=False):
        return self.classifier(inputs, training=training)

    def build(self, input_shape):
        if not self.classifier.built:
            self.classifier.build(input_shape)
        self.built = True

    @property
    def metrics(self):
        return [*self._trackers.values(), self.clean_accuracy, self.adversarial_accuracy]

    def train_step(self, data):
        x, y, x_adv = adversarial_batch(self, data)
        context = self._gradient_free_inputs(x, x_adv)
        variables = self._trained_variables()
        with tf.GradientTape() as tape:
            adversarial_logits = logits_of(self.classifier, x_adv, training=True)
            clean_logits, state_before = self._clean_logits(tape, x) if self._needs_clean_logits() else (None, [])
            share, values = self._objective(x, x_adv, y, clean_logits, adversarial_logits, context)
            scaled = self.optimizer.scale_loss(share)
        if clean_logits is not None and self.recompute_clean:
            *gradients, clean_gradient = tape.gradient(scaled, [*variables, clean_logits])
            gradients = self._add_recomputed_clean_gradients(gradients, variables, x, clean_gradient, state_before)
        else:
            gradients = tape.gradient(scaled, variables)
        apply_if_finite(self.optimizer, gradients, variables, values["loss"], enabled=self.stop_on_non_finite)
        self._update_metrics(values, y, clean_logits, adversarial_logits)
        return {name: metric.result() for name, metric in self._metrics_to_report(clean_logits)}

    def _clean_logits(self, tape, x) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """``h(x)`` in training mode and, with ``recompute_clean``, the classifier's state before
        it ran; then ``h(x)`` runs off the tape, which only sees its logits."""
        self._before_clean_pass()
        if not self.recompute_clean:
            return logits_of(self.classifier, x, training=True), []
        state_before = [tf.identity(variable) for variable in self._state_variables()]
        with tape.stop_recording():
            clean_logits = logits_of(self.classifier, x, training=True)
        tape.watch(clean_logits)
        return clean_logits, state_before

    def _state_variables(self) -> list:
        """The classifier's variables that a training-mode pass changes: BatchNorm statistics
        and the random layers' seed states."""
        trainable = {id(variable) for variable in self.classifier.trainable_variables}
        return [variable for variable in self.classifier.variables if id(variable) not in trainable]

    def _add_recomputed_clean_gradients(self, gradients, variables, x, clean_gradient, state_before):
        """``gradients`` plus the clean pass's share, ``J_h(x)^T clean_gradient``, from ``h(x)``
        run again in the state it first ran in; the state after the first run is put back."""
        state_variables = self._state_variables()
        state_after = [tf.identity(variable) for variable in state_variables]
        # The recomputation waits for the first backward pass, so one set of activations is alive.
        with tf.control_dependencies([g for g in gradients if g is not None]):
            for variable, value in zip(state_variables, state_before):
                variable.assign(value)
            x = tf.identity(x)
        with tf.GradientTape() as tape:
            recomputed = logits_of(self.classifier, x, training=True)
        clean_share = tape.gradient(recomputed, variables, output_gradients=clean_gradient)
        for variable, value in zip(state_variables, state_after):
            variable.assign(value)
        summed = [
            first if second is None else second if first is None else first + second
            for first, second in zip(gradients, clean_share)
        ]
        # Every update waits for the whole recomputed backward pass: without this barrier about
        # one step in three updated differently (tests/test_recompute_clean.py), an update
        # evidently landing while the recomputation still needed the variable's old value.
        with tf.control_dependencies([g for g in summed if g is not None]):
            return [None if g is None else tf.identity(g) for g in summed]

    def test_step(self, data):
        x, y = images_and_labels(data)
        x_adv = self.eval_attack(self.classifier, x, y)
        self.clean_accuracy.update_state(y, logits_of(self.classifier, x, training=False))
        self.adversarial_accuracy.update_state(y, logits_of(self.classifier, x_adv, training=False))
        return {
            "clean_accuracy": self.clean_accuracy.result(),
            "adversarial_accuracy": self.adversarial_accuracy.result(),
        }

    def _update_metrics(self, values, y, clean_logits, adversarial_logits):
        update_means(self._trackers, values)
        self.adversarial_accuracy.update_state(y, adversarial_logits)
        if clean_logits is not None:
            self.clean_accuracy.update_state(y, clean_logits)

    def _metrics_to_report(self, clean_logits):
        reported = [*self._trackers.items(), ("adversarial_accuracy", self.adversarial_accuracy)]
        if clean_logits is not None:
            reported.append(("clean_accuracy", self.clean_accuracy))
        return reported

    def export_classifier(self, path, **kwargs):
        """Exports the classifier alone as a SavedModel; see `mi_keras.export.export_classifier`."""
        from mi_keras.export import export_classifier

        return export_classifier(self.classifier, path, **kwargs)

    def get_config(self) -> dict[str, Any]:
        config = {
            "classifier": keras.saving.serialize_keras_object(self.classifier),
            "attack": keras.saving.serialize_keras_object(self.attack),
            "base_loss": self.base_loss.value,
            "beta": self.beta,
            "eval_attack": keras.saving.serialize_keras_object(self.eval_attack)
            if self.eval_attack is not self.attack
            else None,
            "recompute_clean": self.recompute_clean,
            "seed": self.seed,
            "stop_on_non_finite": self.stop_on_non_finite,
        }
        return {**super().get_config(), **config}
