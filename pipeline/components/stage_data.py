"""The ingested dataset as the downstream stages read it: the same splits, every time."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import numpy as np
import tensorflow as tf

from mi_keras.data import DatasetSplit, load_dataset
from mi_keras.mi.bounds import batch_bounds
from pipeline.orchestration.artifact import Artifact
from pipeline.settings import DataConfig

DESCRIPTION_FILE = "dataset.json"


def loader_arguments(data: DataConfig, data_dir: str | None) -> dict[str, Any]:
    """The `load_dataset` arguments that decide which examples each split holds."""
    return {
        "spec": data.dataset,
        "validation_size": data.validation_size,
        "test_size": data.test_size,
        "split_seed": data.split_seed,
        "data_dir": data_dir,
        "download": data.download,
        "num_classes": data.num_classes,
        "image_size": list(data.image_size) if data.image_size is not None else None,
        "take": {DatasetSplit.TRAIN.value: data.take, DatasetSplit.TEST.value: data.test_take},
    }


class StageData:
    """Loads the splits that the ingest stage checked and fingerprinted.

    The ingest artifact's ``dataset.json`` records the `load_dataset` arguments; every
    stage loads its splits with them, so all stages train, select and evaluate on the same
    examples.

    Example:
    ```python
    data = StageData(inputs[StageName.INGEST]["dataset"])
    train = data.split("train", batch_size=64, augment="auto", seed=0)
    x_test, y_test = data.arrays("test")
    ```

    Args:
        artifact: the ingest stage's ``dataset`` artifact.
    """

    def __init__(self, artifact: Artifact):
        self.description = json.loads((pathlib.Path(artifact.uri) / DESCRIPTION_FILE).read_text())
        self.info: dict[str, Any] = self.description["info"]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.info["image_shape"])

    @property
    def num_classes(self) -> int:
        return self.info["num_classes"]

    @property
    def class_names(self) -> list[str]:
        return self.info["class_names"]

    def num_examples(self, split: str | DatasetSplit) -> int:
        return self.description["num_examples"][DatasetSplit.parse(split, "split").value]

    def steps_per_epoch(self, batch_size: int) -> int:
        """Training batches per epoch (the last, partial batch is dropped)."""
        return max(1, self.num_examples(DatasetSplit.TRAIN) // batch_size)

    def split(
        self, split: str | DatasetSplit, batch_size: int, augment="none", seed: int | None = None, **kwargs
    ) -> tf.data.Dataset:
        """One split as ``(images, labels)`` batches; see `mi_keras.data.load_dataset`."""
        split = DatasetSplit.parse(split, "split")
        arguments = dict(self.description["loader"])
        take = arguments.pop("take").get(split.value)
        dataset, _ = load_dataset(
            split=split, batch_size=batch_size, augment=augment, seed=seed, take=take, **arguments, **kwargs
        )
        return dataset

    def evaluation_split(self, split: str | DatasetSplit, batch_size: int) -> tf.data.Dataset:
        """Every example of a split, unshuffled, batched by `mi_keras.mi.bounds.batch_bounds`.

        The MI bounds need in-batch negatives, so a last batch of one sample joins the batch
        before it, as in the MI probe.
        """
        batches = self.split(split, batch_size=batch_size, shuffle=False, drop_remainder=False)
        last_begin, count = batch_bounds(self.num_examples(split), batch_size)[-1]
        if count - last_begin <= batch_size:  # no sample left alone: the plain batches
            return batches
        # k * batch_size + 1 examples: the last two batches merge (the head is read twice).
        examples = batches.unbatch()
        head = examples.take(last_begin).batch(batch_size)
        return head.concatenate(examples.skip(last_begin).batch(count - last_begin))

    def arrays(self, split: str | DatasetSplit) -> tuple[np.ndarray, np.ndarray]:
        """A whole split as NumPy ``(x float32 NHWC, y int32)``, in file order."""
        images, labels = [], []
        for batch_images, batch_labels in self.split(split, batch_size=1024, shuffle=False, drop_remainder=False):
            images.append(batch_images.numpy())
            labels.append(batch_labels.numpy())
        return np.concatenate(images), np.concatenate(labels)
