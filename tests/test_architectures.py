"""The model zoo: PyTorch parameter counts, shapes, training steps, saving, mixed precision, XLA."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import check_saved_outputs

from mi_keras.models.architectures import (
    Architecture,
    build_classifier,
    resnet18,
    small_cnn,
    wide_resnet,
)

NUM_CLASSES = 10


def trainable_parameter_count(model: keras.Model) -> int:
    """What PyTorch's ``sum(p.numel() for p in model.parameters())`` counts.

    Keras' ``count_params()`` also counts BatchNorm's moving mean and variance, which are
    buffers, not parameters, in PyTorch.
    """
    return sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)


# (name, input shape, options, PyTorch trainable parameters for 10 classes, reference).
# SmallCNN by hand, 28x28x1 -> 26 -> 24 -> pool 12 -> 10 -> 8 -> pool 4, so fc1 sees 4*4*64:
# conv 1*32*9+32 = 320, 32*32*9+32 = 9,248, 32*64*9+64 = 18,496, 64*64*9+64 = 36,928;
# fc 1024*200+200 = 205,000, 200*200+200 = 40,200, 200*10+10 = 2,010; total 312,202.
PYTORCH_REFERENCES = [
    ("resnet18", (32, 32, 3), {}, 11_173_962, "kuangliu/pytorch-cifar models/resnet.py ResNet18()"),
    (
        "preact_resnet18",
        (32, 32, 3),
        {},
        11_171_146,
        "kuangliu/pytorch-cifar models/preact_resnet.py PreActResNet18()",
    ),
    (
        "preact_resnet18",
        (32, 32, 3),
        {"final_activation": True},
        11_172_170,
        "Rice et al. 2020 / Wong et al. 2020 PreActResNet18 (final BatchNorm2d(512) + ReLU)",
    ),
    (
        "wrn34_10",
        (32, 32, 3),
        {},
        46_160_474,
        "TRADES/MART models/wideresnet.py WideResNet(34, 10, 10) without the unused sub_block1",
    ),
    ("vgg19", (32, 32, 3), {}, 20_040_522, "kuangliu/pytorch-cifar models/vgg.py VGG('VGG19')"),
    ("small_cnn", (28, 28, 1), {}, 312_202, "TRADES models/small_cnn.py SmallCNN()"),
]

# Small inputs where the architecture allows: (name, input shape, options).
SMALL_CONFIGURATIONS = [
    ("resnet18", (16, 16, 3), {}),
    ("preact_resnet18", (16, 16, 3), {}),
    ("wide_resnet", (16, 16, 3), {"depth": 10, "widen_factor": 1, "dropout_rate": 0.3}),
    ("vgg19", (16, 16, 3), {}),
    ("small_cnn", (8, 8, 1), {"padding": "same"}),
]


def random_batch(input_shape, batch_size=4, seed=0):
    generator = np.random.default_rng(seed)
    images = generator.uniform(0.0, 1.0, size=(batch_size, *input_shape)).astype("float32")
    labels = generator.integers(0, NUM_CLASSES, size=batch_size).astype("int32")
    return images, labels


def sgd_step(model, optimizer, images, labels):
    """One cross-entropy step on the logits; returns the loss and the gradients."""
    with tf.GradientTape() as tape:
        logits = model(images, training=True)
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
    gradients = tape.gradient(loss, model.trainable_weights)
    optimizer.apply_gradients(zip(gradients, model.trainable_weights))
    return float(loss), gradients


def snapshot(weights):
    return [np.array(weight.numpy()) for weight in weights]


def changed_paths(model, before, weights=None):
    weights = model.trainable_weights if weights is None else weights
    return {weight.path for weight, old in zip(weights, before) if not np.array_equal(weight.numpy(), old)}


@pytest.mark.parametrize(
    "name, input_shape, options, expected, reference",
    PYTORCH_REFERENCES,
    ids=[f"{row[0]}{'-' + '-'.join(row[2]) if row[2] else ''}" for row in PYTORCH_REFERENCES],
)
def test_trainable_parameters_match_the_pytorch_reference(name, input_shape, options, expected, reference):
    model = build_classifier(name, input_shape, NUM_CLASSES, **options)
    assert trainable_parameter_count(model) == expected, reference
    # The only non-trainable weights are BatchNorm's running statistics (PyTorch buffers).
    for weight in model.non_trainable_weights:
        assert weight.path.endswith(("moving_mean", "moving_variance")), weight.path


def test_class_count_changes_only_the_logits_layer():
    ten = trainable_parameter_count(small_cnn((28, 28, 1), 10))
    hundred = trainable_parameter_count(small_cnn((28, 28, 1), 100))
    assert hundred - ten == 90 * (200 + 1)


@pytest.mark.parametrize(
    "name, input_shape, options", SMALL_CONFIGURATIONS, ids=[row[0] for row in SMALL_CONFIGURATIONS]
)
def test_output_is_float32_logits_of_the_right_shape(name, input_shape, options):
    model = build_classifier(name, input_shape, NUM_CLASSES, **options)
    images, _ = random_batch(input_shape, batch_size=2)
    logits = model(images, training=False)
    assert model.input_shape == (None, *input_shape)
    assert logits.shape == (2, NUM_CLASSES)
    assert logits.dtype == "float32"
    assert np.all(np.isfinite(logits))
    logits_layer = model.get_layer("logits")
    assert logits_layer is model.layers[-1]
    assert logits_layer.activation is keras.activations.linear  # logits, no softmax


@pytest.mark.parametrize(
    "name, input_shape, options",
    [row for row in SMALL_CONFIGURATIONS if row[0] != "small_cnn"],
    ids=[row[0] for row in SMALL_CONFIGURATIONS if row[0] != "small_cnn"],
)
def test_one_training_step_updates_every_layer(name, input_shape, options):
    model = build_classifier(name, input_shape, NUM_CLASSES, **options)
    images, labels = random_batch(input_shape)
    trainable_before = snapshot(model.trainable_weights)
    statistics_before = snapshot(model.non_trainable_weights)

    loss, gradients = sgd_step(model, keras.optimizers.SGD(0.01), images, labels)

    assert np.isfinite(loss) and loss > 0
    assert all(np.all(np.isfinite(gradient)) for gradient in gradients)
    changed = changed_paths(model, trainable_before)
    # VGG's convolution biases sit right before BatchNorm, which cancels them: their gradient
    # is zero up to rounding, so only kernels and BatchNorm scales/offsets are required.
    must_change = {
        weight.path
        for weight in model.trainable_weights
        if weight.path.endswith(("kernel", "gamma", "beta")) or weight.path.startswith("logits")
    }
    assert must_change <= changed, sorted(must_change - changed)
    statistics_changed = changed_paths(model, statistics_before, model.non_trainable_weights)
    assert len(statistics_changed) == len(model.non_trainable_weights)


def test_small_cnn_starts_with_zero_logits_and_trains_like_trades():
    model = small_cnn((8, 8, 1), NUM_CLASSES, padding="same")
    images, labels = random_batch((8, 8, 1), batch_size=16)
    np.testing.assert_array_equal(model(images, training=False), 0.0)  # TRADES zero-init head
    optimizer = keras.optimizers.Adam(1e-2)
    before = snapshot(model.trainable_weights)

    first_loss, _ = sgd_step(model, optimizer, images, labels)
    # With a zero head, nothing below it gets a gradient on the first step.
    assert first_loss == pytest.approx(np.log(NUM_CLASSES), rel=1e-5)
    assert changed_paths(model, before) == {"logits/kernel", "logits/bias"}

    losses = [sgd_step(model, optimizer, images, labels)[0] for _ in range(30)]
    assert changed_paths(model, before) == {weight.path for weight in model.trainable_weights}
    assert np.all(np.isfinite(losses))
    final_loss = keras.losses.sparse_categorical_crossentropy(labels, model(images, training=False), from_logits=True)
    assert float(tf.reduce_mean(final_loss)) < 0.6 * first_loss  # it starts fitting a fixed batch


def test_strided_convolutions_pad_like_pytorch():
    """A 3x3 stride-2 convolution must sample PyTorch's grid (padding 1 on every side)."""
    model = resnet18((16, 16, 3), NUM_CLASSES)
    convolution = model.get_layer("stage2_block1_conv1")
    submodel = keras.Model(model.get_layer("stage2_block1_conv1_pad").input, convolution.output)
    features = np.random.default_rng(0).normal(size=(2, 16, 16, 64)).astype("float32")
    expected = tf.nn.conv2d(features, convolution.kernel, strides=2, padding=[[0, 0], [1, 1], [1, 1], [0, 0]])
    keras_same = tf.nn.conv2d(features, convolution.kernel, strides=2, padding="SAME")
    actual = submodel(features)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(actual, keras_same, atol=1e-3)  # the grid Keras' "same" would use


