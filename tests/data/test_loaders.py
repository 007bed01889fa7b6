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
from imagenet32_files import write_imagenet32

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


# ---- ImageNet 32x32, npz and pickled releases ---------------------------------------------
SUFFIX = {"npz": ".npz", "pickle": ""}


def write_imagenet(root, release="npz", **replace):
    """``write_imagenet32``'s files (3 images a batch, 2 to validate), some of them (named
    without suffix) replaced by bytes or by a dict written in the release's own format."""
    write_imagenet32(root, release, per_batch=3, n_val=2)
    for name, content in replace.items():
        path = root / f"{name}{SUFFIX[release]}"
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif release == "npz":
            np.savez(path, **content)
        else:
            path.write_bytes(pickle.dumps(content, protocol=3))


def test_imagenet32_releases_load_to_the_same_split(tmp_path):
    for release in SUFFIX:
        write_imagenet32(tmp_path / release, release)
    a, b = (load_dataset("imagenet32", tmp_path / release) for release in SUFFIX)
    assert a.x_train.shape == (40, 3, 32, 32) and a.x_train.dtype == torch.uint8
    assert a.x_val.shape == (6, 3, 32, 32) and a.n_classes == 1000
    for field in ("x_train", "y_train", "x_val", "y_val", "mean", "std"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field
    with np.load(tmp_path / "npz" / "train_data_batch_2.npz") as npz:
        assert torch.equal(a.x_train[4], torch.from_numpy(npz["data"][0].reshape(3, 32, 32)))
        assert a.y_train[4:8].tolist() == (npz["labels"] - 1).tolist()  # 0-based


@pytest.mark.parametrize("release", SUFFIX)
@pytest.mark.parametrize(
    "replace, problem",
    [
        ({"val_data": dict(data=np.zeros((2, 3072), np.uint8))}, "lacks"),
        (
            {"val_data": dict(data=np.zeros((2, 3072), np.uint8), labels=np.zeros(2, np.int64))},
            "out of range",
        ),
        (
            {"train_data_batch_4": dict(data=np.zeros((3, 1000), np.uint8), labels=np.ones(3))},
            "expected uint8",
        ),
        (
            {"train_data_batch_4": dict(data=np.zeros((3, 3072), np.uint8), labels=np.ones(3))},
            "integer",
        ),
        ({"train_data_batch_2": b"PK\x03\x04 broken"}, "corrupt"),
    ],
)
def test_imagenet32_refuses_bad_files(tmp_path, release, replace, problem):
    write_imagenet(tmp_path, release, **replace)
    with pytest.raises(DataError, match=problem) as err:
        load_dataset("imagenet32", tmp_path)
    assert f"{next(iter(replace))}{SUFFIX[release]}:" in str(err.value)


@pytest.mark.parametrize(
    "content, problem",
    [
        ([1, 2, 3], "expected a dict"),
        (dict(data=[[0] * 3072] * 3, labels=[1, 2, 3]), "'data' is a list"),
        (dict(data=np.zeros((3, 3072), np.uint8), labels=["1", "2", "3"]), "integer"),
        (dict(data=np.zeros((3, 3072), np.uint8), labels=[1, [2, 3], 4]), "integer"),
        (dict(data=np.zeros((3, 3072), np.uint8), labels=[1, 2]), "2 labels for 3 images"),
        (dict(data=np.zeros((3, 3072), np.uint8), labels=[0, 1, 2]), "out of range"),
    ],
)
def test_imagenet32_refuses_odd_pickled_objects(tmp_path, content, problem):
    write_imagenet(tmp_path, "pickle", train_data_batch_5=content)
    with pytest.raises(DataError, match=problem) as err:
        load_dataset("imagenet32", tmp_path)
    assert "train_data_batch_5:" in str(err.value)


class Prints:
    def __reduce__(self):
        return (print, ("ran",))


@pytest.mark.parametrize("name", ["train_data_batch_7", "val_data"])
@pytest.mark.parametrize("runs", [RunsCode, Prints])
def test_imagenet32_refuses_pickles_that_run_code(tmp_path, monkeypatch, capsys, name, runs):
    monkeypatch.chdir(tmp_path)
    batch = dict(data=np.zeros((3, 3072), np.uint8), labels=[1, 2, 3], mean=runs())
    write_imagenet(tmp_path, "pickle", **{name: batch})
    with pytest.raises(DataError, match="not a plain ImageNet32 pickle: refused") as err:
        load_dataset("imagenet32", tmp_path)
    assert f"{name}:" in str(err.value)
    assert not (tmp_path / "pwned").exists() and "ran" not in capsys.readouterr().out


@pytest.mark.parametrize("release", SUFFIX)
def test_imagenet32_names_a_missing_file_and_the_batches_found(tmp_path, release):
    write_imagenet(tmp_path, "pickle")
    if release == "npz":  # both releases here: npz is read, and only its batches count
        write_imagenet(tmp_path, "npz")
    (tmp_path / f"train_data_batch_7{SUFFIX[release]}").unlink()
    with pytest.raises(DataError) as err:
        load_dataset("imagenet32", tmp_path)
    name = {"npz": "npz", "pickle": "pickled"}[release]
    assert str(err.value) == (
        f"{tmp_path / f'train_data_batch_7{SUFFIX[release]}'}: missing; of the {name} release "
        "the folder holds batches [1, 2, 3, 4, 5, 6, 8, 9, 10]"
    )
    assert len(DATASETS["imagenet32"](tmp_path, n_train_files=6).y_train) == 18
    (tmp_path / f"val_data{SUFFIX[release]}").unlink()
    with pytest.raises(DataError, match=f"val_data{SUFFIX[release]}: missing"):
        DATASETS["imagenet32"](tmp_path, n_train_files=6)


def test_imagenet32_folder_with_neither_release(tmp_path):
    write_imagenet32(tmp_path / "Imagenet32_train", "pickle")  # the parent named by mistake
    (tmp_path / "README.txt").write_text("hi")
    with pytest.raises(DataError) as err:
        load_dataset("imagenet32", tmp_path)
    assert str(err.value) == (
        f"{tmp_path}: holds neither release of Downsampled ImageNet 32x32: looked for "
        "train_data_batch_1.npz (npz) or train_data_batch_1 (pickled); "
        "found Imagenet32_train/, README.txt"
    )
    (tmp_path / "Imagenet32_train" / "train_data_batch_1").unlink()
    with pytest.raises(DataError, match=r"found train_data_batch_10, .*_5 and 5 more$"):
        load_dataset("imagenet32", tmp_path / "Imagenet32_train")
    with pytest.raises(DataError, match="README.txt: .*; not a folder$"):
        load_dataset("imagenet32", tmp_path / "README.txt")


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
