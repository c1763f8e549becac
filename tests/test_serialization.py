"""Every serializable mi_keras class through the shared checks of tests/harness.py.

One small instance per registered class: its config round trip, its `.keras` file (an
attack's or initializer's JSON config) with identical outputs, and its load in a fresh
process that imports only mi_keras. `test_every_registered_class_has_a_case` keeps the
table complete when a class is added.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras
import numpy as np
import pytest
from harness import FreshProcessLoads, check_config_round_trip, check_saved_outputs

from mi_keras.attacks import APGD, CWL2, DDN, FAB, FGSM, FWA, PGD, TIDIM, APGDTargeted, AutoAttack, CWLinf, Square
from mi_keras.data import ImageAugmentation
from mi_keras.mi import GlobalNetwork, LocalEncoder, MIEstimator
from mi_keras.mi.initializers import IdentityUniform
from mi_keras.models import AdversarialModel, MIDefenseModel, MIEstimatorTrainer, WMIMModel

SHAPE, CLASSES, UNITS = (8, 8, 1), 10, 8
# Registered but abstract: it has no `perturb`, so there is nothing to instantiate.
ABSTRACT = {"mi_keras>Attack"}


@dataclasses.dataclass
class Case:
    obj: object
    args: list
    kwargs: dict = dataclasses.field(default_factory=dict)


def classifier() -> keras.Model:
    inputs = keras.Input(SHAPE)
    hidden = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    hidden = keras.layers.BatchNormalization()(hidden)
    return keras.Model(inputs, keras.layers.Dense(CLASSES)(keras.layers.Flatten()(hidden)))


def estimator(**options) -> MIEstimator:
    return MIEstimator.for_classifier(SHAPE, CLASSES, units=UNITS, **options)


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    images = rng.random((4, *SHAPE), dtype=np.float32)
    return images, rng.integers(0, CLASSES, 4).astype(np.int32), rng.normal(size=(4, CLASSES)).astype(np.float32)


def built_layer(layer: keras.layers.Layer, *args) -> Case:
    layer(*args)  # builds it: a saved unbuilt layer would load with new random weights
    return Case(layer, list(args))


def trained_estimator() -> Case:
    layer = estimator(bound="dv", dv="reference", chunk_size=3)
    images, _, logits = data()
    layer(images, logits, training=True)  # moves the BatchNorm statistics off their initial values
    return Case(layer, [images, logits])


def attack_case(attack) -> Callable[[], Case]:
    def case() -> Case:
        images, labels, _ = data()
        return Case(attack, [classifier(), images, labels])

    return case


def model_case(build) -> Callable[[], Case]:
    def case() -> Case:
        images, labels, _ = data()
        model = build()
        model.compile(optimizer=keras.optimizers.SGD(0.01))
        model.train_on_batch(images, labels)  # weights, statistics and optimizer state move
        return Case(model, [images])

    return case


TRAINING_ATTACK = {"attack": PGD(0.1, steps=1, random_start="none"), "seed": 3}
CASES: dict[str, Callable[[], Case]] = {
    "IdentityUniform": lambda: Case(IdentityUniform(limit=0.05, seed=3), [[4, 6]]),
    "LocalEncoder": lambda: built_layer(LocalEncoder(UNITS), data()[0]),
    "GlobalNetwork": lambda: built_layer(GlobalNetwork(UNITS), data()[2]),
    "MIEstimator": trained_estimator,
    "ImageAugmentation": lambda: Case(
        ImageAugmentation(8, 8, padding=1, horizontal_flip=True, seed=9), [data()[0]], {"seed": np.array([4, 5])}
    ),
    "PGD": attack_case(PGD(0.1, step_size=0.03, steps=2, threat_model="L2", loss="margin", restarts=2, seed=4)),
    "FGSM": attack_case(FGSM(0.2, threat_model="L2", seed=1, name="fgm")),
    "CWLinf": attack_case(CWLinf(0.1, step_size=0.05, steps=2, random_start="normal", seed=9)),
    "CWL2": attack_case(CWL2(0.5, step_size=0.1, steps=2, random_start="none", restarts=2, seed=3)),
    "APGD": attack_case(APGD(0.1, threat_model="L2", loss="dlr", steps=3, restarts=2, rho=0.5, seed=4, name="a")),
    "APGDTargeted": attack_case(APGDTargeted(0.1, steps=3, n_target_classes=2, seed=1)),
    "FAB": attack_case(FAB(0.1, steps=2, targeted=True, n_target_classes=2, alpha_max=0.2, eta=1.1, beta=0.8, seed=5)),
    "Square": attack_case(Square(0.1, queries=3, p_init=0.3, restarts=2, rescale_schedule=True, seed=9)),
    "DDN": attack_case(DDN(0.5, steps=2, gamma=0.1, init_norm=0.25, step_size=0.5, final_step_size=0.05, seed=2)),
    "FWA": attack_case(FWA(0.1, steps=2, dual_steps=2, seed=0)),
    "TIDIM": attack_case(TIDIM(0.1, steps=2, low=8, high=10, kernel_size=3, kernel_sigmas=1.0, seed=1)),
    "AutoAttack": attack_case(
        AutoAttack(0.1, version="custom", attacks=[APGD(0.1, steps=2), Square(0.1, queries=2)], seed=1)
    ),
    "AdversarialModel": model_case(
        lambda: AdversarialModel(classifier(), base_loss="trades", recompute_clean=True, **TRAINING_ATTACK)
    ),
    "MIDefenseModel": model_case(
        lambda: MIDefenseModel(
            classifier(),
            estimator(),
            estimator(),
            base_loss="trades",
            lam=0.2,
            selection="batch_softmax",
            lam_ramp_steps=7,
            difference="relative",
            mi_bound="infonce",
            **TRAINING_ATTACK,
        )  # fmt: skip
    ),
    "WMIMModel": model_case(
        lambda: WMIMModel(classifier(), estimator(), alpha=0.5, base_loss="trades", **TRAINING_ATTACK)
    ),
    "MIEstimatorTrainer": model_case(
        lambda: MIEstimatorTrainer(classifier(), estimator(), estimator(), objective="mim", **TRAINING_ATTACK)
    ),
}


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> dict[str, tuple[Case, tuple[str, np.ndarray]]]:
    """Every case, and what one fresh process made of all of them."""
    keras.utils.set_random_seed(0)
    built = {name: make() for name, make in CASES.items()}
    loads = FreshProcessLoads(tmp_path_factory.mktemp("fresh"))
    for name, case in built.items():
        loads.add(name, case.obj, case.args, case.kwargs)
    fresh = loads.run()
    return {name: (case, fresh[name]) for name, case in built.items()}


def test_every_registered_class_has_a_case():
    registered = {name for name in keras.saving.get_custom_objects() if name.startswith("mi_keras>")}
    assert registered - ABSTRACT == {f"mi_keras>{name}" for name in CASES}


@pytest.mark.parametrize("name", CASES)
def test_config_round_trip(cases, name):
    check_config_round_trip(cases[name][0].obj)


@pytest.mark.parametrize("name", CASES)
def test_saved_and_loaded_gives_identical_outputs(cases, name, tmp_path):
    case, _ = cases[name]
    check_saved_outputs(case.obj, case.args, tmp_path / name, case.kwargs)


@pytest.mark.parametrize("name", CASES)
def test_loads_in_a_fresh_process_that_imports_only_mi_keras(cases, name):
    case, (type_name, outputs) = cases[name]
    assert type_name == type(case.obj).__name__
    expected = keras.ops.convert_to_numpy(case.obj(*case.args, **case.kwargs))
    np.testing.assert_allclose(outputs, expected, rtol=1e-6, atol=1e-6)
