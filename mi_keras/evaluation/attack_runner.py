"""Runs attacks over a `DataSlice` in compiled batches and scores them on a target classifier."""

from __future__ import annotations

import dataclasses
import functools
import time
import zlib

import keras
import numpy as np
import tensorflow as tf

from mi_keras.attacks.attack import Attack, logits_of
from mi_keras.attacks.auto_attack import AutoAttack
from mi_keras.attacks.geometry import fold_seed


@dataclasses.dataclass
class AttackOutcome:
    """What one attack did to every sample of a slice.

    Attributes:
        correct: bool ``[n]``, the target classifies ``x_adv`` correctly.
        seconds: wall time of crafting and scoring, first-batch tracing included.
        examples: the first ``keep_examples`` adversarial images.
        predictions: the target's labels on those examples.
        crafting_correct: bool ``[n]``, the crafting model (a transfer attack's surrogate)
            classifies ``x_adv`` correctly; None when the target itself was attacked.
        details: attack-specific measurements (AutoAttack: per-attack cumulative robust
            accuracy and seconds).
    """

    correct: np.ndarray
    seconds: float
    examples: np.ndarray
    predictions: np.ndarray
    crafting_correct: np.ndarray | None = None
    details: dict = dataclasses.field(default_factory=dict)


class AttackRunner:
    """Batches, seeds and compiles attack calls; the same seed gives the same outcome.

    Each call of an attack gets a stateless seed derived from the runner's seed, a stream
    name (for instance ``"PGD-40@0.3"``) and the batch index, so results do not depend on
    which other attacks ran before or on the batch order of a restarted run.

    Example:
    ```python
    import numpy as np
    from mi_keras.data import load_dataset
    from mi_keras.models import build_classifier

    test, info = load_dataset("digits", "test", batch_size=None, take=32)  # tiny: a smoke run
    x, y = (np.stack(part) for part in zip(*test.as_numpy_iterator()))
    model = build_classifier("small_cnn", info.image_shape, info.num_classes, padding="same")
    from mi_keras.attacks import PGD
    from mi_keras.evaluation import AttackRunner

    runner = AttackRunner(model, batch_size=250, seed=0)
    clean = runner.predict(x) == y
    outcome = runner.run(PGD(0.3, steps=40), x, y, stream="PGD-40@0.3")
    ```

    Args:
        target: the classifier the adversarial examples are scored on.
        batch_size: examples per attack call.
        seed: int seed of every random draw.
        jit_compile: compile the attack with XLA (pays on GPUs; slower on CPUs).
        progress: show a `keras.utils.Progbar` per attack.
    """

    def __init__(
        self,
        target,
        batch_size: int = 250,
        seed: int = 0,
        jit_compile: bool = False,
        progress: bool = True,
    ):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer; got {batch_size!r}.")
        if not isinstance(seed, int):
            raise ValueError(f"`seed` must be an int; got {seed!r}.")
        self.target = target
        self.batch_size = batch_size
        self.seed = seed
        self.jit_compile = jit_compile
        self.progress = progress
        self._predict = _predictor(target)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The target's predicted labels, int32 ``[n]``."""
        return np.concatenate([self._predict(tf.constant(batch)).numpy() for batch in self._batches(x)])

    def run(
        self,
        attack: Attack,
        x: np.ndarray,
        y: np.ndarray,
        stream: str,
        crafting_model=None,
        keep_examples: int = 0,
        label: str | None = None,
    ) -> AttackOutcome:
        """Crafts ``x_adv`` on ``crafting_model`` (the target when None), scores it on the target.

        Args:
            attack: any `Attack`.
            x: images, float32 ``[n, H, W, C]``.
            y: labels, int ``[n]``.
            stream: names this run in the seed derivation; use a distinct one per run.
            crafting_model: the model whose gradients or queries the attack uses (a
                surrogate for transfer attacks); None attacks the target itself.
            keep_examples: how many leading adversarial images to return.
            label: progress-bar title (``stream`` when None).
        """
        transfer = crafting_model is not None
        crafting_model = crafting_model if transfer else self.target
        base_seed = fold_seed(tf.constant([self.seed, 0], tf.int64), zlib.crc32(stream.encode()))
        if isinstance(attack, AutoAttack):
            return self._run_auto_attack(
                attack, x, y, base_seed, crafting_model, transfer, keep_examples, label or stream
            )
        craft = self._compiled(attack, crafting_model, x.shape[1:])
        predict_crafting = _predictor(crafting_model) if transfer else None
        progbar = self._progbar(len(x), label or stream)
        correct, examples, predictions, crafting_correct = [], [], [], []
        start = time.perf_counter()
        for index, (images, labels) in enumerate(zip(self._batches(x), self._batches(y), strict=True)):
            x_adv = craft(tf.constant(images), tf.constant(labels, tf.int32), fold_seed(base_seed, index))
            predicted = self._predict(x_adv).numpy()
            correct.append(predicted == labels)
            if transfer:
                crafting_correct.append(predict_crafting(x_adv).numpy() == labels)
            kept = sum(len(batch) for batch in examples)
            if kept < keep_examples:
                examples.append(x_adv.numpy()[: keep_examples - kept])
                predictions.append(predicted[: keep_examples - kept])
            if progbar is not None:
                progbar.add(len(images), [("accuracy", float(np.mean(np.concatenate(correct))))])
        seconds = time.perf_counter() - start
        shape = (0, *x.shape[1:])
        return AttackOutcome(
            correct=np.concatenate(correct),
            seconds=seconds,
            examples=np.concatenate(examples) if examples else np.zeros(shape, np.float32),
            predictions=np.concatenate(predictions) if predictions else np.zeros([0], np.int32),
            crafting_correct=np.concatenate(crafting_correct) if transfer else None,
        )

    def _run_auto_attack(self, attack, x, y, seed, crafting_model, transfer, keep_examples, label):
        """AutoAttack runs eagerly over the whole slice: each of its attacks then sees only the
        samples still robust (inside a `tf.function` every attack would run on every sample)."""
        progbar = self._progbar(len(attack.attacks), label)

        def report_progress(name, robust_accuracy, seconds):
            if progbar is not None:
                progbar.add(1, [("accuracy", robust_accuracy)])

        start = time.perf_counter()
        result = attack.run(crafting_model, x, y, seed=seed, callback=report_progress)
        predicted = self.predict(result.x_adv)
        seconds = time.perf_counter() - start
        crafting_correct = None
        if transfer:
            surrogate = AttackRunner(crafting_model, self.batch_size, self.seed, progress=False)
            crafting_correct = surrogate.predict(result.x_adv) == y
        return AttackOutcome(
            correct=predicted == y,
            seconds=seconds,
            examples=result.x_adv[:keep_examples],
            predictions=predicted[:keep_examples],
            crafting_correct=crafting_correct,
            details={
                "robust_accuracy_after": result.robust_accuracy_after,
                "seconds": result.seconds,
                "seed": list(result.seed),
            },
        )

    def _compiled(self, attack, crafting_model, image_shape):
        signature = [
            tf.TensorSpec([None, *image_shape], tf.float32),
            tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([2], tf.int64),
        ]
        # A partial (not a lambda) gives each compiled attack its own tracing statistics: one
        # trace per attack and eps is expected, not the retracing TensorFlow warns about.
        return tf.function(
            functools.partial(_craft, attack, crafting_model),
            input_signature=signature,
            jit_compile=self.jit_compile,
        )

    def _batches(self, values: np.ndarray):
        for begin in range(0, len(values), self.batch_size):
            yield values[begin : begin + self.batch_size]

    def _progbar(self, total: int, title: str):
        if not self.progress:
            return None
        print(title)
        return keras.utils.Progbar(total, stateful_metrics=["accuracy"])


def _craft(attack, crafting_model, images, labels, seed):
    return attack(crafting_model, images, labels, seed=seed)


def _predicted_labels(model, images):
    return tf.argmax(logits_of(model, images), -1, output_type=tf.int32)


def _predictor(model):
    """A compiled ``images -> predicted labels`` function."""
    return tf.function(functools.partial(_predicted_labels, model), reduce_retracing=True)
