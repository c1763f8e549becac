"""Tiny-ImageNet: the standard folder layout, and the config run on a generated miniature."""

from __future__ import annotations

import pathlib

import keras
import numpy as np
import pytest
from PIL import Image

from mi_keras.data import DataError, load_dataset
from pipeline import run
from pipeline.settings import load_config

CLASSES = ("n01443537", "n01629819", "n01641577")
TRAIN_PER_CLASS, VAL_PER_CLASS = 8, 2


def make_miniature(root: pathlib.Path) -> pathlib.Path:
    """A tiny-imagenet-200 folder with 3 classes: class k's images are brightest in channel k."""
    folder = root / "tiny-imagenet-200"
    rng = np.random.default_rng(0)

    def image(label: int, grayscale: bool = False) -> Image.Image:
        pixels = rng.integers(0, 80, (64, 64, 3), dtype=np.uint8)
        pixels[..., label] += 170
        return Image.fromarray(pixels).convert("L") if grayscale else Image.fromarray(pixels)

    (folder / "val" / "images").mkdir(parents=True)
    (folder / "wnids.txt").write_text("\n".join(CLASSES) + "\n")
    annotations = []
    for label, class_id in enumerate(CLASSES):
        images = folder / "train" / class_id / "images"
        images.mkdir(parents=True)
        for index in range(TRAIN_PER_CLASS):
            image(label, grayscale=index == 0).save(images / f"{class_id}_{index}.JPEG", "JPEG")
        for index in range(VAL_PER_CLASS):
            name = f"val_{label * VAL_PER_CLASS + index}.JPEG"
            image(label).save(folder / "val" / "images" / name, "JPEG")
            annotations.append(f"{name}\t{class_id}\t0\t0\t63\t63")
    (folder / "val" / "val_annotations.txt").write_text("\n".join(annotations) + "\n")
    return folder


def test_the_standard_layout_reads_train_and_the_labelled_val(tmp_path):
    folder = make_miniature(tmp_path)
    spec = f"tiny_imagenet:{folder}"
    train, info = load_dataset(spec, "train", batch_size=None, validation_size=3, shuffle=False)
    images, labels = (np.stack(values) for values in zip(*[(x.numpy(), y.numpy()) for x, y in train]))
    assert images.shape[1:] == (64, 64, 3) and info.num_classes == 3
    assert info.class_names == CLASSES
    assert len(labels) == 3 * TRAIN_PER_CLASS - 3
    # Labels follow wnids.txt: class k's images are brightest in channel k (grayscale aside).
    brightest = images.mean(axis=(1, 2)).argmax(-1)
    colour = images.std(axis=-1).mean(axis=(1, 2)) > 0.05
    np.testing.assert_array_equal(brightest[colour], labels[colour])
    test, _ = load_dataset(spec, "test", batch_size=None)
    test_labels = np.array([y.numpy() for _, y in test])
    assert sorted(test_labels.tolist()) == [0, 0, 1, 1, 2, 2]


def test_bad_layouts_fail_naming_the_file(tmp_path):
    folder = make_miniature(tmp_path)
    (folder / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn99999999\t0\t0\t1\t1\n")
    with pytest.raises(DataError, match="val_annotations.txt"):
        load_dataset(f"tiny_imagenet:{folder}", "test", batch_size=2)
    Image.new("RGB", (32, 32)).save(folder / "train" / CLASSES[0] / "images" / "small.JPEG")
    with pytest.raises(DataError, match="64x64"):
        load_dataset(f"tiny_imagenet:{folder}", "train", batch_size=2)


@pytest.mark.slow
def test_the_config_trains_estimators_on_16x16_maps_of_the_miniature(tmp_path, monkeypatch):
    make_miniature(tmp_path)
    config = load_config("tiny_imagenet")
    assert config.data.dataset == "tiny_imagenet:tiny-imagenet-200"
    monkeypatch.chdir(tmp_path)
    settings = [
        "data.validation_size=0.125",
        "model.architecture=small_cnn",
        "attack.steps=1",
        "pretrain.epochs=1",
        "pretrain.batch_size=6",
        "estimators.epochs=1",
        "estimators.batch_size=6",
        "estimators.units=16",
    ]
    arguments = ["--config", "tiny_imagenet", "--data-dir", str(tmp_path), "--quiet"]
    arguments += ["--pipeline-root", "root", "--stages", "estimators"]
    assert run.main([*arguments, *(item for s in settings for item in ("--set", s))]) == 0
    [natural] = (tmp_path / "root" / "estimators").glob("*/estimators/natural_estimator.keras")
    estimator = keras.saving.load_model(natural)
    features = estimator.encode(np.zeros((2, 64, 64, 3), np.float32))
    assert features.shape == (2, 16 * 16, 16)  # 16x16 local maps
    assert estimator.num_classes == len(CLASSES)  # the global network reads every logit
