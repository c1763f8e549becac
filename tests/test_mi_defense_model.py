"""MIDefenseModel, AdversarialModel and MIEstimatorTrainer: steps, counting, saving, errors."""

from __future__ import annotations

import collections

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import check_config_round_trip, check_saved_outputs

from mi_keras.attacks import PGD
from mi_keras.mi import LocalEncoder, MIEstimator
from mi_keras.models import AdversarialModel, MIDefenseModel, MIEstimatorTrainer

SHAPE = (8, 8, 1)
UNITS = 32


def make_classifier(num_classes: int = 10) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(SHAPE),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.Flatten(),
            keras.layers.Dense(num_classes),
        ]
    )


def make_estimator(num_classes: int = 10, **kwargs) -> MIEstimator:
    return MIEstimator.for_classifier(SHAPE, num_classes, units=UNITS, **kwargs)


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    return rng.random((32, *SHAPE), dtype=np.float32), rng.integers(0, 10, 32).astype(np.int32)


def make_model(**kwargs) -> MIDefenseModel:
    options = {"attack": PGD(0.1, steps=3, random_start="none"), "seed": 7, **kwargs}
    model = MIDefenseModel(make_classifier(), make_estimator(), make_estimator(), **options)
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    return model


def step_loss(model, x, y) -> dict:
    model.reset_metrics()
    return model.train_on_batch(x, y, return_dict=True)


def test_train_steps_lower_the_loss_on_a_fixed_batch(batch):
    x, y = batch
    model = make_model()
    first = step_loss(model, x, y)["loss"]
    for _ in range(15):
        last = step_loss(model, x, y)["loss"]
    assert last < first - 0.1


def test_estimators_stay_frozen(batch):
    x, y = batch
    model = make_model()
    before = [w.numpy().copy() for w in model.natural_estimator.weights + model.adversarial_estimator.weights]
    classifier_before = [w.numpy().copy() for w in model.classifier.trainable_weights]
    for _ in range(3):
        step_loss(model, x, y)
    after = [w.numpy() for w in model.natural_estimator.weights + model.adversarial_estimator.weights]
    assert all(np.array_equal(b, a) for b, a in zip(before, after)), "an estimator weight (or BN statistic) moved"
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(classifier_before, model.classifier.trainable_weights))


def test_selected_fraction_matches_numpy(batch):
    x, y = batch
    classifier = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(10)])
    attack = PGD(0.3, steps=5, random_start="none")
    model = MIDefenseModel(classifier, make_estimator(), make_estimator(), attack=attack)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    # Without BatchNorm or dropout, training-mode logits equal inference logits.
    clean = classifier.predict(x, verbose=0).argmax(-1)
    adversarial = classifier.predict(attack(classifier, x, y).numpy(), verbose=0).argmax(-1)
    expected = np.mean((clean == y) & (adversarial != y))
    assert expected > 0
    assert step_loss(model, x, y)["selected_fraction"] == pytest.approx(expected, abs=1e-6)


CALLS = collections.Counter()


class CountingClassifier(keras.Model):
    def __init__(self, inner, **kwargs):
        super().__init__(**kwargs)
        self.inner = inner

    def call(self, inputs, training=False):
        CALLS["classifier", bool(training)] += 1
        return self.inner(inputs, training=training)


class CountingLocalEncoder(LocalEncoder):
    def call(self, pattern, training=None):
        CALLS["local_encoder", id(self)] += 1
        return super().call(pattern, training=training)


def test_each_network_runs_once_per_step(batch):
    x, y = batch
    classifier = CountingClassifier(make_classifier())
    estimators = [MIEstimator(local_encoder=CountingLocalEncoder(UNITS), units=UNITS) for _ in range(2)]
    model = MIDefenseModel(classifier, *estimators, attack=PGD(0.1, steps=2))
    model.compile(optimizer=keras.optimizers.SGD(0.01), run_eagerly=True)
    model.train_on_batch(x[:8], y[:8])  # builds everything
    CALLS.clear()
    model.train_on_batch(x[:8], y[:8])
    assert CALLS["classifier", True] == 2  # h(x_adv) and h(x), in training mode
    assert CALLS["classifier", False] == 2  # the attack's 2 PGD steps, in inference mode
    for estimator in estimators:  # each local encoder exactly once
        assert CALLS["local_encoder", id(estimator.local_encoder)] == 1


