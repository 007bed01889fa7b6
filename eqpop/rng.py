"""Random streams a run owns: nothing in eqpop seeds or advances torch's global generator."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def drawing_from(generator: torch.Generator) -> Iterator[None]:
    """Run code that draws from torch's global CPU generator (the default initialisers of
    ``nn.Linear``, ``nn.Conv2d`` and the nets) on ``generator``'s stream instead: the stream
    advances as if the draws were made from it, and the global generator is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.set_rng_state(generator.get_state())
        yield
        generator.set_state(torch.get_rng_state())
