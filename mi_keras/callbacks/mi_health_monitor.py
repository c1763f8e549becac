"""A callback that says, in one sentence, when MI-defense training stops being healthy."""

from __future__ import annotations

import math
import warnings
from typing import Any

import keras
import numpy as np

from mi_keras.enums import HealthRule


class MIHealthWarning(UserWarning):
    """Issued by `MIHealthMonitor`; ``warnings.simplefilter("error", MIHealthWarning)`` makes it fatal."""


class MIHealthMonitor(keras.callbacks.Callback):
    """Watches an adversarial or MI-defense training run and warns when it goes wrong.

    After every epoch it measures, on a fixed sample of validation images, and adds to the
    epoch's logs (so `keras.callbacks.History` and `keras.callbacks.TensorBoard` record them
    when they come after it in the callback list):

    * ``health_clean_accuracy``, ``health_chance_accuracy`` (the sample's majority-class
      share) and ``health_top_prediction_share`` (the share of the most predicted class);
    * for a `MIDefenseModel`, ``health_natural_mi``: the frozen natural estimator's
      ``I_N(x; h(x))`` on the clean images, in nats; and ``health_gradient_ratio``: the
      global norm of the MI term's gradient (``alpha * L_mi``) over the base loss's, on one
      validation batch (`MIDefenseModel.loss_gradient_norms`).

    It warns (`MIHealthWarning`), naming the epoch and the number, the first time each rule
    of `HealthRule` holds: validation accuracy back at chance after having been above it
    (``collapse``); one class taking ``constant_share`` of the predictions two epochs in a row,
    or once after accuracy had been above chance (``constant_predictions``: a fresh
    classifier often predicts one class for its first epoch); ``I_N(x; h(x)) <= 0``, so the estimators no longer read the
    classifier and the MI terms are inert (``inert_mi``); the gradient ratio above
    ``max_gradient_ratio`` (``mi_gradient_dominates``). ``verdict()`` summarises the run.
    Zhou et al., "Improving Adversarial Robustness via Mutual Information Estimation",
    ICML 2022; docs/method.md explains the MI terms.

    Example:
    ```python
    import keras
    import numpy as np
    from mi_keras.attacks import PGD
    from mi_keras.callbacks import MIHealthMonitor
    from mi_keras.models import AdversarialModel, build_classifier

    x = np.random.default_rng(0).random((64, 8, 8, 1), dtype=np.float32)
    y = np.arange(64) % 10
    model = AdversarialModel(build_classifier("small_cnn", (8, 8, 1), 10, padding="same"), attack=PGD(0.1, steps=2))
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    monitor = MIHealthMonitor((x, y))
    model.fit(x, y, batch_size=32, epochs=1, callbacks=[monitor], verbose=0)
    print(monitor.verdict()["healthy"])
    ```

    Args:
        validation_data: ``(images, labels)`` arrays or a dataset of such batches; the
            first ``max_samples`` images are kept and reused every epoch (never the test set).
        max_samples: how many validation images to keep.
        batch_size: the batch of the estimator and gradient measurements (>= 2: the DV bound
            uses in-batch negatives).
        max_gradient_ratio: the ``mi_gradient_dominates`` threshold.
        chance_margin: accuracy within this many binomial standard errors of the chance
            level counts as chance.
        constant_share: the ``constant_predictions`` threshold.
    """

    def __init__(
        self,
        validation_data,
        max_samples: int = 512,
        batch_size: int = 128,
        max_gradient_ratio: float = 10.0,
        chance_margin: float = 3.0,
        constant_share: float = 0.99,
    ):
        super().__init__()
        if max_samples < 2 or batch_size < 2:
            raise ValueError(f"`max_samples` and `batch_size` must be >= 2; got {max_samples} and {batch_size}.")
        if not max_gradient_ratio > 0 or not chance_margin >= 0 or not 0 < constant_share <= 1:
            raise ValueError(
                "`max_gradient_ratio` must be > 0, `chance_margin` >= 0 and `constant_share` in (0, 1]; got "
                f"{max_gradient_ratio}, {chance_margin} and {constant_share}."
            )
        self.images, self.labels = _first_samples(validation_data, max_samples)
        self.batch_size = int(batch_size)
        self.thresholds = {
            "max_gradient_ratio": float(max_gradient_ratio),
            "chance_margin": float(chance_margin),
            "constant_share": float(constant_share),
        }
        self.rows: list[dict[str, Any]] = []

    def on_train_begin(self, logs=None):
        self.rows = []

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1, **self.measure()}
        self.rows.append(row)
        if logs is not None:
            logs.update({key: value for key, value in row.items() if key != "epoch"})
        earlier = {finding["rule"] for finding in health_findings(self.rows[:-1], **self.thresholds)}
        for finding in health_findings(self.rows, **self.thresholds):
            if finding["rule"] not in earlier:
                warnings.warn(finding["message"], MIHealthWarning, stacklevel=2)

    def measure(self) -> dict[str, float]:
        """This epoch's health figures (the ``health_*`` log keys) for the current weights."""
        model = self.model
        classifier = getattr(model, "classifier", model)
        logits = np.concatenate(
            [
                keras.ops.convert_to_numpy(classifier(self.images[start : start + self.batch_size], training=False))
                for start in range(0, len(self.images), self.batch_size)
            ]
        ).astype(np.float64)
        predictions = logits.argmax(axis=-1)
        counts = np.bincount(self.labels, minlength=logits.shape[-1])
        row = {
            "health_clean_accuracy": float(np.mean(predictions == self.labels)),
            "health_chance_accuracy": float(counts.max() / len(self.labels)),
            "health_top_prediction_share": float(np.bincount(predictions).max() / len(predictions)),
            "health_samples": float(len(self.labels)),
        }
        estimator = getattr(model, "natural_estimator", None)
        if estimator is not None:
            row["health_natural_mi"] = self._natural_mi(estimator, logits)
        if hasattr(model, "loss_gradient_norms"):
            batch = slice(0, self.batch_size)
            norms = model.loss_gradient_norms((self.images[batch], self.labels[batch]))
            ratio = norms["mi_gradient_norm"] / norms["base_gradient_norm"] if norms["base_gradient_norm"] else math.inf
            row.update(
                health_base_gradient_norm=norms["base_gradient_norm"],
                health_mi_gradient_norm=norms["mi_gradient_norm"],
                health_gradient_ratio=ratio,
            )
        return row

    def _natural_mi(self, estimator, logits: np.ndarray) -> float:
        """Mean ``I_N(x; h(x))`` over the sample, scored in batches (a last batch of 1 is skipped)."""
        values = []
        for start in range(0, len(self.images), self.batch_size):
            images = self.images[start : start + self.batch_size]
            if len(images) >= 2:
                scores = estimator(images, logits[start : start + self.batch_size].astype(np.float32), training=False)
                values.append(keras.ops.convert_to_numpy(scores))
        return float(np.mean(np.concatenate(values)))

    def verdict(self) -> dict[str, Any]:
        """``{"healthy", "epochs_checked", "findings"}`` of the epochs seen so far (see `health_findings`)."""
        return health_verdict(self.rows, **self.thresholds)


