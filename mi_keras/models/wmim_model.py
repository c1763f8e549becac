"""WMIM: adversarial training plus standard-MI maximisation on adversarial samples."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from mi_keras.attacks.attack import Attack
from mi_keras.distribution import global_sum
from mi_keras.enums import BaseLoss, Bound
from mi_keras.mi.mi_estimator import MIEstimator
from mi_keras.models.adversarial_model import AdversarialModel
from mi_keras.models.training_utils import (
    as_estimator,
    build_from_classifier,
    check_estimator_classes,
    classifier_classes,
    freeze,
)


@keras.saving.register_keras_serializable(package="mi_keras")
class WMIMModel(AdversarialModel):
    """The WMIM baseline of the MIAT paper: ``L = L_base(x_adv) - alpha * I(x_adv; h(x_adv))``.

    Following Zhu et al. ("Learning adversarially robust representations via worst-case
    mutual information maximization", ICML 2020), the standard MI between the adversarial
    input and the classifier's output on it is maximised on the same adversarial examples
    the base loss trains on. The MI is one `MIEstimator` (local encoder of the image, global
    network of the logits, the per-sample DV bound by default) scored with in-batch
    negatives. By default the estimator stays frozen (e.g. the natural estimator of MIAT's
    stage 1, trained by `MIEstimatorTrainer`); with ``train_estimator=True`` it is trained
    jointly, by the same step and optimizer, to maximise the same bound, as Zhu et al. train
    their critic. Joint training under the classifier's optimizer is fragile: on the
    quick-start digits (SGD 0.05, momentum 0.9, alpha 1, DV bound) the loss became NaN in
    the first epoch.

    The MIAT paper gives no weight for this term; ``alpha`` defaults to 1.

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
    from mi_keras.models import WMIMModel

    estimator = MIEstimator.for_classifier(info.image_shape, 10, units=64)
    model = WMIMModel(classifier, estimator, attack=PGD(eps=8 / 255, steps=10), alpha=1.0)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    model.fit(train_ds, validation_data=val_ds, epochs=1)
    ```

    Args:
        classifier: a Keras model mapping images in [0, 1] to logits.
        estimator: the `MIEstimator` of ``I(image; h(image))``.
        attack: the training attack (the paper: PGD-10, eps 8/255, step eps/4).
        base_loss: ``"ce"`` (standard AT, the paper's WMIM), ``"trades"`` or ``"mart"``.
        beta: TRADES / MART weight.
        alpha: weight of the MI term, >= 0.
        train_estimator: train the estimator jointly (True) or keep it frozen (False).
        mi_bound: score the MI with this `Bound` instead of the estimator's own (None).
        eval_attack: the attack of ``test_step``; defaults to ``attack``.
        seed: the int each step's randomness derives from (see `AdversarialModel`).
        **kwargs: forwarded to `AdversarialModel` (e.g. ``recompute_clean=True``) and `keras.Model`.
    """

    def __init__(
        self,
        classifier: keras.Model,
        estimator: MIEstimator,
        attack: Attack,
        base_loss: str | BaseLoss = BaseLoss.CE,
        beta: float = 6.0,
        alpha: float = 1.0,
        train_estimator: bool = False,
        mi_bound: str | Bound | None = None,
        eval_attack: Attack | None = None,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(
            classifier, attack, base_loss=base_loss, beta=beta, eval_attack=eval_attack,
            seed=seed, **kwargs,
        )  # fmt: skip
        self.estimator = as_estimator(estimator, "estimator")
        check_estimator_classes(classifier_classes(self.classifier), estimator=self.estimator)
        if alpha < 0:
            raise ValueError(f"`alpha` must be >= 0; got {alpha}.")
        self.alpha = float(alpha)
        self.train_estimator = bool(train_estimator)
        self.mi_bound = Bound.parse(mi_bound, "mi_bound") if mi_bound is not None else None
        if not self.train_estimator:
            freeze(self.estimator)
        build_from_classifier(self)

    def _tracked_means(self) -> list[str]:
        return ["loss", "base_loss", "mi_loss", "adversarial_mi"]

    def _trained_variables(self) -> list:
        estimator = self.estimator.trainable_variables if self.train_estimator else []
        return [*self.classifier.trainable_variables, *estimator]

    def _gradient_free_inputs(self, x, x_adv):
        tf.debugging.assert_greater_equal(
            tf.shape(x)[0], 2,
            message="WMIMModel needs batches of >= 2 samples (the MI bound uses in-batch "
            "negatives); batch with drop_remainder=True.",
        )  # fmt: skip
        return {}

    def _objective(self, x, x_adv, y, clean_logits, adversarial_logits, context):
        share, values = super()._objective(x, x_adv, y, clean_logits, adversarial_logits, context)
        # Each replica scores its own samples against its own negatives.
        training = self.train_estimator
        features = self.estimator.encode(x_adv, training=training)
        mi = self.estimator.score(features, adversarial_logits, training=training, bound=self.mi_bound)
        global_batch = global_sum(tf.cast(tf.shape(y)[0], tf.float32))
        mi_share = tf.reduce_sum(mi) / global_batch
        share -= self.alpha * mi_share
        adversarial_mi = global_sum(mi_share)
        return share, {
            "loss": values["base_loss"] - self.alpha * adversarial_mi,
            "base_loss": values["base_loss"],
            "mi_loss": -adversarial_mi,
            "adversarial_mi": adversarial_mi,
        }

    def build(self, input_shape):
        super().build(input_shape)
        num_classes = self.classifier.compute_output_shape(tuple(input_shape))[-1]
        check_estimator_classes(num_classes, estimator=self.estimator)
        if not self.estimator.built:
            self.estimator.build((None, *tuple(input_shape)[1:]), (None, num_classes))
        if not self.train_estimator:
            freeze(self.estimator)  # weights built after freezing are trainable

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "estimator": keras.saving.serialize_keras_object(self.estimator),
            "alpha": self.alpha,
            "train_estimator": self.train_estimator,
            "mi_bound": self.mi_bound.value if self.mi_bound is not None else None,
        }
