"""PGD, FGSM and CW-inf: ball and box constraints, strength, seeding, XLA, config, validation.

The strength tests attack a tiny CNN trained for a few epochs on scikit-learn's 8x8 digits
(bundled with scikit-learn, so no download): an untrained model would make "the attack
raises the loss" nearly vacuous.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import check_config_round_trip
from sklearn.datasets import load_digits

from mi_keras.attacks import FGSM, PGD, CWLinf
from mi_keras.attacks.attack import Attack
from mi_keras.attacks.geometry import random_start
from mi_keras.enums import RandomStart, ThreatModel
from mi_keras.objectives import cross_entropy, margin

TOLERANCE = 1e-6
EPS = {ThreatModel.LINF: 0.1, ThreatModel.L2: 1.0}  # FWA has its own tests
NUM_TRAIN = 1500
BATCH = 64


def tiny_cnn(dropout_rate: float | None = None) -> keras.Model:
    """Conv(8, 3x3) -> Flatten -> [Dropout] -> Dense(10) logits, for 8x8x1 inputs."""
    inputs = keras.Input((8, 8, 1))
    hidden = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(inputs)
    hidden = keras.layers.Flatten()(hidden)
    if dropout_rate is not None:
        hidden = keras.layers.Dropout(dropout_rate)(hidden)
    logits = keras.layers.Dense(10, name="logits")(hidden)
    return keras.Model(inputs, logits)


@pytest.fixture(scope="module")
def digits():
    """Digits as NHWC float32 in [0, 1] (values / 16) with int32 labels."""
    data = load_digits()
    images = (data.images / 16.0).astype("float32")[..., None]
    return images, data.target.astype("int32")


@pytest.fixture(scope="module")
def trained(digits):
    """``(model, x, y)``: the CNN trained 5 epochs, and a held-out batch of 64."""
    images, labels = digits
    keras.utils.set_random_seed(0)
    model = tiny_cnn()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(images[:NUM_TRAIN], labels[:NUM_TRAIN], epochs=5, batch_size=64, verbose=0)
    x = tf.constant(images[NUM_TRAIN : NUM_TRAIN + BATCH])
    y = tf.constant(labels[NUM_TRAIN : NUM_TRAIN + BATCH])
    accuracy = np.mean(np.argmax(model(x).numpy(), -1) == y.numpy())
    assert accuracy > 0.7, f"the toy model did not train (held-out accuracy {accuracy:.2f})"
    return model, x, y


def cross_entropy_of(model, x, y) -> np.ndarray:
    return cross_entropy(tf.cast(model(x, training=False), tf.float32), y).numpy()


def assert_valid(x_adv, x, eps: float, threat_model: ThreatModel):
    """``x_adv`` is float32, in [0, 1] and within eps of ``x`` in the threat-model norm."""
    assert x_adv.dtype == tf.float32
    x_adv, x = np.asarray(x_adv, np.float64), np.asarray(x, np.float64)
    assert x_adv.min() >= -TOLERANCE and x_adv.max() <= 1.0 + TOLERANCE
    delta = (x_adv - x).reshape(len(x), -1)
    if threat_model == ThreatModel.LINF:
        norms = np.abs(delta).max(axis=1)
    else:
        norms = np.linalg.norm(delta, axis=1)
    assert norms.max() <= eps + TOLERANCE, f"perturbation norm {norms.max()} > eps {eps}"
    # The attack must actually move: a no-op would satisfy the constraints trivially.
    assert norms.mean() > 0.25 * eps


@pytest.mark.parametrize("threat_model", list(EPS))  # the norm balls
@pytest.mark.parametrize("start", list(RandomStart))
def test_pgd_stays_in_ball_and_box(trained, threat_model, start):
    model, x, y = trained
    eps = EPS[threat_model]
    attack = PGD(eps, steps=5, threat_model=threat_model, random_start=start, seed=1)
    assert_valid(attack(model, x, y), x, eps, threat_model)


@pytest.mark.parametrize("threat_model", list(EPS))  # the norm balls
def test_fgsm_stays_in_ball_and_box_and_raises_loss(trained, threat_model):
    model, x, y = trained
    eps = EPS[threat_model]
    x_adv = FGSM(eps, threat_model=threat_model)(model, x, y)
    assert_valid(x_adv, x, eps, threat_model)
    assert cross_entropy_of(model, x_adv, y).mean() > cross_entropy_of(model, x, y).mean()


@pytest.mark.parametrize("threat_model", list(EPS))  # the norm balls
def test_fgsm_takes_one_full_step_along_the_gradient(trained, threat_model):
    """Away from the box walls FGSM is ``x + eps * sign(g)`` (L-inf) or ``x + eps * g / |g|`` (L2)."""
    model, x, y = trained
    x = 0.25 + 0.5 * x  # in [0.25, 0.75]: no box clipping for these eps
    eps = {ThreatModel.LINF: 0.1, ThreatModel.L2: 0.2}[threat_model]
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(cross_entropy(model(x, training=False), y))
    gradient = tape.gradient(loss, x).numpy().reshape(len(x), -1)
    delta = (FGSM(eps, threat_model=threat_model)(model, x, y) - x).numpy().reshape(len(x), -1)
    if threat_model == ThreatModel.LINF:
        expected = eps * np.sign(gradient)
    else:
        expected = eps * gradient / np.linalg.norm(gradient, axis=1, keepdims=True)
    np.testing.assert_allclose(delta, expected, atol=1e-6)


@pytest.mark.parametrize("threat_model", list(EPS))  # the norm balls
def test_random_starts_have_the_documented_distribution(threat_model):
    """Uniform: uniform in the ball; normal: x + 0.001 N(0, I). ``x = 0.5`` avoids the box."""
    x = tf.fill([1000, 8, 8, 1], 0.5)
    eps = EPS[threat_model]
    seed = tf.constant([0, 1])
    uniform = random_start(x, eps, threat_model, RandomStart.UNIFORM, seed) - x
    uniform = uniform.numpy().reshape(1000, -1)
    if threat_model == ThreatModel.LINF:
        # Each coordinate is U(-eps, eps): mean |delta| = eps / 2, quantiles spread evenly.
        np.testing.assert_allclose(np.abs(uniform).mean(), eps / 2, rtol=0.02)
        np.testing.assert_allclose(np.mean(np.abs(uniform) < eps / 4), 0.25, atol=0.01)
    else:
        # The radius is eps * U^(1/d): half the samples lie inside eps * 0.5^(1/d).
        radius = np.linalg.norm(uniform, axis=1)
        assert radius.max() <= eps + TOLERANCE
        np.testing.assert_allclose(np.mean(radius < eps * 0.5 ** (1 / 64)), 0.5, atol=0.06)
    normal = (random_start(x, eps, threat_model, RandomStart.NORMAL, seed) - x).numpy()
    np.testing.assert_allclose(normal.std(), 0.001, rtol=0.02)
    np.testing.assert_array_equal(random_start(x, eps, threat_model, RandomStart.NONE, seed), x)


@pytest.mark.parametrize("threat_model", list(EPS))  # the norm balls
def test_pgd_raises_the_loss(trained, threat_model):
    model, x, y = trained
    attack = PGD(EPS[threat_model], steps=10, threat_model=threat_model, random_start="none")
    clean = cross_entropy_of(model, x, y)
    adversarial = cross_entropy_of(model, attack(model, x, y), y)
    assert adversarial.mean() > 1.5 * clean.mean()
    assert np.mean(adversarial > clean) > 0.9


def test_more_steps_never_lower_the_loss(trained):
    model, x, y = trained
    losses = [
        cross_entropy_of(model, PGD(0.1, step_size=0.025, steps=steps, random_start="none")(model, x, y), y).mean()
        for steps in (1, 5, 20)
    ]
    assert losses[0] < losses[1], losses
    assert losses[2] >= losses[1] - 1e-4, losses


def test_cw_linf_increases_the_margin(trained):
    model, x, y = trained
    x_adv = CWLinf(0.1, step_size=0.025, steps=10, seed=0)(model, x, y)
    assert_valid(x_adv, x, 0.1, ThreatModel.LINF)
    clean = margin(model(x), y).numpy()
    adversarial = margin(model(x_adv), y).numpy()
    assert adversarial.mean() > clean.mean() + 1.0
    assert np.mean(adversarial > clean) > 0.9


def test_restarts_never_weaken_the_attack(trained):
    """Per sample the kept run is at least as good as run 0 (fooled first, then higher loss)."""
    model, x, y = trained
    settings = dict(eps=0.05, step_size=0.02, steps=2, random_start="uniform", seed=5)
    single = PGD(**settings, restarts=1)(model, x, y)
    several = PGD(**settings, restarts=4)(model, x, y)

    def fooled_and_loss(x_adv):
        logits = model(x_adv)
        return np.argmax(logits.numpy(), -1) != y.numpy(), cross_entropy(logits, y).numpy()

    single_fooled, single_loss = fooled_and_loss(single)
    several_fooled, several_loss = fooled_and_loss(several)
    assert np.all(several_fooled[single_fooled])
    same = several_fooled == single_fooled
    assert np.all(several_loss[same] >= single_loss[same] - 1e-5)
    # Restarts must have changed something, or this test would not test them.
    assert not np.allclose(single.numpy(), several.numpy())


@pytest.mark.parametrize("start", [RandomStart.UNIFORM, RandomStart.NORMAL])
def test_seeds_are_stateless(trained, start):
    model, x, y = trained
    attack = PGD(0.1, step_size=0.01, steps=1, random_start=start, seed=7)
    np.testing.assert_array_equal(attack(model, x, y), attack(model, x, y))
    other = PGD(0.1, step_size=0.01, steps=1, random_start=start, seed=8)(model, x, y)
    assert not np.allclose(attack(model, x, y), other)
    # A seed tensor passed to the call overrides the constructor's.
    first = attack(model, x, y, seed=tf.constant([1, 2]))
    np.testing.assert_array_equal(first, attack(model, x, y, seed=tf.constant([1, 2])))
    assert not np.allclose(first, attack(model, x, y, seed=tf.constant([1, 3])))


@pytest.mark.parametrize("threat_model", list(EPS))  # the norm balls
def test_random_start_depends_on_the_seed(threat_model):
    x = tf.fill([4, 8, 8, 1], 0.5)
    eps = EPS[threat_model]

    def start(seed):
        return random_start(x, eps, threat_model, RandomStart.UNIFORM, tf.constant(seed)).numpy()

    np.testing.assert_array_equal(start([3, 4]), start([3, 4]))
    assert not np.allclose(start([3, 4]), start([3, 5]))
    assert_valid(start([3, 4]), x, eps, threat_model)


@pytest.mark.parametrize("threat_model", list(EPS))  # the norm balls
def test_compiles_with_xla_and_matches_eager(trained, threat_model):
    """Sign steps (L-inf) match to rounding; L2 steps follow the gradient continuously, so
    XLA's different rounding drifts a little (measured: at most 1.4e-3 per pixel)."""
    model, x, y = trained
    eps = EPS[threat_model]
    attack = PGD(eps, steps=5, threat_model=threat_model, random_start="none")
    compiled = tf.function(lambda images, labels: attack(model, images, labels), jit_compile=True)
    eager = attack(model, x, y).numpy()
    x_adv = compiled(x, y).numpy()
    if threat_model == ThreatModel.LINF:
        np.testing.assert_allclose(x_adv, eager, atol=1e-5)
    else:
        distance = np.linalg.norm((x_adv - eager).reshape(len(eager), -1), axis=1)
        assert distance.max() < 1e-2 * eps, distance.max()
    np.testing.assert_allclose(
        cross_entropy_of(model, x_adv, y), cross_entropy_of(model, eager, y), rtol=1e-3, atol=1e-4
    )