def test_initialisation_follows_the_references():
    wrn = wide_resnet((8, 8, 3), NUM_CLASSES, depth=10, widen_factor=4)
    kernel = wrn.get_layer("group3_block1_conv2").kernel.numpy()  # 3x3, 256 -> 256
    assert np.std(kernel) == pytest.approx(np.sqrt(2.0 / (9 * 256)), rel=0.02)  # N(0, 2/n_out)
    np.testing.assert_array_equal(wrn.get_layer("logits").bias.numpy(), 0.0)

    cnn = small_cnn((28, 28, 1), NUM_CLASSES)
    kernel = cnn.get_layer("stage2_conv2").kernel.numpy()  # kaiming_normal_: N(0, 2/n_in)
    assert np.std(kernel) == pytest.approx(np.sqrt(2.0 / (9 * 64)), rel=0.02)
    dense = cnn.get_layer("dense1")  # nn.Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    bound = 1.0 / np.sqrt(4 * 4 * 64)
    for weight in (dense.kernel.numpy(), dense.bias.numpy()):
        assert np.abs(weight).max() <= bound
        assert np.abs(weight).max() > 0.9 * bound


def test_numpy_integers_are_accepted_as_sizes():
    # Shapes and class counts often come from NumPy arrays (e.g. ``images.shape[1:]``).
    images = np.zeros((2, 8, 8, 1), "float32")
    model = small_cnn(images.shape[1:], np.int64(3), padding="same")
    assert model.output_shape == (None, 3)
    model = wide_resnet((8, 8, 3), 10, depth=np.int64(10), widen_factor=np.int32(1))
    assert model.get_layer("group3_block1_conv2").filters == 64


