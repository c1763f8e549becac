"""MIAT (stage 2): adversarial training with the natural-MI / adversarial-MI loss."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from mi_keras.attacks.attack import Attack
from mi_keras.distribution import gather_rows, global_sum, num_replicas, row_offset
from mi_keras.enums import BaseLoss, Bound, MIDifference, Selection
from mi_keras.losses.batch_statistics import masked_count, masked_mean
from mi_keras.losses.miat_loss import miat_loss
from mi_keras.losses.selection import selection_masks
from mi_keras.mi.mi_estimator import MIEstimator
from mi_keras.mi.mi_terms import MITerms, mi_terms, pattern_features
from mi_keras.models.adversarial_model import AdversarialModel
from mi_keras.models.training_utils import as_estimator, build_from_classifier, freeze


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
        self.mi_bound = Bound.parse(mi_bound, "mi_bound") if mi_bound is not None else None
        self._check_num_classes()
        build_from_classifier(self)

    def _check_num_classes(self):
        outputs = getattr(self.classifier, "outputs", None)
        num_classes = outputs[0].shape[-1] if outputs else None
        for name in ("natural_estimator", "adversarial_estimator"):
            expected = getattr(self, name).num_classes
            if None not in (num_classes, expected) and num_classes != expected:
                raise ValueError(
                    f"`{name}` was built for {expected} logits but the classifier returns "
                    f"{num_classes}; build it with MIEstimator.for_classifier(..., num_classes={num_classes})."
                )

    def _tracked_means(self) -> list[str]:
        return ["loss", "base_loss", "mi_loss", "natural_mi", "adversarial_mi", "selected_fraction"]

    def _needs_clean_logits(self) -> bool:
        return True

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
        mi = self._mi_terms(clean_logits, adversarial_logits, context)
        selected = selection_masks(clean_logits, adversarial_logits, y, self.selection)["fooled"]
        mi_loss = miat_loss(mi, selected, self._current_lam(), self.difference)
        share += self.alpha * mi_loss / num_replicas()  # every replica holds the global value
        global_batch = global_sum(tf.cast(tf.shape(y)[0], tf.float32))
        values = {
            "loss": values["base_loss"] + self.alpha * mi_loss,
            "base_loss": values["base_loss"],
            "mi_loss": mi_loss,
            "natural_mi": masked_mean(mi.natural_mi_adversarial, selected),
            "adversarial_mi": masked_mean(mi.adversarial_mi_adversarial, selected),
            "selected_fraction": masked_count(selected) / global_batch,
        }
        return share, values

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
        }
