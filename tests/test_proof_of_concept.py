"""The proof of concept (Fig. 2): the standard-MI probe, its command, and the MI probe's CLI."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from toy_models import tiny_probe_classifier

from mi_keras.attacks import FGSM, PGD
from mi_keras.evaluation import mi_probe
from mi_keras.evaluation.data_slice import DataSlice
from mi_keras.evaluation.standard_mi_probe import STANDARD_MEASUREMENTS, StandardMIProbe
from mi_keras.mi import MIEstimator
from pipeline.experiments import proof_of_concept


@pytest.fixture(scope="module")
def parts():
    keras.utils.set_random_seed(3)
    classifier = tiny_probe_classifier()
    estimator = MIEstimator.for_classifier(input_shape=(8, 8, 1), num_classes=4, units=16)
    x = np.random.default_rng(2).uniform(size=(20, 8, 8, 1)).astype("float32")
    y = np.argmax(classifier.predict(x, verbose=0), -1).astype("int32")
    return classifier, estimator, DataSlice(x, y, "uniform noise")


def test_probe_measures_the_three_standard_mi_values_and_offsets_the_worst_sample(parts):
    classifier, estimator, data = parts
    attacks = [FGSM(0.1, name="FGSM"), PGD(0.1, steps=3, random_start="none", name="PGD-3")]
    probe = StandardMIProbe(classifier, estimator, batch_size=10)
    summary = probe.run(attacks, data)

    # FGSM is deterministic: recompute the three values of the first batch directly.
    x, y = data.x[:10], data.y[:10]
    x_adv = attacks[0](classifier, x, y)
    logits, logits_adv = classifier(x, training=False), classifier(x_adv, training=False)
    per_sample = probe.measure(attacks[0], data)
    expected = {
        "mi_natural": estimator(x, logits),
        "mi_adversarial": estimator(x_adv, logits_adv),
        "mi_natural_to_adversarial": estimator(x, logits_adv),
    }
    for name, values in expected.items():
        np.testing.assert_allclose(per_sample[name][:10], values, rtol=1e-4, atol=1e-4)

    # The offset is the smallest per-sample value of every attack and measurement.
    smallest = min(
        float(probe.measure(attack, data)[name].min()) for attack in attacks for name in STANDARD_MEASUREMENTS
    )
    assert summary["offset"] == pytest.approx(smallest, abs=1e-5)
    for row in summary["attacks"]:
        for name in STANDARD_MEASUREMENTS:
            assert row["offset"][name] == pytest.approx(row["raw"][name] - smallest, abs=1e-5)
            assert row["offset"][name] >= -1e-6
    assert summary["attacks"][0]["raw"]["mi_natural"] == pytest.approx(
        float(np.mean(per_sample["mi_natural"])), abs=1e-5
    )


@pytest.mark.slow
def test_proof_of_concept_command_trains_and_writes_the_table_and_radar(tmp_path, capsys):
    out = tmp_path / "poc"
    code = proof_of_concept.main(
        [
            "--dataset", "digits", "--architecture", "small_cnn", "--option", "padding=same",
            "--epochs", "2", "--learning-rate", "0.05", "--estimator-epochs", "2",
            "--estimator-units", "32", "--estimator-learning-rate", "1e-3",
            "--batch-size", "32", "--n-examples", "48", "--eps", "0.1",
            "--attacks", "pgd10,fwa10", "--out", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    summary = json.loads((out / "standard_mi.json").read_text())
    assert [row["name"] for row in summary["attacks"]] == ["PGD-10", "FWA-10"]
    history = summary["setup"]["estimator_mi_per_epoch"]
    assert history[-1] > history[0]  # the estimator does maximise I(x; h(x))
    assert summary["clean_accuracy"] > 0.5  # the natural classifier learned
    assert (out / "standard_mi.png").stat().st_size > 5000
    assert (out / "classifier.keras").is_file() and (out / "estimator.keras").is_file()
    assert "| PGD-10 |" in capsys.readouterr().out


def test_mi_probe_command_line(parts, tmp_path, capsys):
    classifier, estimator, data = parts
    classifier.save(tmp_path / "classifier.keras")
    keras.saving.save_model(estimator, tmp_path / "natural.keras")
    keras.saving.save_model(estimator, tmp_path / "adversarial.keras")
    np.savez(tmp_path / "data.npz", x=data.x, y=data.y)
    code = mi_probe.main(
        [
            "--model", str(tmp_path / "classifier.keras"),
            "--natural-estimator", str(tmp_path / "natural.keras"),
            "--adversarial-estimator", str(tmp_path / "adversarial.keras"),
            "--reference-model", str(tmp_path / "classifier.keras"),
            "--npz", str(tmp_path / "data.npz"), "--attack", "fgsm", "--eps", "0.1",
            "--batch-size", "10", "--no-progress", "--out", str(tmp_path / "probe"),
        ]
    )  # fmt: skip
    assert code == 0
    summary = json.loads((tmp_path / "probe" / "mi_probe.json").read_text())
    assert summary["attack"]["name"] == "FGSM" and summary["n_examples"] == 20
    groups = summary["by_group"]
    assert groups["robust"]["count"] + groups["fooled"]["count"] == 20  # y = clean predictions
    printed = json.loads(capsys.readouterr().out)
    assert "natural_mi_natural" in printed["by_group"]["all"]
    # The reference is the probed model itself: its spread is the reference spread.
    assert printed["logit_controls"]["logit_scale"] == pytest.approx(printed["logit_controls"]["reference_logit_scale"])
    assert printed["logit_controls"] == summary["logit_controls"]
    bad_attack = ["--attack", "pgd7", "--eps", "0.1", "--npz", str(tmp_path / "data.npz")]
    with pytest.raises(SystemExit):
        mi_probe.main(["--model", "m.keras", "--natural-estimator", "a", "--adversarial-estimator", "b", *bad_attack])
    assert "Unknown --attack 'pgd7'" in capsys.readouterr().err
