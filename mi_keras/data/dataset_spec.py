"""A parsed dataset spec: which source, and the name or path inside it."""

from __future__ import annotations

import dataclasses
import os
import pathlib

from mi_keras.data.dataset_source import DatasetSource
from mi_keras.data.dataset_split import DatasetSplit

SPLIT_PLACEHOLDER = "{split}"


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """``"<source>:<location>"``, or a bare tensorflow_datasets name, or ``"digits"``.

    Examples of specs:
    ```python
    from mi_keras.data import DatasetSpec

    DatasetSpec.parse("digits")                 # scikit-learn's 8x8 digits, no file
    DatasetSpec.parse("cifar10")                # tensorflow_datasets, same as "tfds:cifar10"
    DatasetSpec.parse("tfds:mnist:3.0.1")       # a pinned tfds version
    DatasetSpec.parse("idx:/data/mnist")        # train-images-idx3-ubyte[.gz], ... in a folder
    DatasetSpec.parse("npz:/data/cifar10.npz")  # x/y or x_train/y_train/x_test/y_test
    DatasetSpec.parse("npz:/data/cifar10_{split}.npz")  # cifar10_train.npz + cifar10_test.npz
    DatasetSpec.parse("npy:/miat/data")         # train_images.npy, train_labels.npy, test_...
    DatasetSpec.parse("folder:/data/flowers")   # one sub-folder per class
    ```

    A file source's location may hold ``{split}``: each split of the files then has its own
    file, ``train`` or ``test`` put in place of the placeholder, and a file's ``x`` / ``y``
    (or its split's arrays) are exactly that split.

    Args:
        source: the `DatasetSource`.
        location: the tfds name, or the path for file sources (empty for digits).
    """

    source: DatasetSource
    location: str = ""

    def __post_init__(self):
        if self.source is DatasetSource.DIGITS and self.location:
            raise ValueError(f"The digits source takes no location; got {self.location!r}.")
        if self.source is not DatasetSource.DIGITS and not self.location:
            raise ValueError(f"The {self.source.value!r} source needs a location after the colon.")

    @classmethod
    def parse(cls, spec: str | DatasetSpec) -> DatasetSpec:
        """Parses a spec string; a `DatasetSpec` is returned unchanged."""
        if isinstance(spec, DatasetSpec):
            return spec
        if not isinstance(spec, str) or not spec.strip():
            raise ValueError(f"`spec` must be a non-empty string such as 'digits' or 'idx:/data/mnist'; got {spec!r}.")
        spec = spec.strip()
        prefix, colon, rest = spec.partition(":")
        if colon and prefix.lower() in _PREFIXES:
            return cls(DatasetSource.parse(prefix, "spec prefix"), rest)
        if spec.lower() == DatasetSource.DIGITS.value:
            return cls(DatasetSource.DIGITS)
        if "/" in spec or os.sep in spec or spec.endswith((".npz", ".npy")):
            prefixes = ", ".join(f"'{p}:'" for p in sorted(_PREFIXES))
            raise ValueError(
                f"`spec` {spec!r} looks like a path; say which source reads it with a prefix "
                f"({prefixes}), e.g. 'npz:{spec}'."
            )
        return cls(DatasetSource.TFDS, spec)

    @property
    def per_split_files(self) -> bool:
        """Whether the location names one file per split (it holds ``{split}``)."""
        return SPLIT_PLACEHOLDER in self.location

    def path(self, data_dir: str | os.PathLike | None = None, split: DatasetSplit | None = None) -> pathlib.Path:
        """The absolute path; a relative location is taken inside ``data_dir`` when given.

        ``split`` (its file split: validation lives in train) fills a ``{split}``
        placeholder; a location with the placeholder needs it.
        """
        if not self.source.reads_files:
            raise ValueError(f"The {self.source.value!r} source reads no path.")
        location = self.location
        if self.per_split_files:
            if split is None:
                raise ValueError(f"{self} names one file per split; say which split's path.")
            location = location.replace(SPLIT_PLACEHOLDER, DatasetSplit.parse(split).file_split.value)
        path = pathlib.Path(location).expanduser()
        if data_dir is not None and not path.is_absolute():
            path = pathlib.Path(data_dir).expanduser() / path
        return path.absolute()  # error messages then name the file unambiguously

    def paths(self, data_dir: str | os.PathLike | None = None) -> list[pathlib.Path]:
        """Every path this spec reads: one, or one per split of the files."""
        if not self.per_split_files:
            return [self.path(data_dir)]
        return [self.path(data_dir, split) for split in (DatasetSplit.TRAIN, DatasetSplit.TEST)]

    def __str__(self) -> str:
        return f"{self.source.value}:{self.location}" if self.location else self.source.value


_PREFIXES = frozenset({member.value for member in DatasetSource} | {member.name.lower() for member in DatasetSource})
