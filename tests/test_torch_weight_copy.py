"""The PyTorch copies of the networks used by bench/attacks_vs_torch.py give the Keras logits."""

import pathlib
import sys

import keras
import numpy as np
import pytest

pytest.importorskip("torch", reason="needs the optional `bench` extra (torch), not installed in CI")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "bench"))

import attacks_vs_torch  # noqa: E402

from mi_keras.models.architectures.small_cnn import small_cnn  # noqa: E402
from mi_keras.models.architectures.wide_resnet import wide_resnet  # noqa: E402


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


def test_copied_wide_resnet_gives_the_same_logits_with_batch_norm_in_inference_mode():
    keras.utils.set_random_seed(0)
    model = wide_resnet((32, 32, 3), 10, depth=10, widen_factor=1)
    rng = np.random.default_rng(2)
    # Fresh BatchNorm statistics (0 and 1) and a zero logits bias would hide a wrong copy.
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights(
                [
                    gamma + rng.normal(0, 0.2, gamma.shape),
                    beta + rng.normal(0, 0.2, beta.shape),
                    mean + rng.normal(0, 0.2, mean.shape),
                    variance * rng.uniform(0.5, 2.0, variance.shape),
                ]
            )
    kernel, bias = model.get_layer("logits").get_weights()
    model.get_layer("logits").set_weights([kernel, bias + rng.normal(0, 0.1, bias.shape)])
    images = rng.random((8, 32, 32, 3), dtype=np.float32)
    torch_model = attacks_vs_torch.torch_wide_resnet(model)
    assert attacks_vs_torch.check_logits(model, torch_model, images) <= 1e-5
    assert np.abs(model.predict(images, verbose=0)).max() > 0.1