def health_findings(
    rows: list[dict[str, Any]],
    max_gradient_ratio: float = 10.0,
    chance_margin: float = 3.0,
    constant_share: float = 0.99,
) -> list[dict[str, Any]]:
    """The rules of `HealthRule` that hold in ``rows`` (the monitor's ``health_*`` figures, one
    dict per epoch with a 1-based ``epoch``; e.g. a training history), one finding per rule:
    ``{"rule", "epoch" (the first it held), "value", "epochs" (how many), "message"}``."""
    found: dict[HealthRule, dict[str, Any]] = {}
    above_chance: tuple[int, float] | None = None
    constant_epochs = 0

    def record(rule: HealthRule, row: dict, value: float, message: str) -> None:
        if rule in found:
            found[rule]["epochs"] += 1
        else:
            found[rule] = {"rule": rule.value, "epoch": row["epoch"], "value": value, "epochs": 1, "message": message}

    for row in rows:
        if "health_clean_accuracy" not in row:
            continue
        epoch, accuracy, chance = row["epoch"], row["health_clean_accuracy"], row["health_chance_accuracy"]
        bound = chance + chance_margin * math.sqrt(chance * (1 - chance) / row.get("health_samples", 512))
        if accuracy > bound and above_chance is None:
            above_chance = (epoch, accuracy)
        elif accuracy <= bound and above_chance is not None:
            record(
                HealthRule.COLLAPSE, row, accuracy,
                f"Epoch {epoch}: validation accuracy fell to {100 * accuracy:.1f}%, chance level "
                f"({100 * chance:.1f}%), after {100 * above_chance[1]:.1f}% at epoch {above_chance[0]}: the "
                "classifier has collapsed; keep the best epoch and retrain with a lower learning rate, alpha or lam.",
            )  # fmt: skip
        share = row["health_top_prediction_share"]
        constant_epochs = constant_epochs + 1 if share >= constant_share else 0
        if constant_epochs >= 2 or (constant_epochs and above_chance is not None):
            record(
                HealthRule.CONSTANT_PREDICTIONS, row, share,
                f"Epoch {epoch}: the classifier predicts one class for {100 * share:.1f}% of the validation "
                "images: its predictions are constant.",
            )  # fmt: skip
        natural_mi = row.get("health_natural_mi")
        if natural_mi is not None and natural_mi <= 0:
            record(
                HealthRule.INERT_MI, row, natural_mi,
                f"Epoch {epoch}: the frozen natural-MI estimator reads {natural_mi:.3f} nats (<= 0) between clean "
                "validation images and the classifier's logits: it no longer reads the classifier, so the MI "
                "terms are inert.",
            )  # fmt: skip
        ratio = row.get("health_gradient_ratio")
        if ratio is not None and ratio > max_gradient_ratio:
            record(
                HealthRule.MI_GRADIENT_DOMINATES, row, ratio,
                f"Epoch {epoch}: the MI term's gradient is {ratio:.1f}x the base loss's (limit "
                f"{max_gradient_ratio:g}x): the MI term, not the classification loss, drives training; lower "
                "alpha or lam.",
            )  # fmt: skip
    return list(found.values())


