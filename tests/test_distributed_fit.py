"""DistributedFit in one process: it trains as `model.fit` does, resumes, and rejects bad input."""

from __future__ import annotations

import importlib.util
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from mi_keras.distributed_fit import DistributedFit
from mi_keras.distribution import is_chief, is_multi_worker, multi_worker_strategy

SCRIPT = pathlib.Path(__file__).parent / "scripts" / "multi_worker_step.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("multi_worker_step", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_same_weights_and_logs_as_model_fit(script):
    reference = script.build_model()
    expected = reference.fit(script.dataset(), epochs=2, shuffle=False, verbose=0).history
    model = script.build_model()
    history = DistributedFit(model).fit(script.dataset(), epochs=2).history
    assert expected["selected_fraction"][0] > 0, "the MI loss must be active"
    for a, b in zip(reference.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert set(history) == set(expected)
    for key in expected:
        np.testing.assert_allclose(history[key], expected[key], atol=1e-5, err_msg=key)


def test_backup_and_restore_resumes_at_the_last_epoch(script, tmp_path):
    backup = str(tmp_path / "backup")
    DistributedFit(script.build_model()).fit(
        script.dataset(), epochs=2, callbacks=[keras.callbacks.BackupAndRestore(backup, delete_checkpoint=False)]
    )
    resumed = script.build_model()
    epochs = []
    progress = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: epochs.append(epoch))
    DistributedFit(resumed).fit(
        script.dataset(), epochs=3, callbacks=[keras.callbacks.BackupAndRestore(backup), progress]
    )
    assert epochs == [2]


def test_validation_logs_are_prefixed_and_aggregated(script):
    model = script.build_model()
    history = DistributedFit(model).fit(script.dataset(), epochs=1, validation_data=script.dataset()).history
    expected = model.evaluate(script.dataset(), verbose=0, return_dict=True)
    assert history["val_clean_accuracy"][0] == pytest.approx(expected["clean_accuracy"], abs=1e-6)


def test_bad_input_is_rejected_with_a_clear_message(script):
    uncompiled = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="compiled model"):
        DistributedFit(uncompiled)
    with pytest.raises(ValueError, match="tf.data.Dataset of global batches"):
        DistributedFit(script.build_model()).fit(np.zeros((4, 8, 8, 1)), epochs=1)
    with pytest.raises(ValueError, match="strategy.scope"):
        DistributedFit(script.build_model(), tf.distribute.OneDeviceStrategy("/cpu:0"))
    with pytest.raises(ValueError, match="collective_timeout_seconds"):
        multi_worker_strategy(collective_timeout_seconds=0)


def test_one_process_is_its_own_chief():
    strategy = tf.distribute.get_strategy()
    assert is_chief(strategy) and not is_multi_worker(strategy)