def test_compiled_random_start_is_valid_and_as_strong(trained):
    """XLA's stateless RNG kernels give other numbers than TF's own (a TensorFlow property),
    so with a random start only validity, determinism and strength can be compared."""
    model, x, y = trained
    attack = PGD(0.1, steps=5, random_start="uniform", seed=3)
    compiled = tf.function(lambda images, labels: attack(model, images, labels), jit_compile=True)
    x_adv = compiled(x, y)
    assert_valid(x_adv, x, 0.1, ThreatModel.LINF)
    np.testing.assert_array_equal(x_adv, compiled(x, y))
    compiled_loss = cross_entropy_of(model, x_adv, y).mean()
    eager_loss = cross_entropy_of(model, attack(model, x, y), y).mean()
    assert abs(compiled_loss - eager_loss) < 0.05 * eager_loss


@pytest.mark.parametrize(
    "attack",
    [
        PGD(
            0.1,
            step_size=0.03,
            steps=3,
            threat_model="L2",
            random_start="uniform",
            loss="margin",
            restarts=2,
            seed=4,
        ),
        FGSM(0.2, threat_model="L2", seed=1, name="fgm"),
        CWLinf(0.1, step_size=0.05, steps=4, random_start="normal", restarts=2, seed=9),
    ],
    ids=["pgd", "fgsm", "cw_linf"],
)
def test_get_config_round_trips(trained, attack):
    model, x, y = trained
    restored = check_config_round_trip(attack)
    np.testing.assert_array_equal(restored(model, x, y), attack(model, x, y))


