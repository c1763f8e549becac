"""The PyTorch copy of the small CNN used by bench/attacks_vs_torch.py gives the Keras logits."""

import pathlib
import sys

import keras
import numpy as np
import pytest

pytest.importorskip("torch", reason="needs the optional `bench` extra (torch), not installed in CI")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "bench"))

import attacks_vs_torch  # noqa: E402

from mi_keras.models.architectures.small_cnn import small_cnn  # noqa: E402


def test_copied_weights_give_the_same_logits():
    keras.utils.set_random_seed(0)
    model = small_cnn((28, 28, 1), 10)
    rng = np.random.default_rng(0)
    # The logits layer starts at zero, which would hide a wrong copy of every other layer.
    model.layers[-1].set_weights([w + rng.normal(0, 0.1, w.shape) for w in model.layers[-1].get_weights()])
    images = rng.random((8, 28, 28, 1), dtype=np.float32)
    torch_model = attacks_vs_torch.torch_small_cnn(model)
    assert attacks_vs_torch.check_logits(model, torch_model, images) <= 1e-5
    assert np.abs(model.predict(images, verbose=0)).max() > 0.1  # the check compared real logits


def test_a_wrong_copy_is_caught():
    import torch

    model = small_cnn((28, 28, 1), 10)
    rng = np.random.default_rng(1)
    model.layers[-1].set_weights([w + rng.normal(0, 0.1, w.shape) for w in model.layers[-1].get_weights()])
    torch_model = attacks_vs_torch.torch_small_cnn(model)
    with torch.no_grad():
        torch_model[0].weight.mul_(-1.0)
    with pytest.raises(RuntimeError, match="differs from the Keras model"):
        attacks_vs_torch.check_logits(model, torch_model, rng.random((8, 28, 28, 1), dtype=np.float32))