def health_verdict(rows: list[dict[str, Any]], **thresholds) -> dict[str, Any]:
    """``{"healthy": no finding, "epochs_checked", "findings"}`` of ``rows`` (see `health_findings`)."""
    checked = [row for row in rows if "health_clean_accuracy" in row]
    findings = health_findings(checked, **thresholds)
    return {"healthy": not findings, "epochs_checked": len(checked), "findings": findings}


def _first_samples(validation_data, max_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``max_samples`` (images, labels) from arrays or a dataset of batches, as NumPy."""
    if isinstance(validation_data, tuple | list) and len(validation_data) == 2:
        images, labels = (np.asarray(part) for part in validation_data)
        images, labels = images[:max_samples], labels[:max_samples]
    else:
        image_parts, label_parts, kept = [], [], 0
        for batch in validation_data:
            images, labels = batch[0], batch[1]
            image_parts.append(np.asarray(images))
            label_parts.append(np.asarray(labels).reshape(-1))
            kept += len(label_parts[-1])
            if kept >= max_samples:
                break
        if not image_parts:
            raise ValueError("`validation_data` is empty.")
        images, labels = np.concatenate(image_parts)[:max_samples], np.concatenate(label_parts)[:max_samples]
    if len(images) < 2 or len(images) != len(labels):
        raise ValueError(f"`validation_data` must hold >= 2 images with one label each; got {len(images)} images.")
    if not np.issubdtype(images.dtype, np.floating) or images.min() < 0 or images.max() > 1:
        raise ValueError("`validation_data` images must be floats in [0, 1] (convert 0..255 pixels with x / 255).")
    return images.astype(np.float32), labels.reshape(-1).astype(np.int64)
