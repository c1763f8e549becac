"""MNIST-format IDX files (gzipped or not), e.g. MNIST and Fashion-MNIST as distributed."""

from __future__ import annotations

import gzip
import math
import pathlib
import zlib

import numpy as np

from mi_keras.data.data_error import DataError
from mi_keras.data.dataset_split import DatasetSplit
from mi_keras.data.source_data import SourceData

# The third byte of an IDX magic number is the element type, the fourth the rank.
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"
_IMAGE_RANKS = (3, 4)
_LABEL_RANKS = (1,)
FILE_NAMES = {
    DatasetSplit.TRAIN: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    DatasetSplit.TEST: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx_folder(folder: pathlib.Path, split: DatasetSplit) -> SourceData:
    """Reads one split of an IDX folder: ``train-*`` or ``t10k-*`` images and labels.

    Each file may be gzipped (``.gz``, as distributed) or not. The magic numbers, the
    dimensions in the headers and the file lengths are all checked.
    """
    if not folder.is_dir():
        raise DataError(folder, "no such folder (an IDX folder holds the MNIST-format files).")
    images_name, labels_name = FILE_NAMES[split.file_split]
    images_path = _find(folder, images_name)
    labels_path = _find(folder, labels_name)
    images = read_idx_file(images_path, _IMAGE_RANKS)
    labels = read_idx_file(labels_path, _LABEL_RANKS)
    if len(images) != len(labels):
        raise DataError(
            folder,
            f"image/label count mismatch: {images_path.name} holds {len(images)} images but "
            f"{labels_path.name} holds {len(labels)} labels.",
        )
    return SourceData.from_files(folder, images_path, images, labels_path, labels)


def _find(folder: pathlib.Path, name: str) -> pathlib.Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(
        folder / name,
        f"missing file: neither {name} nor {name}.gz is in the folder. An IDX folder holds "
        + ", ".join(f"{file}[.gz]" for pair in FILE_NAMES.values() for file in pair)
        + ".",
    )


def read_idx_file(path: pathlib.Path, ranks: tuple[int, ...]) -> np.ndarray:
    """Reads one IDX file into an array, checking its magic number and its length.

    Args:
        path: the file, gzipped or not (told apart by its first bytes, not its name).
        ranks: the accepted numbers of dimensions (3 or 4 for images, 1 for labels).
    """
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(path, f"truncated: {len(data)} bytes, shorter than the 4-byte IDX magic number.")
    rank = data[3]
    if data[:2] != b"\0\0" or data[2] not in _IDX_TYPES or rank not in ranks:
        raise DataError(
            path,
            f"wrong magic number 0x{data[:4].hex().upper()}: expected 0x000008{ranks[0]:02X} "
            f"(IDX, unsigned bytes, {ranks[0]} dimension{'s' if ranks[0] > 1 else ''}).",
        )
    header_size = 4 + 4 * rank
    if len(data) < header_size:
        raise DataError(path, f"truncated: {len(data)} bytes, shorter than its {header_size}-byte header.")
    shape = tuple(int(size) for size in np.frombuffer(data, ">u4", count=rank, offset=4))
    dtype = np.dtype(_IDX_TYPES[data[2]])
    expected_bytes = math.prod(shape) * dtype.itemsize
    found_bytes = len(data) - header_size
    if found_bytes < expected_bytes:
        raise DataError(
            path,
            f"truncated: the header declares shape {shape} ({expected_bytes:,} bytes of data) but "
            f"the file holds {found_bytes:,}.",
        )
    if found_bytes > expected_bytes:
        raise DataError(
            path,
            f"{found_bytes - expected_bytes:,} bytes after the {expected_bytes:,} that the "
            f"header's shape {shape} declares: a wrong header or a concatenated file.",
        )
    array = np.frombuffer(data, dtype, count=math.prod(shape), offset=header_size).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


def _read_bytes(path: pathlib.Path) -> bytes:
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as error:
        raise DataError(path, f"cannot be read: {error.strerror or error}.") from error
    if not data.startswith(_GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except EOFError as error:
        raise DataError(path, "truncated gzip file: the compressed stream ends early.") from error
    except (OSError, zlib.error) as error:
        raise DataError(path, f"corrupt gzip file: {error}.") from error
