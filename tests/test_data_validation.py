"""Bad data fails in `load_dataset`, before any training, naming the file and the problem.

Every case writes a small bad dataset under tmp_path, calls `load_dataset` from inside
tmp_path (so a relative write would land there too) and checks the `DataError` message
and that tmp_path is left exactly as it was.
"""

from __future__ import annotations

import gzip
import pathlib

import numpy as np
import pytest
from PIL import Image

from mi_keras.data import DataError, load_dataset

IMAGE_MAGIC = bytes([0, 0, 8, 3])
LABEL_MAGIC = bytes([0, 0, 8, 1])


def write_idx(path: pathlib.Path, array: np.ndarray, magic: bytes | None = None, gz=False):
    """Writes ``array`` (uint8) as an IDX file; ``magic`` overrides the magic number."""
    magic = magic or bytes([0, 0, 8, array.ndim])
    header = magic + b"".join(int(size).to_bytes(4, "big") for size in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


def write_idx_folder(folder: pathlib.Path, images=None, labels=None, gz=False) -> pathlib.Path:
    """A valid 10-class MNIST-format folder (train and t10k), 30 examples of 8x8 each."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 8, 8)) if images is None else images
    labels = np.arange(30) % 10 if labels is None else labels
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for prefix in ("train", "t10k"):
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images, gz=gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels, gz=gz)
    return folder


def snapshot(root: pathlib.Path) -> dict[str, tuple[int, int]]:
    return {str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns) for path in root.rglob("*")}


def expect_data_error(root: pathlib.Path, monkeypatch, spec: str, named: pathlib.Path, *words, **kwargs):
    """Calls load_dataset and checks the error names ``named`` and every word; nothing written."""
    monkeypatch.chdir(root)
    before = snapshot(root)
    with pytest.raises(DataError) as raised:
        load_dataset(spec, batch_size=4, **kwargs)
    message = str(raised.value)
    assert str(named) in message, message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert snapshot(root) == before, "load_dataset wrote files while failing"
    return raised.value


# ---- missing files -------------------------------------------------------------------


def test_missing_idx_labels_file(tmp_path, monkeypatch):
    folder = write_idx_folder(tmp_path / "mnist")
    (folder / "train-labels-idx1-ubyte").unlink()
    expect_data_error(tmp_path, monkeypatch, f"idx:{folder}", folder / "train-labels-idx1-ubyte", "missing file")


def test_missing_folder_and_files(tmp_path, monkeypatch):
    expect_data_error(tmp_path, monkeypatch, "idx:absent", tmp_path / "absent", "no such folder")
    expect_data_error(tmp_path, monkeypatch, "npz:absent.npz", tmp_path / "absent.npz", "no such file")
    (tmp_path / "miat").mkdir()
    np.save(tmp_path / "miat" / "train_images.npy", np.zeros((4, 8, 8, 3), np.uint8))
    expect_data_error(tmp_path, monkeypatch, "npy:miat", tmp_path / "miat" / "train_labels.npy", "missing file")


# ---- truncated and corrupt files -------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_truncated_idx_file(tmp_path, monkeypatch, gz):
    folder = write_idx_folder(tmp_path / "mnist", gz=gz)
    path = folder / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    expect_data_error(tmp_path, monkeypatch, f"idx:{folder}", path, "truncated")


def test_truncated_header_reports_declared_and_found_bytes(tmp_path, monkeypatch):
    folder = write_idx_folder(tmp_path / "mnist")
    path = folder / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    error = expect_data_error(tmp_path, monkeypatch, f"idx:{folder}", path, "truncated", "(30, 8, 8)")
    assert "1,920 bytes" in error.problem and "1,820" in error.problem


def test_trailing_bytes_are_rejected(tmp_path, monkeypatch):
    folder = write_idx_folder(tmp_path / "mnist")
    path = folder / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes() + b"\0" * 7)
    expect_data_error(tmp_path, monkeypatch, f"idx:{folder}", path, "7 bytes after")


def test_truncated_npz_and_npy(tmp_path, monkeypatch):
    archive = tmp_path / "data.npz"
    np.savez(archive, x=np.zeros((20, 8, 8), np.uint8), y=np.arange(20) % 2)
    archive.write_bytes(archive.read_bytes()[:300])
    expect_data_error(tmp_path, monkeypatch, "npz:data.npz", archive, "truncated or corrupt")
    folder = tmp_path / "miat"
    folder.mkdir()
    np.save(folder / "train_images.npy", np.zeros((20, 8, 8, 3), np.uint8))
    np.save(folder / "train_labels.npy", np.arange(20) % 2)
    images = folder / "train_images.npy"
    images.write_bytes(images.read_bytes()[:500])
    expect_data_error(tmp_path, monkeypatch, "npy:miat", images, "truncated")


# ---- wrong magic number --------------------------------------------------------------


@pytest.mark.parametrize(
    "magic, found",
    [
        (LABEL_MAGIC, "0x00000801"),
        (b"\x50\x4b\x03\x04", "0x504B0304"),
        (bytes([0, 0, 0x42, 3]), "0x00004203"),
    ],
    ids=["labels-magic", "zip-file", "unknown-type"],
)
def test_wrong_magic_number(tmp_path, monkeypatch, magic, found):
    folder = write_idx_folder(tmp_path / "mnist")
    path = folder / "t10k-images-idx3-ubyte"
    write_idx(path, np.zeros((30, 8, 8)), magic=magic)
    expect_data_error(
        tmp_path,
        monkeypatch,
        f"idx:{folder}",
        path,
        "wrong magic number",
        found,
        "0x00000803",
        split="test",
    )


# ---- image / label count mismatch ----------------------------------------------------


def test_count_mismatch_idx(tmp_path, monkeypatch):
    folder = write_idx_folder(tmp_path / "mnist")
    write_idx(folder / "train-labels-idx1-ubyte", np.arange(29) % 10)
    expect_data_error(tmp_path, monkeypatch, f"idx:{folder}", folder, "count mismatch", "30 images", "29 labels")


def test_count_mismatch_npz(tmp_path, monkeypatch):
    archive = tmp_path / "data.npz"
    np.savez(archive, x=np.zeros((20, 8, 8), np.uint8), y=np.arange(21) % 2)
    expect_data_error(tmp_path, monkeypatch, "npz:data.npz", archive, "count mismatch")


# ---- labels outside [0, classes) -----------------------------------------------------


def test_label_beyond_declared_classes(tmp_path, monkeypatch):
    labels = np.arange(20) % 10
    labels[13] = 10
    archive = tmp_path / "data.npz"
    np.savez(archive, x=np.zeros((20, 8, 8), np.uint8), y=labels, classes=np.array(list("abcdefghij")))
    expect_data_error(tmp_path, monkeypatch, "npz:data.npz", archive, "label 10 at index 13", "outside [0, 10)")


def idx_with_bad_label(tmp_path, index: int, label: int):
    """A 10-class IDX folder whose training label ``index`` is ``label``: its spec and label file."""
    labels = np.arange(30) % 10
    labels[index] = label
    folder = write_idx_folder(tmp_path / "mnist", labels=labels)
    return f"idx:{folder}", folder / "train-labels-idx1-ubyte"


def test_label_beyond_num_classes_argument(tmp_path, monkeypatch):
    spec, label_file = idx_with_bad_label(tmp_path, 3, 12)
    expect_data_error(tmp_path, monkeypatch, spec, label_file, "label 12 at index 3", "outside [0, 10)", num_classes=10)


def test_negative_label(tmp_path, monkeypatch):
    labels = np.arange(20) % 2
    labels[5] = -1
    archive = tmp_path / "data.npz"
    np.savez(archive, x=np.zeros((20, 8, 8), np.uint8), y=labels)
    expect_data_error(tmp_path, monkeypatch, "npz:data.npz", archive, "label -1 at index 5", "outside")


def test_stray_label_with_inferred_classes(tmp_path, monkeypatch):
    """A corrupt label 200 in a 10-class file: inferred classes 10..199 have no examples."""
    spec, label_file = idx_with_bad_label(tmp_path, 7, 200)
    expect_data_error(tmp_path, monkeypatch, spec, label_file, "outside [0, classes)", "have no examples")


# ---- NaN and values out of range -----------------------------------------------------


def test_nan_pixels(tmp_path, monkeypatch):
    images = np.full((20, 8, 8), 0.5, np.float32)
    images[11, 3, 3] = np.nan
    archive = tmp_path / "data.npz"
    np.savez(archive, x=images, y=np.arange(20) % 2)
    expect_data_error(tmp_path, monkeypatch, "npz:data.npz", archive, "NaN", "image 11")


@pytest.mark.parametrize(
    "images, words",
    [
        (np.full((20, 8, 8), 255.0, np.float32), ("[0, 1]", "255.0")),
        (np.full((20, 8, 8), np.inf, np.float32), ("[0, 1]", "inf")),
        (np.full((20, 8, 8), 300, np.int32), ("0..255", "300")),
    ],
    ids=["float-0-255", "infinite", "int-300"],
)
def test_values_out_of_range(tmp_path, monkeypatch, images, words):
    folder = tmp_path / "miat"
    folder.mkdir()
    np.save(folder / "train_images.npy", images)
    np.save(folder / "train_labels.npy", np.arange(20) % 2)
    expect_data_error(tmp_path, monkeypatch, "npy:miat", folder / "train_images.npy", *words)


# ---- empty splits --------------------------------------------------------------------


def test_empty_file(tmp_path, monkeypatch):
    folder = write_idx_folder(tmp_path / "mnist", images=np.zeros((0, 8, 8)), labels=np.zeros((0,)))
    expect_data_error(tmp_path, monkeypatch, f"idx:{folder}", folder / "train-images-idx3-ubyte", "empty split")


def test_empty_validation_split(tmp_path, monkeypatch):
    folder = write_idx_folder(tmp_path / "mnist")
    expect_data_error(
        tmp_path,
        monkeypatch,
        f"idx:{folder}",
        folder,
        "empty split",
        "validation_size=0",
        split="validation",
        validation_size=0,
    )


def test_no_full_batch(tmp_path, monkeypatch):
    folder = write_idx_folder(tmp_path / "mnist")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="no full batch of 64"):
        load_dataset(f"idx:{folder}", batch_size=64)
    dataset, info = load_dataset(f"idx:{folder}", batch_size=64, drop_remainder=False)
    assert [len(labels) for _, labels in dataset] == [info.num_examples["train"]]


def test_empty_image_folder(tmp_path, monkeypatch):
    (tmp_path / "photos" / "cat").mkdir(parents=True)
    expect_data_error(tmp_path, monkeypatch, "folder:photos", tmp_path / "photos", "empty split")


# ---- mixed image shapes --------------------------------------------------------------


def test_mixed_shapes_in_image_folder(tmp_path, monkeypatch):
    for index, (name, size) in enumerate([("cat", (8, 8)), ("dog", (8, 8)), ("dog", (10, 8))]):
        (tmp_path / "photos" / name).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size).save(tmp_path / "photos" / name / f"{index}.png")
    bad = tmp_path / "photos" / "dog" / "2.png"
    expect_data_error(tmp_path, monkeypatch, "folder:photos", bad, "mixed image shapes", "8x10")
    monkeypatch.chdir(tmp_path)
    _, info = load_dataset("folder:photos", batch_size=None, image_size=(8, 8), validation_size=0, test_size=1)
    assert info.image_shape == (8, 8, 3)


def test_object_array_of_mixed_shapes(tmp_path, monkeypatch):
    images = np.empty(2, dtype=object)
    images[0], images[1] = np.zeros((8, 8)), np.zeros((9, 8))
    archive = tmp_path / "data.npz"
    np.savez(archive, x=images, y=np.array([0, 1]))
    expect_data_error(tmp_path, monkeypatch, "npz:data.npz", archive, "object array", "mixed shapes")


def test_corrupt_image_file(tmp_path, monkeypatch):
    (tmp_path / "photos" / "cat").mkdir(parents=True)
    Image.new("L", (8, 8)).save(tmp_path / "photos" / "cat" / "good.png")
    bad = tmp_path / "photos" / "cat" / "bad.png"
    data = (tmp_path / "photos" / "cat" / "good.png").read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    expect_data_error(tmp_path, monkeypatch, "folder:photos", bad, "not a readable image")


# ---- shapes and layouts --------------------------------------------------------------


def test_channels_first_and_one_hot_are_rejected(tmp_path, monkeypatch):
    archive = tmp_path / "data.npz"
    np.savez(archive, x=np.zeros((20, 3, 8, 8), np.uint8), y=np.arange(20) % 2)
    expect_data_error(tmp_path, monkeypatch, "npz:data.npz", archive, "channels-first")
    np.savez(archive, x=np.zeros((20, 8, 8), np.uint8), y=np.eye(2)[np.arange(20) % 2])
    expect_data_error(tmp_path, monkeypatch, "npz:data.npz", archive, "one-hot")


def test_npz_without_known_keys(tmp_path, monkeypatch):
    archive = tmp_path / "data.npz"
    np.savez(archive, images=np.zeros((20, 8, 8), np.uint8), targets=np.arange(20) % 2)
    expect_data_error(tmp_path, monkeypatch, "npz:data.npz", archive, "['images', 'targets']")


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="training split only"):
        load_dataset("digits", split="test", augment=True)
    with pytest.raises(ValueError, match="batch_size"):
        load_dataset("digits", batch_size=0)
    with pytest.raises(ValueError, match="validation_size"):
        load_dataset("digits", validation_size=1.5)
    with pytest.raises(ValueError, match="prefix"):
        load_dataset("/data/mnist")
    with pytest.raises(ValueError, match="tensorflow_datasets only"):
        load_dataset("digits", download=True)
    with pytest.raises(ValueError, match="Unknown split"):
        load_dataset("digits", split="dev")
