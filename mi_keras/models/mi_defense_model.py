"""MIAT (stage 2): adversarial training with the natural-MI / adversarial-MI loss."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from mi_keras.attacks.attack import Attack, logits_of
from mi_keras.distribution import gather_rows, global_sum, num_replicas, row_offset
from mi_keras.enums import BaseLoss, Bound, MIDifference, Selection
from mi_keras.losses.batch_statistics import masked_count, masked_mean
from mi_keras.losses.miat_loss import miat_loss
from mi_keras.losses.selection import selection_masks
from mi_keras.mi.mi_estimator import MIEstimator
from mi_keras.mi.mi_terms import MITerms, mi_terms, pattern_features
from mi_keras.models.adversarial_model import AdversarialModel
from mi_keras.models.training_utils import (
    as_estimator,
    build_from_classifier,
    check_estimator_pair,
    classifier_classes,
    freeze,
    images_and_labels,
    reseed_random_layers,
    step_seeds,
)


@keras.saving.register_keras_serializable(package="mi_keras")
class MIDefenseModel(AdversarialModel):
    """MIAT / NAMID (Zhou et al., "Improving Adversarial Robustness via Mutual Information
    Estimation", ICML 2022): ``L = L_base + alpha * L_mi`` with two frozen MI estimators.

    One step: ``x_adv = attack(h, x, y)`` (h in inference mode); each local encoder runs once,
    on ``x`` and on ``n = x_adv - x``, with no gradient; ``h(x_adv)`` then ``h(x)`` run once
    each in training mode and feed the base loss, the Eq. 6 selection and the four MI terms
    ``I_N(x; h(x))``, ``I_N(x; h(x_adv))``, ``I_A(n; h(x_adv))``, ``I_A(n; h(x))`` (`mi_terms`,
    each frozen global network run once on both logits; docs/method.md, sections 4 and 9). The
    official code runs h seven times and each local encoder twice for the same gradients.

    Saving and resuming work as in `AdversarialModel`: the estimators stay frozen after
    `keras.models.load_model`, so the optimizer covers the classifier's variables alone.

    Metrics, per epoch: ``loss``, ``base_loss``; ``mi_loss``, the mean over the steps that
    selected at least one sample (on the others the MI loss is 0 by definition);
    ``natural_mi`` and ``adversarial_mi``, ``I_N(x; h(x_adv))`` and ``I_A(n; h(x_adv))``
    averaged over every selected sample of the epoch; ``selected_fraction``;
    ``selected_per_step`` and ``steps_under_2_selected`` (the share of steps that selected
    fewer than two samples: with one, each cosine is +/-1 and gives no gradient).
    `mi_keras.callbacks.MIHealthMonitor` watches them and `loss_gradient_norms`.

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
    from mi_keras.models import MIDefenseModel

    natural = MIEstimator.for_classifier(info.image_shape, 10, units=64)  # trained by MIEstimatorTrainer
    adversarial = MIEstimator.for_classifier(info.image_shape, 10, units=64)
    model = MIDefenseModel(classifier, natural, adversarial, attack=PGD(eps=8 / 255))
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9, weight_decay=2e-3))
    model.fit(train_ds, validation_data=val_ds, epochs=1)  # the paper: 100 epochs of CIFAR-10
    ```

    Args:
        classifier: a Keras model mapping images in [0, 1] to logits.
        natural_estimator: the `MIEstimator` of ``I(x; h(.))``; frozen here.
        adversarial_estimator: the `MIEstimator` of ``I(x_adv - x; h(.))``; frozen here.
        attack: the training attack (the paper: PGD-10, eps 8/255, step eps/4).
        base_loss: ``"ce"`` (NAMID), ``"trades"`` (NAMID_T) or ``"mart"`` (NAMID_M).
        beta: TRADES / MART weight.
        alpha: weight of the MI loss (5 in the paper).
        lam: weight of the MI-difference term (0.1 in the paper; 0 in the released code).
        selection: ``"logits"`` (argmax, the paper) or ``"batch_softmax"`` (the code's bug).
        lam_ramp_steps: grow lambda linearly from 0 to ``lam`` over this many optimizer
            steps (0: the paper's constant lambda). One of the remedies of docs/lambda.md.
        difference: how the lambda term is reduced over the batch (`MIDifference`):
            ``"selected_mean"`` (the paper), ``"batch_mean"`` or ``"relative"``.
        mi_bound: score the four MI terms with this `Bound` (``"infonce"`` is at most
            ``log B``) instead of the estimators' own; None keeps theirs.
        min_selected: the MI loss counts only from this many selected samples (1: the
            paper). A stabiliser, like the next two (`miat_loss` says what each changes in
            the paper's loss; docs/stability.md measures them).
        weight_by_selected_share: multiply the cosine terms by the selected share k / B.
        cosine_epsilon: bound the cosines' gradient by ``1 / cosine_epsilon`` (0: the paper).
        shared_dropout_mask: run ``h(x)`` with the random-layer state ``h(x_adv)`` ran with, so
            both draw the same dropout mask and the Eq. 6 selection sees the attack, not two
            masks (on the Fashion-MNIST small CNN, independent masks added 42% more selected
            samples: results/experiments/dropout_selection.json). No effect on a classifier
            without random layers (the paper's ResNet-18); False draws independent masks.
        eval_attack: the attack of ``test_step``; defaults to ``attack``.
        seed: the int each step's randomness derives from (see `AdversarialModel`).
        **kwargs: forwarded to `AdversarialModel` (e.g. ``recompute_clean=True``, which
            halves the classifier activations kept for the backward pass) and `keras.Model`.
    """

    def __init__(
        self,
        classifier: keras.Model,
        natural_estimator: MIEstimator,
        adversarial_estimator: MIEstimator,
        attack: Attack,
        base_loss: str | BaseLoss = BaseLoss.CE,
        beta: float = 6.0,
        alpha: float = 5.0,
        lam: float = 0.1,
        selection: str | Selection = Selection.LOGITS,
        lam_ramp_steps: int = 0,
        difference: str | MIDifference = MIDifference.SELECTED_MEAN,
        mi_bound: str | Bound | None = None,
        min_selected: int = 1,
        weight_by_selected_share: bool = False,
        cosine_epsilon: float = 0.0,
        shared_dropout_mask: bool = True,
        eval_attack: Attack | None = None,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(
            classifier, attack, base_loss=base_loss, beta=beta, eval_attack=eval_attack, seed=seed, **kwargs
        )
        self.natural_estimator = as_estimator(natural_estimator, "natural_estimator")
        self.adversarial_estimator = as_estimator(adversarial_estimator, "adversarial_estimator")
        for estimator in (self.natural_estimator, self.adversarial_estimator):
            freeze(estimator)
        if alpha < 0 or lam < 0:
            raise ValueError(f"`alpha` and `lam` must be >= 0; got alpha={alpha}, lam={lam}.")
        self.alpha = float(alpha)
        self.lam = float(lam)
        self.selection = Selection.parse(selection, "selection")
        if int(lam_ramp_steps) != lam_ramp_steps or lam_ramp_steps < 0:
            raise ValueError(f"`lam_ramp_steps` must be an integer >= 0; got {lam_ramp_steps!r}.")
        self.lam_ramp_steps = int(lam_ramp_steps)
        self.difference = MIDifference.parse(difference, "difference")
        self._gradient_norms_function = None
        self.mi_bound = Bound.parse(mi_bound, "mi_bound") if mi_bound is not None else None
        if isinstance(min_selected, bool) or int(min_selected) != min_selected or min_selected < 1:
            raise ValueError(f"`min_selected` must be an integer >= 1; got {min_selected!r}.")
        self.min_selected = int(min_selected)
        if not isinstance(weight_by_selected_share, bool):
            raise ValueError(f"`weight_by_selected_share` must be True or False; got {weight_by_selected_share!r}.")
        self.weight_by_selected_share = weight_by_selected_share
        if not cosine_epsilon >= 0:
            raise ValueError(f"`cosine_epsilon` must be >= 0; got {cosine_epsilon!r}.")
        self.cosine_epsilon = float(cosine_epsilon)
        if not isinstance(shared_dropout_mask, bool):
            raise ValueError(f"`shared_dropout_mask` must be True or False; got {shared_dropout_mask!r}.")
        self.shared_dropout_mask = shared_dropout_mask
        check_estimator_pair(self, classifier_classes(self.classifier))
        build_from_classifier(self)

    def _tracked_means(self) -> list[str]:
        return [
            "loss",
            "base_loss",
            "mi_loss",
            "natural_mi",
            "adversarial_mi",
            "selected_fraction",
            "selected_per_step",
            "steps_under_2_selected",
        ]

    def _needs_clean_logits(self) -> bool:
        return True

    def _before_clean_pass(self) -> None:
        if self.shared_dropout_mask:  # the state adversarial_batch gave h(x_adv)
            reseed_random_layers(self, step_seeds(self.seed, self.optimizer)[1])

    def _gradient_free_inputs(self, x, x_adv):
        batch = tf.shape(x)[0]
        tf.debugging.assert_greater_equal(
            batch,
            2,
            message="MIDefenseModel needs batches of >= 2 samples (the MI bound uses in-batch negatives); batch with drop_remainder=True.",
        )
        natural, adversarial = pattern_features(
            self.natural_estimator, self.adversarial_estimator, x, x_adv, training=False
        )
        return {
            "natural_features": gather_rows(tf.stop_gradient(natural)),
            "adversarial_features": gather_rows(tf.stop_gradient(adversarial)),
            "positive_index": row_offset(batch) + tf.range(batch),
        }

    def _objective(self, x, x_adv, y, clean_logits, adversarial_logits, context):
        share, values = super()._objective(x, x_adv, y, clean_logits, adversarial_logits, context)
        mi_loss, mi, selected = self._mi_loss(y, clean_logits, adversarial_logits, context)
        share += self.alpha * mi_loss / num_replicas()  # every replica holds the global value
        global_batch = global_sum(tf.cast(tf.shape(y)[0], tf.float32))
        count = masked_count(selected)
        values = {
            "loss": values["base_loss"] + self.alpha * mi_loss,
            "base_loss": values["base_loss"],
            "mi_loss": (mi_loss, tf.cast(count > 0, tf.float32)),
            "natural_mi": (masked_mean(mi.natural_mi_adversarial, selected), count),
            "adversarial_mi": (masked_mean(mi.adversarial_mi_adversarial, selected), count),
            "selected_fraction": count / global_batch,
            "selected_per_step": count,
            "steps_under_2_selected": tf.cast(count < 2, tf.float32),
        }
        return share, values

    def _mi_loss(self, y, clean_logits, adversarial_logits, context) -> tuple[tf.Tensor, MITerms, tf.Tensor]:
        """``(L_mi, the four MI terms, the Eq. 6 selection mask)`` of a batch."""
        mi = self._mi_terms(clean_logits, adversarial_logits, context)
        selected = selection_masks(clean_logits, adversarial_logits, y, self.selection)["fooled"]
        mi_loss = miat_loss(
            mi,
            selected,
            self._current_lam(),
            self.difference,
            min_selected=self.min_selected,
            weight_by_selected_share=self.weight_by_selected_share,
            cosine_epsilon=self.cosine_epsilon,
        )
        return mi_loss, mi, selected

    def loss_gradient_norms(self, data) -> dict[str, float]:
        """Global norms of the base loss's and of ``alpha * L_mi``'s gradients on one batch.

        Their ratio says whether the MI term or the base loss drives training. The batch runs
        as a training step would (attack, training-mode passes) but nothing is updated: the
        classifier's BatchNorm statistics and random-layer states are put back.

        Args:
            data: one batch ``(images, labels)`` of at least 2 samples.

        Returns:
            ``{"base_gradient_norm", "mi_gradient_norm", "selected"}`` (the selected count).
        """
        if self._gradient_norms_function is None:
            self._gradient_norms_function = tf.function(self._gradient_norms, autograph=False)
        return {name: float(value) for name, value in self._gradient_norms_function(data).items()}

    def _gradient_norms(self, data) -> dict[str, tf.Tensor]:
        x, y = images_and_labels(data)
        x_adv = self.attack(self.classifier, x, y)
        context = self._gradient_free_inputs(x, x_adv)
        variables = self.classifier.trainable_variables
        state = [tf.identity(variable) for variable in self._state_variables()]
        reseed_random_layers(self, step_seeds(self.seed, self.optimizer)[1])  # as a step's h(x_adv)
        with tf.GradientTape(persistent=True) as tape:
            adversarial_logits = logits_of(self.classifier, x_adv, training=True)
            self._before_clean_pass()
            clean_logits = logits_of(self.classifier, x, training=True)
            base, _ = AdversarialModel._objective(self, x, x_adv, y, clean_logits, adversarial_logits, context)
            mi_loss, _, selected = self._mi_loss(y, clean_logits, adversarial_logits, context)
            weighted_mi = self.alpha * mi_loss
        norms = {
            "base_gradient_norm": tf.linalg.global_norm(tape.gradient(base, variables, unconnected_gradients="zero")),
            "mi_gradient_norm": tf.linalg.global_norm(
                tape.gradient(weighted_mi, variables, unconnected_gradients="zero")
            ),
            "selected": masked_count(selected),
        }
        with tf.control_dependencies(list(norms.values())):
            for variable, value in zip(self._state_variables(), state):
                variable.assign(value)
        return norms

    def _current_lam(self) -> tf.Tensor | float:
        """``lam``, ramped linearly over the first ``lam_ramp_steps`` steps (a function of the step)."""
        if not self.lam_ramp_steps:
            return self.lam
        progress = tf.cast(self.optimizer.iterations + 1, tf.float32) / float(self.lam_ramp_steps)
        return self.lam * tf.minimum(progress, 1.0)

    def _mi_terms(self, clean_logits, adversarial_logits, context) -> MITerms:
        return mi_terms(
            self.natural_estimator, self.adversarial_estimator,
            context["natural_features"], context["adversarial_features"],
            clean_logits, adversarial_logits,
            training=False, positive_index=context["positive_index"], bound=self.mi_bound,
        )  # fmt: skip

    def build(self, input_shape):
        super().build(input_shape)
        num_classes = self.classifier.compute_output_shape(tuple(input_shape))[-1]
        check_estimator_pair(self, num_classes)
        for estimator in (self.natural_estimator, self.adversarial_estimator):
            if not estimator.built:
                estimator.build((None, *tuple(input_shape)[1:]), (None, num_classes))
            # Weights built after freezing are trainable: freeze again, so that Keras builds
            # the optimizer over the classifier's variables alone.
            freeze(estimator)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "natural_estimator": keras.saving.serialize_keras_object(self.natural_estimator),
            "adversarial_estimator": keras.saving.serialize_keras_object(self.adversarial_estimator),
            "alpha": self.alpha,
            "lam": self.lam,
            "selection": self.selection.value,
            "lam_ramp_steps": self.lam_ramp_steps,
            "difference": self.difference.value,
            "mi_bound": self.mi_bound.value if self.mi_bound is not None else None,
            "min_selected": self.min_selected,
            "weight_by_selected_share": self.weight_by_selected_share,
            "cosine_epsilon": self.cosine_epsilon,
            "shared_dropout_mask": self.shared_dropout_mask,
        }
