"""A class-per-folder tree of PNG/JPEG images, as users keep their own data.

``DIR/train/<class>/*.jpg`` and ``DIR/val/<class>/*`` (or ``test/``); class names sorted give
the label order. Every image must have the same size and mode as the first one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eqpop.data.base import DataError, Split, make_split

SUFFIXES = {".png", ".jpg", ".jpeg"}


def _read_tree(root: Path, classes: list[str] | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from PIL import Image

    found = sorted(d.name for d in root.iterdir() if d.is_dir())
    if not found:
        raise DataError(root, "holds no class folders")
    if classes is not None and found != classes:
        raise DataError(root, f"class folders {found} differ from the training set's {classes}")
    images, labels, shape = [], [], None
    for label, name in enumerate(found):
        files = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in SUFFIXES)
        for path in files:
            try:
                with Image.open(path) as img:
                    arr = np.asarray(img.convert("RGB" if img.mode != "L" else "L"))
            except Exception as err:  # untrusted bytes: whatever Pillow raises means "bad file"
                raise DataError(path, f"not a readable image ({type(err).__name__})") from None
            arr = arr[:, :, None] if arr.ndim == 2 else arr
            if shape is None:
                shape = arr.shape
            elif arr.shape != shape:
                raise DataError(path, f"image is {arr.shape}, the others are {shape}")
            images.append(arr.transpose(2, 0, 1))
            labels.append(label)
    if not images:
        raise DataError(root, "holds no PNG or JPEG images")
    return np.stack(images), np.asarray(labels), found


def imagefolder(data_dir: Path | str | None = None) -> Split:
    if data_dir is None:
        raise DataError("imagefolder", "needs --data-dir (with train/ and val/ or test/)")
    root = Path(data_dir)
    val_dir = next((root / d for d in ("val", "test") if (root / d).is_dir()), None)
    if not (root / "train").is_dir() or val_dir is None:
        raise DataError(root, "needs train/ and val/ (or test/) class-per-folder trees")
    x_tr, y_tr, classes = _read_tree(root / "train", None)
    x_va, y_va, _ = _read_tree(val_dir, classes)
    if x_va.shape[1:] != x_tr.shape[1:]:
        raise DataError(val_dir, f"images are {x_va.shape[1:]}, training ones {x_tr.shape[1:]}")
    return make_split("imagefolder", x_tr, y_tr, x_va, y_va, len(classes), scale=1 / 255)
