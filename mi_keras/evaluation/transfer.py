"""Black-box transfer evaluation: adversarial examples crafted on a surrogate, scored on a target.

The paper's Tables 2, 5 and 6 craft PGD-40, AutoAttack, FWA-40 and TI-DIM (L-inf) or PGD-40,
CW and DDN (L2) on an adversarially trained VGG-19 and report the target's accuracy. The
target's gradients are never read, so a defense that only masks gradients gains nothing here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    import numpy as np
    from mi_keras.data import load_dataset
    from mi_keras.models import build_classifier

    test, info = load_dataset("digits", "test", batch_size=None, take=32)  # tiny: a smoke run
    x, y = (np.stack(part) for part in zip(*test.as_numpy_iterator()))
    model = build_classifier("small_cnn", info.image_shape, info.num_classes, padding="same")
    from mi_keras.attacks import PGD
    from mi_keras.evaluation import evaluate_transfer

    surrogate = build_classifier("small_cnn", info.image_shape, info.num_classes, padding="same")
    summary = evaluate_transfer(
        surrogate, model, (x, y),  # models, .keras files or SavedModel folders
        attack=PGD(8 / 255, steps=40, random_start="uniform"), n_examples=32, progress=False,
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
    data = DataSlice.from_source(data, n_examples, description)
    runner = AttackRunner(target, batch_size=batch_size, seed=seed, progress=progress)
    target_clean = runner.predict(data.x) == data.y
    surrogate_clean = AttackRunner(surrogate, batch_size=batch_size, progress=False).predict(data.x) == data.y
    outcome = runner.run(
        attack,
        data.x,
        data.y,
        stream=_stream(attack),
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
        "transfer_rate": (float(transferred.sum() / fooled_surrogate.sum()) if fooled_surrogate.any() else None),
        "n_fooled_surrogate": int(fooled_surrogate.sum()),
        "seconds": outcome.seconds,
    }


def transfer_table(
    surrogate,
    targets: Mapping[str, Any],
    data,
    attacks: Sequence[Attack],
    n_examples: int | None = None,
    batch_size: int = 250,
    seed: int = 0,
    progress: bool = True,
    description: str | None = None,
) -> dict[str, Any]:
    """The paper's black-box table: each attack crafted once on ``surrogate``, every target
    scored on the same adversarial examples.

    A cell is the target's robust accuracy: correct on ``x`` and on the transferred
    ``x_adv`` (as in `RobustnessSuite`); ``None`` is its clean accuracy.

    Example:
    ```python
    import numpy as np
    from mi_keras.data import load_dataset
    from mi_keras.models import build_classifier

    test, info = load_dataset("digits", "test", batch_size=None, take=32)  # tiny: a smoke run
    x, y = (np.stack(part) for part in zip(*test.as_numpy_iterator()))
    model = build_classifier("small_cnn", info.image_shape, info.num_classes, padding="same")
    from mi_keras.evaluation import AttackSpec
    from mi_keras.evaluation.transfer import transfer_table, transfer_table_markdown

    surrogate = build_classifier("small_cnn", info.image_shape, info.num_classes, padding="same")
    table = transfer_table(
        surrogate, {"Standard AT": model, "MIAT": model}, (x, y),  # models or their .keras files
        attacks=[AttackSpec.PGD40.build(8 / 255, "Linf"), AttackSpec.FWA40.build(8 / 255, "Linf")], progress=False,
    )
    print(transfer_table_markdown(table))
    ```

    Args:
        surrogate: the model attacked (Keras model, ``.keras`` file or SavedModel).
        targets: label -> model scored (same kinds), in row order.
        data: a ``(x, y)`` pair, a `tf.data.Dataset` or a `DataSlice`.
        attacks: the attacks, in column order.
        n_examples: how many leading examples (all when None).
        batch_size: examples per attack call.
        seed: seed of the attacks' random draws.
        progress: show progress bars.
        description: what the data is.

    Returns:
        A JSON-ready dict: ``columns`` (``"None"`` then the attack names), ``rows`` (label ->
        column -> accuracy), ``surrogate_white_box`` (the surrogate's own robust accuracy
        per attack), the attack configs, the models' and the data's descriptions, seconds.
    """
    if not targets:
        raise ValueError("`targets` names no model to score.")
    if not attacks:
        raise ValueError("`attacks` names no attack to craft.")
    surrogate = LoadedClassifier.load(surrogate)
    data = DataSlice.from_source(data, n_examples, description)
    runner = AttackRunner(surrogate, batch_size=batch_size, seed=seed, progress=progress)
    scorers = {
        label: AttackRunner(LoadedClassifier.load(model), batch_size=batch_size, progress=False)
        for label, model in targets.items()
    }
    clean = {label: scorer.predict(data.x) == data.y for label, scorer in scorers.items()}
    surrogate_clean = runner.predict(data.x) == data.y
    rows = {label: {"None": float(np.mean(correct))} for label, correct in clean.items()}
    white_box = {"None": float(np.mean(surrogate_clean))}
    seconds = {}
    for attack in attacks:
        outcome = runner.run(
            attack,
            data.x,
            data.y,
            stream=_stream(attack),
            keep_examples=len(data),
            label=f"{attack.name} on the surrogate",
        )
        for label, scorer in scorers.items():
            survived = clean[label] & (scorer.predict(outcome.examples) == data.y)
            rows[label][attack.name] = float(np.mean(survived))
        white_box[attack.name] = float(np.mean(surrogate_clean & outcome.correct))
        seconds[attack.name] = outcome.seconds
    return {
        "surrogate": surrogate.describe(),
        "targets": {label: scorer.target.describe() for label, scorer in scorers.items()},
        "data": data.describe(),
        "seed": seed,
        "attacks": [{"name": a.name, "class": type(a).__name__, **a.get_config()} for a in attacks],
        "columns": ["None", *(attack.name for attack in attacks)],
        "rows": rows,
        "surrogate_white_box": white_box,
        "seconds": seconds,
    }


def transfer_table_markdown(table: dict[str, Any]) -> str:
    """The table as the paper lays it out: one row per defense, accuracies in %."""
    columns = table["columns"]
    lines = [
        f"Black-box transfer from {table['surrogate']['name']} on {table['data']['n_examples']} "
        "examples: robust accuracy (%) of each target on the surrogate's adversarial examples.",
        "",
        "| defense | " + " | ".join(columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for label, cells in [*table["rows"].items(), ("(surrogate, white-box)", table["surrogate_white_box"])]:
        lines.append(f"| {label} | " + " | ".join(f"{100 * cells[c]:.2f}" for c in columns) + " |")
    return "\n".join(lines) + "\n"


def _stream(attack: Attack) -> str:
    """The attack's random stream, shared by this module's two functions so that they draw
    alike (the robustness suite's transfer column uses its own stream)."""
    return f"transfer/{attack.name}@{attack.eps!r}"