def test_xla_step_matches_graph_step(batch):
    x, y = batch
    losses = []
    for jit_compile in (False, True):
        keras.utils.set_random_seed(3)
        model = make_model()
        model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=jit_compile)
        losses.append([step_loss(model, x, y)["loss"] for _ in range(2)])
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4)


def test_mixed_bfloat16_loss_is_close_to_float32(batch):
    x, y = batch
    keras.utils.set_random_seed(5)
    reference = make_model()
    weights = reference.get_weights()
    float32_loss = step_loss(reference, x, y)["loss"]
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        mixed = make_model()
        mixed.set_weights(weights)
        mixed_loss = step_loss(mixed, x, y)["loss"]
        assert mixed.classifier.layers[0].compute_dtype == "bfloat16"
    finally:
        keras.config.set_dtype_policy("float32")
    assert abs(mixed_loss - float32_loss) < 1e-2


def test_keras_format_round_trip(batch, tmp_path):
    x, y = batch
    model = make_model(base_loss="trades", lam=0.2, selection="batch_softmax")
    step_loss(model, x, y)
    check_config_round_trip(model)
    loaded = check_saved_outputs(model, [x], tmp_path / "model")  # weights too: the estimators'
    assert (loaded.base_loss.value, loaded.lam, loaded.selection.value) == ("trades", 0.2, "batch_softmax")
    # Optimizer state comes back too, so training resumes where it stopped.
    assert int(loaded.optimizer.iterations.numpy()) == int(model.optimizer.iterations.numpy()) == 1


def test_saved_model_predicts_in_a_fresh_process_without_mi_keras(batch, tmp_path):
    import json
    import subprocess
    import sys

    x, y = batch
    model = make_model()
    step_loss(model, x, y)
    export_dir = model.export_classifier(tmp_path / "exported" / "1", metadata={"eps": 0.1})
    np.save(tmp_path / "x.npy", x[:4])
    script = (
        "import json, sys, numpy as np, tensorflow as tf\n"
        f"m = tf.saved_model.load({str(export_dir)!r})\n"
        f"out = m.signatures['serving_default'](images=tf.constant(np.load({str(tmp_path / 'x.npy')!r})))\n"
        "assert 'mi_keras' not in sys.modules\n"
        "print(json.dumps({k: v.numpy().tolist() for k, v in out.items()}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    outputs = json.loads(result.stdout.strip().splitlines()[-1])
    expected = model.predict(x[:4], verbose=0)
    np.testing.assert_allclose(outputs["logits"], expected, atol=1e-5)
    np.testing.assert_array_equal(outputs["class_ids"], expected.argmax(-1))
    np.testing.assert_allclose(np.sum(outputs["probabilities"], -1), 1.0, atol=1e-5)


@pytest.mark.parametrize("base_loss", ["ce", "trades", "mart"])
def test_adversarial_model_lowers_its_loss(batch, base_loss):
    x, y = batch
    model = AdversarialModel(make_classifier(), attack=PGD(0.1, steps=3, random_start="none"), base_loss=base_loss)
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    first = step_loss(model, x, y)["loss"]
    for _ in range(10):
        last = step_loss(model, x, y)["loss"]
    assert last < first


@pytest.mark.parametrize("objective", ["contrastive", "mim"])
def test_estimator_trainer_trains_estimators_only(batch, objective):
    x, y = batch
    classifier = make_classifier()
    trainer = MIEstimatorTrainer(classifier, make_estimator(), make_estimator(), PGD(0.1, steps=2), objective=objective)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-2))
    classifier_before = [w.numpy().copy() for w in classifier.weights]
    estimator_before = [w.numpy().copy() for w in trainer.natural_estimator.trainable_weights]
    history = trainer.fit(x, y, batch_size=16, epochs=2, verbose=0).history
    assert {
        "loss",
        "natural_mi_robust",
        "natural_mi_fooled",
        "adversarial_mi_robust",
        "adversarial_mi_fooled",
    } <= set(history)
    assert all(np.isfinite(history["loss"]))
    assert all(np.array_equal(b, w.numpy()) for b, w in zip(classifier_before, classifier.weights))
    assert any(
        not np.array_equal(b, w.numpy()) for b, w in zip(estimator_before, trainer.natural_estimator.trainable_weights)
    )


