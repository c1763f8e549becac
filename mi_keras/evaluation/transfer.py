"""Black-box transfer evaluation: adversarial examples crafted on a surrogate, scored on a target.

The paper's Tables 2, 5 and 6 craft PGD-40, AutoAttack, FWA-40 and TI-DIM (L-inf) or PGD-40,
CW and DDN (L2) on an adversarially trained VGG-19 and report the target's accuracy. The
target's gradients are never read, so a defense that only masks gradients gains nothing here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mi_keras.attacks.attack import Attack
from mi_keras.evaluation.attack_runner import AttackRunner
from mi_keras.evaluation.data_slice import DataSlice
from mi_keras.evaluation.loaded_classifier import LoadedClassifier


def evaluate_transfer(
    surrogate,
    target,
    data,
    attack: Attack,
    n_examples: int | None = None,
    batch_size: int = 250,
    seed: int = 0,
    progress: bool = True,
    description: str | None = None,
) -> dict[str, Any]:
    """Crafts ``attack`` on ``surrogate`` and measures how well it transfers to ``target``.

    Example:
    ```python
    summary = evaluate_transfer(
        "saved_models/vgg19_at/1", "saved_models/miat/1", (x_test, y_test),
        attack=PGD(8 / 255, steps=40, random_start="uniform"), n_examples=1000,
    )
    summary["target_robust_accuracy"]  # correct on x and on the transferred x_adv
    ```

    Args:
        surrogate: the model attacked (Keras model, ``.keras`` file or SavedModel).
        target: the model scored (same kinds).
        data: a ``(x, y)`` pair, a `tf.data.Dataset` or a `DataSlice`.
        attack: any `Attack`; it only ever calls the surrogate.
        n_examples: how many leading examples (all when None).
        batch_size: examples per attack call.
        seed: seed of the attack's random draws.
        progress: show a progress bar.
        description: what the data is.

    Returns:
        A JSON-ready dict: the attack config, both models' descriptions, the data slice,
        both clean accuracies, ``surrogate_robust_accuracy`` (white-box, on the surrogate),
        ``target_robust_accuracy`` (black-box), ``transfer_rate`` (of the samples both models
        classify correctly and the attack fools on the surrogate, the fraction that also
        fool the target; None when the attack fooled none) and ``seconds``.
    """
    surrogate = LoadedClassifier.load(surrogate)
    target = LoadedClassifier.load(target)
    data = (
        data
        if isinstance(data, DataSlice)
        else DataSlice.from_source(data, n_examples, description)
    )
    runner = AttackRunner(target, batch_size=batch_size, seed=seed, progress=progress)
    target_clean = runner.predict(data.x) == data.y
    surrogate_clean = (
        AttackRunner(surrogate, batch_size=batch_size, progress=False).predict(data.x) == data.y
    )
    outcome = runner.run(
        attack,
        data.x,
        data.y,
        stream=f"transfer/{attack.name}@{attack.eps!r}",
        crafting_model=surrogate,
        label=f"transfer {attack.name}, eps {attack.eps:g}",
    )
    surrogate_robust = surrogate_clean & outcome.crafting_correct
    target_robust = target_clean & outcome.correct
    fooled_surrogate = target_clean & surrogate_clean & ~outcome.crafting_correct
    transferred = fooled_surrogate & ~outcome.correct
    return {
        "attack": {"class": type(attack).__name__, **attack.get_config()},
        "surrogate": surrogate.describe(),
        "target": target.describe(),
        "data": data.describe(),
        "seed": seed,
        "batch_size": batch_size,
        "surrogate_clean_accuracy": float(np.mean(surrogate_clean)),
        "target_clean_accuracy": float(np.mean(target_clean)),
        "surrogate_robust_accuracy": float(np.mean(surrogate_robust)),
        "target_robust_accuracy": float(np.mean(target_robust)),
        "transfer_rate": (
            float(transferred.sum() / fooled_surrogate.sum()) if fooled_surrogate.any() else None
        ),
        "n_fooled_surrogate": int(fooled_surrogate.sum()),
        "seconds": outcome.seconds,
    }
