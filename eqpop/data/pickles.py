"""A restricted unpickler for the data sets published as Python pickles (CIFAR, ImageNet 32x32).

A pickle is a program: ``pickle.load`` on a user's file runs whatever it says. The unpickler
here resolves only the few numpy names an array needs, so a pickle that tries anything else
is refused before any of it runs: what it can build is plain containers and numpy arrays.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

from eqpop.data.base import DataError

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _Refused(pickle.UnpicklingError):
    """The pickle names something other than the plain numpy pieces of an array."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise _Refused(f"refused to load {module}.{name}")
        return super().find_class(module, name)


def load_pickle(path: Path, kind: str) -> dict:
    """The dict a ``kind`` pickle holds (e.g. "CIFAR"), ``bytes`` keys decoded; a missing file,
    a pickle that names anything but array pieces, or anything but a dict is a ``DataError``."""
    if not path.is_file():
        raise DataError(path, "missing")
    try:
        obj = _RestrictedUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except _Refused as err:
        raise DataError(path, f"not a plain {kind} pickle: {err}") from None
    except Exception as err:  # truncated or garbled: EOFError, ValueError, struct errors...
        raise DataError(path, f"corrupt pickle ({type(err).__name__}: {err})") from None
    if not isinstance(obj, dict):
        raise DataError(path, f"expected a dict, found {type(obj).__name__}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}
