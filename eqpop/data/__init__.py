"""Data sets as tensors. The default, scikit-learn's bundled 8x8 digits, needs no download."""

from eqpop.data.digits import Split, digits

DATASETS = {"digits": digits}

__all__ = ["DATASETS", "Split", "digits"]
