"""Training one network: the run (``trainer``), its state (``state``), the step composed of
terms (``step``), its measurements (``measure``) and its checkpoints (``checkpoint``)."""

from eqpop.train.step import EpochTally
from eqpop.train.trainer import Diverged, Health, Trainer

__all__ = ["Diverged", "EpochTally", "Health", "Trainer"]
