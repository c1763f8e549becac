"""Shared test setup: quiet TensorFlow, the cores shared out among pytest-xdist's workers, the
long modules scheduled first, fixed seeds, and the shared data folder."""

from __future__ import annotations

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from threads import configure_threads  # noqa: E402

configure_threads()

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def pytest_collection_modifyitems(config, items):
    """Modules with a slow test run first: ``--dist loadfile`` hands out whole modules in
    collection order, and a long module handed out last would leave the other worker idle."""
    slow_modules = {item.module.__name__ for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.module.__name__ not in slow_modules)


@pytest.fixture(autouse=True)
def _seed_everything():
    keras.utils.set_random_seed(1234)
    yield


@pytest.fixture
def shared_data_dir() -> pathlib.Path:
    """``../shared/data``; tests that need it are skipped, with the reason, when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (it exists in CI)")
    return SHARED_DATA


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def digits_classifier():
    """``(model, x, y)``: a small CNN trained once per session on 8x8 digits, 200 held-out samples."""
    from toy_models import trained_digits_classifier

    return trained_digits_classifier()


def _global_dtype_policy(name: str):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    yield
    keras.config.set_dtype_policy(previous)


@pytest.fixture
def mixed_float16_policy():
    """Keras' global policy is ``mixed_float16`` during the test."""
    yield from _global_dtype_policy("mixed_float16")


@pytest.fixture
def bfloat16_policy():
    """Keras' global policy is ``mixed_bfloat16`` during the test."""
    yield from _global_dtype_policy("mixed_bfloat16")
