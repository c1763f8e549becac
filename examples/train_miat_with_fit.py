"""Train MIAT with `model.fit` on your own arrays, watched by the health monitor.

The three stages of MIAT (Zhou et al., "Improving Adversarial Robustness via Mutual
Information Estimation", ICML 2022), each a plain Keras `fit`:

1. standard adversarial training (the baseline, and the frozen target of stage 1);
2. stage 1: the natural and adversarial MI estimators, trained against that frozen model;
3. stage 2: MIAT trains a fresh classifier with the frozen estimators.

The data here is scikit-learn's bundled 8x8 digits, so the script runs anywhere; put your own
`images` (float32 in [0, 1], shape [N, H, W, C]) and integer `labels` in their place.

Run it:

    python examples/train_miat_with_fit.py                     # about 3 minutes on 2 CPU cores
    python examples/train_miat_with_fit.py --epochs 1 --samples 256   # a smoke run
"""

import argparse
import pathlib
import tempfile

import keras
import numpy as np
import tensorflow as tf
from sklearn.datasets import load_digits

from mi_keras.attacks import PGD
from mi_keras.callbacks import MIHealthMonitor
from mi_keras.export import next_version_dir
from mi_keras.mi import MIEstimator
from mi_keras.models import AdversarialModel, MIDefenseModel, MIEstimatorTrainer, build_classifier

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=20, help="epochs of each classifier stage")
parser.add_argument("--estimator-epochs", type=int, default=5)
parser.add_argument("--samples", type=int, default=None, help="use only this many images (a quick run)")
parser.add_argument("--export-dir", default=None, help="where to export (default: a temporary folder)")
args = parser.parse_args()
epochs, estimator_epochs = args.epochs, args.estimator_epochs
keras.utils.set_random_seed(0)

# Your data: float32 images in [0, 1] and integer labels. mi_keras refuses uint8 or 0..255
# images, because an eps meant for [0, 1] would then mean nothing.
digits = load_digits()
images = (digits.images / 16.0).astype("float32")[..., None]
labels = digits.target.astype("int32")
order = np.random.default_rng(0).permutation(len(images))[: args.samples]
images, labels = images[order], labels[order]
# Model selection and the monitor use a validation split carved from the training data.
cut = int(0.85 * len(images))
train = tf.data.Dataset.from_tensor_slices((images[:cut], labels[:cut])).shuffle(cut, seed=0)
train = train.batch(64, drop_remainder=True)  # the MI bound needs batches of >= 2 samples
validation = (images[cut:], labels[cut:])

shape, classes = images.shape[1:], 10
# L-inf eps 0.2 on digits, PGD-10 with step eps / 4 (the paper's training attack, rescaled).
attack = PGD(eps=0.2, steps=10, seed=0)


def classifier():
    return build_classifier("small_cnn", shape, classes, padding="same")


def sgd():
    return keras.optimizers.SGD(0.05, momentum=0.9)


# 1. Standard adversarial training.
at = AdversarialModel(classifier(), attack=attack, seed=0)
at.compile(optimizer=sgd())
at.fit(train, validation_data=validation, epochs=epochs)

# 2. Stage 1: the estimators learn to read the frozen AT model (Eq. 4 of the paper, "mim").
natural, adversarial = (MIEstimator.for_classifier(shape, classes, units=256) for _ in range(2))
stage1 = MIEstimatorTrainer(at.classifier, natural, adversarial, attack=attack, objective="mim", seed=0)
stage1.compile(optimizer=keras.optimizers.Adam(1e-3))
stage1.fit(train, epochs=estimator_epochs)

# 3. Stage 2: MIAT, alpha 5 and lambda 0 (the released code's lambda; the paper's 0.1 made our
# small networks collapse to chance, see "Does MIAT help?" in the README). The monitor warns,
# epoch by epoch, if accuracy falls to chance, if the estimators stop reading the classifier,
# or if the MI term's gradient dwarfs the cross-entropy's; its figures land in the History.
model = MIDefenseModel(classifier(), natural, adversarial, attack=attack, alpha=5.0, lam=0.0, seed=0)
model.compile(optimizer=sgd())
monitor = MIHealthMonitor(validation)
history = model.fit(train, validation_data=validation, epochs=epochs, callbacks=[monitor])
print(
    "validation clean / PGD accuracy:",
    history.history["val_clean_accuracy"][-1],
    history.history["val_adversarial_accuracy"][-1],
)
print("health verdict:", monitor.verdict())

# Save the whole model (estimators included) and export the classifier for TF Serving.
# Both refuse a model whose weights became NaN; a NaN loss would have stopped `fit` first.
export_root = pathlib.Path(args.export_dir or tempfile.mkdtemp())
export_root.mkdir(parents=True, exist_ok=True)
model.save(export_root / "miat.keras")
served = model.export_classifier(next_version_dir(export_root / "miat"), metadata={"health": monitor.verdict()})
predict = tf.saved_model.load(str(served)).signatures["serving_default"]
answer = predict(images=tf.constant(images[cut:][:4]))
print(
    "exported to", served, "- classes of 4 validation images:", answer["class_ids"].numpy(), "labels:", labels[cut:][:4]
)
