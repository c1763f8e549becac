"""The three splits every dataset offers."""

from __future__ import annotations

from mi_keras.enums import ParsableEnum


class DatasetSplit(ParsableEnum):
    """Which examples `mi_keras.data.load_dataset` returns.

    ``VALIDATION`` is carved from the training data (seeded and stratified), never from the
    test data: it is what model selection uses, so the test set stays untouched until the
    final evaluation.
    """

    TRAIN = "train"
    VALIDATION = "validation"
    TEST = "test"

    @property
    def file_split(self) -> DatasetSplit:
        """The split of the files that holds these examples (validation lives in train)."""
        return DatasetSplit.TEST if self is DatasetSplit.TEST else DatasetSplit.TRAIN