@pytest.mark.parametrize(
    "arguments, name",
    [
        (dict(eps=0.0), "eps"),
        (dict(eps=-0.1), "eps"),
        (dict(eps=0.1, step_size=0.2), "step_size"),
        (dict(eps=0.1, steps=0), "steps"),
        (dict(eps=0.1, threat_model="L1"), "threat_model"),
        (dict(eps=0.1, random_start="gaussian"), "random_start"),
        (dict(eps=0.1, loss="hinge"), "loss"),
        (dict(eps=0.1, restarts=0), "restarts"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(arguments, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        PGD(**arguments)


def test_fgsm_and_cw_validate_too():
    with pytest.raises(ValueError, match="eps"):
        FGSM(0.0)
    with pytest.raises(ValueError, match="threat_model"):
        FGSM(0.1, threat_model="L0")
    with pytest.raises(ValueError, match="step_size"):
        CWLinf(0.1, step_size=0.5)


def test_base_class_needs_perturb(trained):
    model, x, y = trained
    with pytest.raises(NotImplementedError):
        Attack(0.1)(model, x, y)


def test_attack_runs_the_model_in_inference_mode(trained):
    """With Dropout(0.99) active the gradients would be random; in inference mode the attack
    is deterministic and equals the attack on the same network without the dropout layer."""
    model, x, y = trained
    with_dropout = tiny_cnn(dropout_rate=0.99)
    with_dropout.set_weights(model.get_weights())
    attack = PGD(0.1, steps=3, random_start="uniform", seed=2)
    first = attack(with_dropout, x, y)
    np.testing.assert_array_equal(first, attack(with_dropout, x, y))
    np.testing.assert_allclose(first, attack(model, x, y), atol=1e-6)


@pytest.mark.parametrize("threat_model", list(EPS))  # the norm balls
def test_works_under_mixed_bfloat16(trained, bfloat16_policy, threat_model):
    model, x, y = trained
    mixed = tiny_cnn()
    assert mixed.layers[-1].compute_dtype == "bfloat16"
    mixed.set_weights(model.get_weights())
    eps = EPS[threat_model]
    x_adv = PGD(eps, steps=5, threat_model=threat_model, random_start="none")(mixed, x, y)
    assert_valid(x_adv, x, eps, threat_model)
    assert cross_entropy_of(mixed, x_adv, y).mean() > 1.5 * cross_entropy_of(mixed, x, y).mean()


def test_an_attack_of_one_ball_supports_that_ball_alone():
    from mi_keras.attacks import CWL2, DDN, FWA, TIDIM

    for attack, ball in (
        (FWA, ThreatModel.WASSERSTEIN),
        (DDN, ThreatModel.L2),
        (CWL2, ThreatModel.L2),
        (CWLinf, ThreatModel.LINF),
        (TIDIM, ThreatModel.LINF),
    ):
        assert attack.supported_threat_models == (ball,) == (attack.fixed_threat_model,)
    assert PGD.supported_threat_models == (ThreatModel.LINF, ThreatModel.L2)