def test_wide_resnet_depth_sets_the_number_of_blocks():
    model = wide_resnet((8, 8, 3), NUM_CLASSES, depth=16, widen_factor=2)
    blocks = {layer.name.rsplit("_", 1)[0] for layer in model.layers if layer.name.endswith("_add")}
    assert len(blocks) == 3 * (16 - 4) // 6
    assert model.get_layer("group3_block2_conv2").filters == 64 * 2


@pytest.mark.parametrize(
    "name, input_shape, options",
    [
        ("small_cnn", (8, 8, 1), {"padding": "same"}),
        ("wide_resnet", (8, 8, 3), {"depth": 10, "widen_factor": 1, "dropout_rate": 0.3}),
    ],
    ids=["small_cnn", "wide_resnet"],
)
def test_saved_model_reloads_with_identical_predictions(tmp_path, name, input_shape, options):
    model = build_classifier(name, input_shape, NUM_CLASSES, **options)
    images, labels = random_batch(input_shape, batch_size=8)
    sgd_step(model, keras.optimizers.SGD(0.05), images, labels)  # non-trivial weights and stats
    restored = check_saved_outputs(model, [images], tmp_path / name, {"training": False})
    assert restored.name == model.name


@pytest.mark.parametrize(
    "name, input_shape, options",
    [
        ("small_cnn", (8, 8, 1), {"padding": "same"}),
        ("resnet18", (8, 8, 3), {}),
    ],
    ids=["small_cnn", "resnet18"],
)
def test_mixed_precision_computes_in_float16_with_float32_logits(mixed_float16_policy, name, input_shape, options):
    model = build_classifier(name, input_shape, NUM_CLASSES, **options)
    images, labels = random_batch(input_shape)
    convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convolutions[0].compute_dtype == "float16"
    assert convolutions[0].kernel.dtype == "float32"  # variables stay float32
    assert model.get_layer("logits").compute_dtype == "float32"

    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.01))
    with tf.GradientTape() as tape:
        logits = model(images, training=True)
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
        scaled_loss = optimizer.scale_loss(loss)
    gradients = tape.gradient(scaled_loss, model.trainable_weights)
    optimizer.apply_gradients(zip(gradients, model.trainable_weights))

    assert logits.dtype == "float32"
    assert np.isfinite(float(loss))


