"""Every data format, from fixture files written here in the format's own layout: good files
load with the right shapes and labels; truncated, corrupt or wrong-shape files are refused
with a ``DataError`` naming the file."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from eqpop.data import DATASETS, Batches, DataError, load_dataset
from eqpop.data.base import random_crop_flip

RNG = np.random.default_rng(0)


# ---- IDX (MNIST, Fashion-MNIST) ------------------------------------------------------------
def idx_bytes(arr: np.ndarray) -> bytes:
    return (
        bytes([0, 0, 0x08, arr.ndim])
        + b"".join(struct.pack(">i", d) for d in arr.shape)
        + (arr.astype(np.uint8).tobytes())
    )


def write_idx(root, n_train=20, n_val=10, gz=False, **replace):
    files = {
        "train-images-idx3-ubyte": idx_bytes(RNG.integers(0, 256, (n_train, 28, 28))),
        "train-labels-idx1-ubyte": idx_bytes(RNG.integers(0, 10, n_train)),
        "t10k-images-idx3-ubyte": idx_bytes(RNG.integers(0, 256, (n_val, 28, 28))),
        "t10k-labels-idx1-ubyte": idx_bytes(RNG.integers(0, 10, n_val)),
    }
    files.update(replace)
    for name, data in files.items():
        if gz:
            (root / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (root / name).write_bytes(data)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_loads(tmp_path, name, gz):
    write_idx(tmp_path, gz=gz)
    split = load_dataset(name, tmp_path)
    assert split.x_train.shape == (20, 1, 28, 28) and split.x_train.dtype == torch.uint8
    assert split.x_val.shape == (10, 1, 28, 28) and split.n_classes == 10


@pytest.mark.parametrize(
    "replace, problem",
    [
        ({"train-labels-idx1-ubyte": b"\x00\x00\x08\x03" + b"\x00" * 40}, "magic"),
        ({"train-images-idx3-ubyte": idx_bytes(np.zeros((20, 28, 28)))[:-5]}, "size"),
        ({"train-labels-idx1-ubyte": idx_bytes(np.zeros(19))}, "labels for"),
        ({"train-labels-idx1-ubyte": idx_bytes(np.full(20, 12))}, "out of range"),
        ({"t10k-images-idx3-ubyte": idx_bytes(np.zeros((10, 27, 27)))}, "27x27"),
        ({"t10k-labels-idx1-ubyte": b"\x00\x00"}, "truncated"),
    ],
)
def test_idx_refuses_bad_files(tmp_path, replace, problem):
    write_idx(tmp_path, **replace)
    with pytest.raises(DataError, match=problem) as err:
        load_dataset("mnist", tmp_path)
    assert str(tmp_path) in str(err.value)


def test_idx_missing_and_bad_gzip(tmp_path):
    with pytest.raises(DataError, match="missing"):
        load_dataset("mnist", tmp_path)
    write_idx(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz"):
        load_dataset("mnist", tmp_path)


# ---- CIFAR pickles -------------------------------------------------------------------------
def cifar_batch(n, label_key="labels", n_classes=10, data=None):
    return {
        b"batch_label": b"training batch",
        label_key.encode(): [int(v) for v in RNG.integers(0, n_classes, n)],
        b"data": RNG.integers(0, 256, (n, 3072), dtype=np.uint8) if data is None else data,
        b"filenames": [b"x.png"] * n,
    }


def write_cifar10(root, **replace):
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    files = {f"data_batch_{i}": cifar_batch(4) for i in range(1, 6)}
    files["test_batch"] = cifar_batch(3)
    files.update(replace)
    for name, obj in files.items():
        payload = obj if isinstance(obj, bytes) else pickle.dumps(obj, protocol=2)
        (folder / name).write_bytes(payload)
    return folder


def test_cifar10_and_cifar100_load(tmp_path):
    write_cifar10(tmp_path)
    split = load_dataset("cifar10", tmp_path)
    assert split.x_train.shape == (20, 3, 32, 32) and split.x_val.shape == (3, 3, 32, 32)
    folder = tmp_path / "c100" / "cifar-100-python"
    folder.mkdir(parents=True)
    for name, n in (("train", 6), ("test", 2)):
        obj = cifar_batch(n, "fine_labels", 100)
        (folder / name).write_bytes(pickle.dumps(obj, protocol=4))
    split = load_dataset("cifar100", tmp_path / "c100")
    assert split.n_classes == 100 and split.x_train.shape == (6, 3, 32, 32)


class RunsCode:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))


@pytest.mark.parametrize(
    "payload, problem",
    [
        (pickle.dumps(cifar_batch(4), protocol=2)[:200], "corrupt"),
        (pickle.dumps(cifar_batch(4, data=np.zeros((4, 100), np.uint8))), "shape"),
        (pickle.dumps(cifar_batch(4, data=np.zeros((4, 3072), np.float32))), "uint8"),
        (pickle.dumps({b"data": np.zeros((4, 3072), np.uint8)}), "labels"),
        (pickle.dumps(cifar_batch(4, n_classes=50)), "out of range"),
        (pickle.dumps([1, 2, 3]), "expected a dict"),
        (pickle.dumps({b"data": RunsCode()}), "refused"),
    ],
)
def test_cifar_refuses_bad_pickles_without_running_them(tmp_path, monkeypatch, payload, problem):
    monkeypatch.chdir(tmp_path)
    write_cifar10(tmp_path, data_batch_3=payload)
    with pytest.raises(DataError, match=problem) as err:
        load_dataset("cifar10", tmp_path)
    assert "data_batch_3" in str(err.value)
    assert not (tmp_path / "pwned").exists()


# ---- ImageNet 32x32 npz ------------------------------------------------------------------
def write_imagenet(root, **replace):
    def batch(n):
        return dict(
            data=RNG.integers(0, 256, (n, 3072), dtype=np.uint8),
            labels=RNG.integers(1, 1001, n),
            mean=np.zeros(3072),
        )

    files = {f"train_data_batch_{i}.npz": batch(3) for i in range(1, 11)}
    files["val_data.npz"] = batch(2)
    files.update(replace)
    for name, arrays in files.items():
        if isinstance(arrays, bytes):
            (root / name).write_bytes(arrays)
        else:
            np.savez(root / name, **arrays)


def test_imagenet32_loads_into_one_uint8_array(tmp_path):
    write_imagenet(tmp_path)
    split = load_dataset("imagenet32", tmp_path)
    assert split.x_train.shape == (30, 3, 32, 32) and split.x_train.dtype == torch.uint8
    assert split.n_classes == 1000 and int(split.y_train.min()) >= 0


@pytest.mark.parametrize(
    "replace, problem",
    [
        ({"val_data.npz": dict(data=np.zeros((2, 3072), np.uint8))}, "lacks"),
        (
            {"val_data.npz": dict(data=np.zeros((2, 3072), np.uint8), labels=np.zeros(2))},
            "out of range",
        ),
        (
            {"train_data_batch_4.npz": dict(data=np.zeros((3, 1000), np.uint8), labels=np.ones(3))},
            "expected uint8",
        ),
        ({"train_data_batch_2.npz": b"PK\x03\x04 broken"}, "corrupt"),
    ],
)
def test_imagenet32_refuses_bad_files(tmp_path, replace, problem):
    write_imagenet(tmp_path, **replace)
    with pytest.raises(DataError, match=problem) as err:
        load_dataset("imagenet32", tmp_path)
    assert next(iter(replace)) in str(err.value)


# ---- image folders ------------------------------------------------------------------------
def write_folder(root, size=(8, 8), fmt="png"):
    from PIL import Image

    for part in ("train", "val"):
        for cls in ("cat", "dog"):
            d = root / part / cls
            d.mkdir(parents=True)
            for i in range(3):
                arr = RNG.integers(0, 256, (*size, 3), dtype=np.uint8)
                Image.fromarray(arr).save(d / f"{i}.{fmt}")


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_imagefolder_loads(tmp_path, fmt):
    write_folder(tmp_path, fmt=fmt)
    split = load_dataset("imagefolder", tmp_path)
    assert split.x_train.shape == (6, 3, 8, 8) and split.n_classes == 2
    assert sorted(split.y_val.tolist()) == [0, 0, 0, 1, 1, 1]


def test_imagefolder_refuses_bad_trees(tmp_path):
    from PIL import Image

    write_folder(tmp_path)
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(tmp_path / "train" / "dog" / "big.png")
    with pytest.raises(DataError, match="big.png"):
        load_dataset("imagefolder", tmp_path)
    (tmp_path / "train" / "dog" / "big.png").write_bytes(b"\x89PNG truncated")
    with pytest.raises(DataError, match="not a readable image"):
        load_dataset("imagefolder", tmp_path)
    with pytest.raises(DataError, match="needs train"):
        load_dataset("imagefolder", tmp_path / "train")


# ---- digits, synthetic, batches ----------------------------------------------------------------
def test_digits_split_is_fixed_and_stratified():
    a, b = load_dataset("digits"), load_dataset("digits")
    assert torch.equal(a.x_val, b.x_val) and a.x_train.shape[1:] == (1, 8, 8)
    counts = torch.bincount(a.y_val, minlength=10)
    assert counts.min() >= 35 and len(a.y_val) + len(a.y_train) == 1797


def test_batches_normalise_augment_and_cover_an_epoch():
    split = DATASETS["synthetic"](n_train=100, n_val=10)
    batches = Batches(split, 32, augment=True, generator=torch.Generator().manual_seed(0))
    seen = [(x.shape, y.shape) for x, y in batches]
    assert len(seen) == 3 and seen[0] == ((32, 3, 32, 32), (32,))
    x = split.normalise(split.x_train)
    assert abs(float(x.mean())) < 0.05 and abs(float(x.std()) - 1) < 0.05


def test_unit_inputs_and_a_fixed_training_subset():
    split = DATASETS["synthetic"](n_train=100, n_val=10)
    unit = split.prepared("unit")
    x = unit.normalise(unit.x_train)
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    torch.testing.assert_close(x, split.x_train.float() / 255)
    assert torch.equal(split.prepared().normalise(split.x_val), split.normalise(split.x_val))
    a, b = split.prepared(train_subset=30), split.prepared("unit", train_subset=30)
    assert len(a.y_train) == 30 and torch.equal(a.x_train, b.x_train)  # the same draw each time
    assert torch.equal(a.x_val, split.x_val)  # validation untouched
    assert not torch.equal(a.x_train, split.x_train[:30])  # a random draw, not the first ones
    with pytest.raises(ValueError, match="train_subset: synthetic has 100 training images"):
        split.prepared(train_subset=101)


def test_random_crop_flip_keeps_content():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4)
    out = random_crop_flip(x, 1, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    # every output pixel is zero padding or a value of the same image
    for b in range(2):
        assert set(out[b].flatten().tolist()) <= set(x[b].flatten().tolist()) | {0.0}


def test_unknown_dataset_and_missing_dir():
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("svhn")
    with pytest.raises(DataError, match="data-dir"):
        load_dataset("cifar10")