def test_mim_objective_raises_mi_on_selected_samples(batch):
    x, y = batch
    trainer = MIEstimatorTrainer(
        make_classifier(), make_estimator(), make_estimator(), PGD(0.1, steps=2), objective="mim"
    )
    trainer.compile(optimizer=keras.optimizers.Adam(3e-3))
    losses = trainer.fit(x, y, batch_size=32, epochs=15, verbose=0).history["loss"]
    assert losses[-1] < losses[0]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"natural_estimator": "wrong"}, "natural_estimator"),
        ({"base_loss": "hinge"}, "base_loss"),
        ({"selection": "random"}, "selection"),
        ({"alpha": -1.0}, "alpha"),
        ({"attack": "pgd"}, "attack"),
        ({"adversarial_estimator": MIEstimator.for_classifier(SHAPE, 5, units=UNITS)}, "5 logits"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs, message):
    arguments = {
        "classifier": make_classifier(),
        "natural_estimator": make_estimator(),
        "adversarial_estimator": make_estimator(),
        "attack": PGD(0.1),
        **kwargs,
    }
    with pytest.raises(ValueError, match=message):
        MIDefenseModel(**arguments)


def test_a_batch_of_one_sample_fails_with_a_clear_message(batch):
    x, y = batch
    model = make_model()
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="at least 2|>= 2"):
        model.train_on_batch(x[:1], y[:1])


@pytest.mark.parametrize("flags", [[], ["--recompute-clean"]])
def test_same_update_under_mirrored_strategy(tmp_path, flags):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parent / "scripts" / "mirrored_step.py"
    result = subprocess.run([sys.executable, str(script), *flags], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "max weight difference" in result.stdout


@pytest.mark.parametrize("prebuilt_estimators", [False, True])
def test_right_after_construction_only_the_classifier_is_trainable(prebuilt_estimators):
    classifier = make_classifier()
    estimators = [make_estimator(), make_estimator()]
    if prebuilt_estimators:
        for estimator in estimators:
            estimator(np.zeros((2, *SHAPE), "float32"), np.zeros((2, 10), "float32"))
    model = MIDefenseModel(classifier, *estimators, attack=PGD(0.1, steps=1))
    # Keras builds the optimizer over these: an estimator weight here would be trained.
    assert [id(variable) for variable in model.trainable_variables] == [
        id(variable) for variable in classifier.trainable_variables
    ]
    assert all(estimator.weights and not estimator.trainable_weights for estimator in estimators)


def test_mi_loss_has_a_finite_difference_checked_gradient_through_the_clean_logits(batch):
    x, y = batch
    model = make_model()
    rng = np.random.default_rng(1)
    # Every sample is correct on x by a wide margin; the first half is fooled on x_adv.
    clean_logits = 0.5 * rng.standard_normal((32, 10)) + 3.0 * np.eye(10)[y]
    fooled = np.arange(32) < 16
    adversarial_logits = 0.5 * rng.standard_normal((32, 10)) + 3.0 * np.eye(10)[np.where(fooled, (y + 1) % 10, y)]
    x_adv = np.clip(x + 0.1 * np.sign(rng.standard_normal(x.shape)), 0.0, 1.0).astype("float32")
    context = model._gradient_free_inputs(tf.constant(x), tf.constant(x_adv))
    adversarial_logits = tf.constant(adversarial_logits, tf.float32)

    def mi_loss(clean):
        loss, _, selected = model._mi_loss(tf.constant(y), clean, adversarial_logits, context)
        return loss, tf.reduce_mean(selected)

    clean = tf.constant(clean_logits, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(clean)
        loss, selected_fraction = mi_loss(clean)
    gradient = tape.gradient(loss, clean)
    assert float(selected_fraction) == 0.5
    assert gradient is not None and float(tf.norm(gradient)) > 1e-4, "the MI loss does not train h through h(x)"
    for direction in (gradient / tf.norm(gradient), tf.constant(rng.standard_normal((32, 10)), tf.float32)):
        step = 1e-3
        numeric = (float(mi_loss(clean + step * direction)[0]) - float(mi_loss(clean - step * direction)[0])) / (
            2 * step
        )
        analytic = float(tf.reduce_sum(gradient * direction))
        assert numeric == pytest.approx(analytic, rel=0.02, abs=1e-4)