@pytest.mark.parametrize(
    "name, input_shape, options",
    [
        ("small_cnn", (8, 8, 1), {"padding": "same"}),
        ("wide_resnet", (8, 8, 3), {"depth": 10, "widen_factor": 1, "dropout_rate": 0.3}),
    ],
    ids=["small_cnn", "wide_resnet"],
)
def test_training_step_compiles_under_xla(name, input_shape, options):
    model = build_classifier(name, input_shape, NUM_CLASSES, **options)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    images, labels = random_batch(input_shape)
    eager_logits = model(images, training=False)
    loss = model.train_on_batch(images, labels)
    assert np.isfinite(loss)
    assert model.jit_compile  # stays on: Keras turns it off when XLA cannot compile
    compiled = tf.function(lambda x: model(x, training=False), jit_compile=True)
    assert compiled(images).shape == eager_logits.shape


def test_registry_builds_every_architecture_by_name():
    tiny_options = {
        Architecture.WIDE_RESNET: {"depth": 10, "widen_factor": 1},
        Architecture.SMALL_CNN: {"padding": "same"},
    }
    for architecture in Architecture:
        if architecture is Architecture.WRN34_10:
            continue  # built by the parameter-count test
        model = build_classifier(
            architecture.value.upper(), (8, 8, 3), NUM_CLASSES, **tiny_options.get(architecture, {})
        )
        assert model.output_shape == (None, NUM_CLASSES), architecture
    assert Architecture.parse("WRN34_10").fixed_options == {"depth": 34, "widen_factor": 10}


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: build_classifier("resnet50", (32, 32, 3), 10), "'resnet18', 'preact_resnet18'"),
        (lambda: build_classifier("wrn34_10", (32, 32, 3), 10, depth=28), "fixes ['depth']"),
        (
            lambda: build_classifier("resnet18", (32, 32, 3), 10, depth=18),
            "accepted options: ['name']",
        ),
        (lambda: build_classifier("small_cnn", (28, 28, 1), 10, dropout=0.1), "dropout_rate"),
        (lambda: small_cnn((8, 8, 1), 10), "padding='same'"),
        (lambda: small_cnn((3, 3, 1), 10, padding="same"), "at least 4x4"),
        (lambda: small_cnn((28, 28, 1), 10, padding="causal"), "`padding`"),
        (lambda: small_cnn((28, 28, 1), 10, dropout_rate=1.0), "`dropout_rate`"),
        (lambda: wide_resnet((32, 32, 3), 10, depth=12), "`depth`"),
        (lambda: wide_resnet((32, 32, 3), 10, depth=10, widen_factor=0), "`widen_factor`"),
        (lambda: resnet18((32, 32), 10), "`input_shape`"),
        (lambda: resnet18((32, 32, 0), 10), "`input_shape`"),
        (lambda: resnet18((32, 32, 3), 1), "`num_classes`"),
    ],
    ids=[
        "unknown-name",
        "pinned-option",
        "option-of-another-builder",
        "misspelt-option",
        "small-cnn-too-small-for-valid",
        "small-cnn-too-small-for-same",
        "bad-padding",
        "bad-dropout",
        "bad-depth",
        "bad-widen-factor",
        "input-shape-rank",
        "input-shape-zero",
        "one-class",
    ],
)
def test_bad_arguments_raise_helpful_value_errors(call, message):
    with pytest.raises(ValueError) as error:
        call()
    assert message in str(error.value)
