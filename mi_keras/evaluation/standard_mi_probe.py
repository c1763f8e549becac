"""The standard-MI probe of the paper's proof of concept (Fig. 2, App. B).

One estimator of the standard MI ``I(input; h(input))`` (trained by MI maximisation on
natural samples) measures, per attack:

- ``I(x; h(x))``: natural sample, natural output;
- ``I(x_adv; h(x_adv))``: adversarial sample, adversarial output;
- ``I(x; h(x_adv))``: natural sample, adversarial output.

The paper's message: the standard MI of adversarial samples is below that of natural
samples but well above the MI between the natural image and the adversarial output; the gap
is read as the adversarial pattern's share. Values are DV estimates in nats, reported raw and
offset by the smallest per-sample value over every attack and measurement, so that the worst
case is 0 (the paper's figure does the same, then averages).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from mi_keras.attacks.attack import Attack, logits_of
from mi_keras.evaluation.attack_runner import AttackRunner
from mi_keras.evaluation.data_slice import DataSlice
from mi_keras.mi.bounds import batch_bounds, scoring_batch_size

STANDARD_MEASUREMENTS = {
    "mi_natural": "I(x; h(x))",
    "mi_adversarial": "I(x_adv; h(x_adv))",
    "mi_natural_to_adversarial": "I(x; h(x_adv))",
}


class StandardMIProbe:
    """Measures one standard-MI estimator on the natural and adversarial samples of attacks.

    Example:
    ```python
    import numpy as np
    from mi_keras.data import load_dataset
    from mi_keras.models import build_classifier

    test, info = load_dataset("digits", "test", batch_size=None, take=32)  # tiny: a smoke run
    x, y = (np.stack(part) for part in zip(*test.as_numpy_iterator()))
    model = build_classifier("small_cnn", info.image_shape, info.num_classes, padding="same")
    from mi_keras.attacks import FWA, PGD
    from mi_keras.evaluation.standard_mi_probe import StandardMIProbe
    from mi_keras.mi import MIEstimator

    estimator = MIEstimator.for_classifier((8, 8, 1), 10, units=16)  # in practice trained on natural_classifier
    probe = StandardMIProbe(model, estimator, batch_size=250)
    summary = probe.run([PGD(8 / 255, steps=10), FWA(8 / 255, steps=4)], (x, y))  # the paper: FWA-40
    print(StandardMIProbe.to_markdown(summary))
    StandardMIProbe.save(summary, "reports/proof_of_concept")  # .json, .md, radar .png
    ```

    Paper: Zhou et al., "Improving Adversarial Robustness via Mutual Information
    Estimation", ICML 2022, Fig. 2 and App. B.

    Args:
        classifier: the target model (returns logits); a natural (non-robust) one in the paper.
        estimator: the `MIEstimator` of ``I(input; h(input))``.
        batch_size: samples per attack and estimator call (>= 2: the DV bound needs
            in-batch negatives).
        seed: seed of the attacks' random draws.
        progress: show the attacks' progress bars.
    """

    def __init__(self, classifier, estimator, batch_size: int = 256, seed: int = 0, progress: bool = False):
        self.classifier = classifier
        self.estimator = estimator
        self.batch_size = scoring_batch_size(batch_size)
        self.runner = AttackRunner(classifier, batch_size, seed, progress=progress)
        self._step = tf.function(self._measure, reduce_retracing=True)

    def _measure(self, x, x_adv):
        logits = logits_of(self.classifier, x)
        logits_adv = logits_of(self.classifier, x_adv)
        features = self.estimator.encode(x, training=False)
        features_adv = self.estimator.encode(x_adv, training=False)
        return {
            "mi_natural": self.estimator.score(features, logits, training=False),
            "mi_adversarial": self.estimator.score(features_adv, logits_adv, training=False),
            "mi_natural_to_adversarial": self.estimator.score(features, logits_adv, training=False),
        }

    def measure(self, attack: Attack, data: DataSlice) -> dict[str, np.ndarray]:
        """Per-sample arrays of the three measurements and ``correct_adversarial``."""
        outcome = self.runner.run(attack, data.x, data.y, stream=f"standard_mi/{attack.name}", keep_examples=len(data))
        columns: dict[str, list[np.ndarray]] = {}
        for begin, end in batch_bounds(len(data), self.batch_size):
            values = self._step(tf.constant(data.x[begin:end]), tf.constant(outcome.examples[begin:end]))
            for key, value in values.items():
                columns.setdefault(key, []).append(value.numpy())
        return {
            **{key: np.concatenate(parts) for key, parts in columns.items()},
            "correct_adversarial": outcome.correct,
        }

    def run(self, attacks: Sequence[Attack], data, n_examples: int | None = None) -> dict[str, Any]:
        """The JSON-ready summary: raw and offset means per attack and measurement."""
        data = DataSlice.from_source(data, n_examples, minimum_examples=2)
        if not attacks:
            raise ValueError("`attacks` names no attack.")
        clean_correct = self.runner.predict(data.x) == data.y
        per_attack = {attack.name: (attack, self.measure(attack, data)) for attack in attacks}
        offset = min(float(values[name].min()) for _, values in per_attack.values() for name in STANDARD_MEASUREMENTS)
        rows = []
        for name, (attack, values) in per_attack.items():
            raw = {key: float(values[key].mean()) for key in STANDARD_MEASUREMENTS}
            rows.append(
                {
                    "name": name,
                    "config": attack.get_config(),
                    "robust_accuracy": float(np.mean(clean_correct & values["correct_adversarial"])),
                    "raw": raw,
                    "offset": {key: value - offset for key, value in raw.items()},
                }
            )
        return {
            "data": data.describe(),
            "n_examples": len(data),
            "clean_accuracy": float(np.mean(clean_correct)),
            "labels": dict(STANDARD_MEASUREMENTS),
            "offset": offset,
            "attacks": rows,
        }

    @staticmethod
    def to_markdown(summary: dict[str, Any]) -> str:
        """The table of the figure: offset means (raw means in parentheses)."""
        labels = summary["labels"]
        lines = [
            f"Standard MI on {summary['n_examples']} examples (clean accuracy "
            f"{100 * summary['clean_accuracy']:.2f}%): means minus the smallest per-sample "
            f"value ({summary['offset']:.4f} nats), so that the worst sample is 0; raw DV means "
            "in parentheses.",
            "",
            "| attack | robust acc. (%) | " + " | ".join(labels.values()) + " |",
            "|---" * (len(labels) + 2) + "|",
        ]
        for row in summary["attacks"]:
            cells = [f"{row['offset'][key]:.3f} ({row['raw'][key]:.3f})" for key in labels]
            lines.append(f"| {row['name']} | {100 * row['robust_accuracy']:.2f} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    @staticmethod
    def save(summary: dict[str, Any], directory: str | os.PathLike) -> dict[str, str]:
        """Writes ``standard_mi.json``, ``standard_mi.md`` and the radar ``standard_mi.png``."""
        from mi_keras.evaluation.plots import plot_standard_mi_radar

        os.makedirs(directory, exist_ok=True)
        paths = {name: os.path.join(directory, f"standard_mi.{name}") for name in ("json", "md", "png")}
        with open(paths["json"], "w") as file:
            json.dump(summary, file, indent=2, allow_nan=False)
        with open(paths["md"], "w") as file:
            file.write(StandardMIProbe.to_markdown(summary))
        plot_standard_mi_radar(summary, paths["png"])
        return paths
