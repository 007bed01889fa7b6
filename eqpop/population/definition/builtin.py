"""The studies eqpop ships (``eqpop study NAME``, ``studies/NAME.py``), as plain values: they
are validated once the command line has filled in what they lack (``--data-dir``).

Search spaces follow the papers: |beta| log-uniform, N in {2, 4, 6, 8} for hEP, homeostasis off
or lambda log-uniform in 0.1-20, the method, the learning rate.
"""

from __future__ import annotations

from typing import Any

_BETA = {"low": 0.05, "high": 1.0, "log": True}
_N = {"choices": [2, 4, 6, 8], "when": {"method": ["hep"]}}
_HOMEO = {"low": 0.1, "high": 20.0, "log": True, "zero_or": True}
_PAPER_SPACE = {
    "method": {"choices": ["classic", "hep"]},
    "beta": _BETA,
    "n_points": _N,
    "lambda_homeo": _HOMEO,
}
# conv nets: the paper's hEP with homeostasis, lr around its 7e-3
_CONV_SPACE = {
    "beta": {"low": 0.1, "high": 2.0, "log": True},
    "n_points": {"choices": [2, 4, 6, 8]},
    "lambda_homeo": _HOMEO,
    "lr": {"low": 2e-3, "high": 2e-2, "log": True},
}
_GPU = dict(
    actors=4,
    gpus_per_actor=1.0,
    cpus_per_actor=4.0,
    pruner="hyperband",
    probe={"every": 10, "batch": 16, "betas": [0.5, 1.0], "n_points": [2, 4]},
)

BUILTIN: dict[str, dict[str, Any]] = {
    # the default: a laptop CPU, 2 actors, a few minutes
    "digits": dict(
        preset="digits-mlp",  # the narrower damped net keeps the default study at ~1.5 min
        base={"epochs": 10, "probe_batch": 64, "hidden": [64, 32], "dt": 0.5, "t_free": 40},
        space={**_PAPER_SPACE, "lr": {"low": 0.01, "high": 0.2, "log": True}},
        trials=24,
        actors=2,
        cpus_per_actor=1.0,
        pruner="median",
        pruner_warmup=3,
        pruner_startup=4,
        probe={"every": 5, "batch": 32, "betas": [0.1, 0.5], "n_points": [2, 4]},
    ),
    # the same net and space as population-based training: 4 members at once (2 cores), each
    # lineage 10 epochs, the bottom quarter replaced every 2 epochs
    "digits-pbt": dict(
        preset="digits-mlp",
        base={"epochs": 10, "probe_batch": 64, "hidden": [64, 32], "dt": 0.5, "t_free": 40},
        space={**_PAPER_SPACE, "lr": {"low": 0.01, "high": 0.2, "log": True}},
        schedule="pbt",
        pbt={"population": 4, "perturbation_interval": 2},
        actors=4,
        cpus_per_actor=0.5,
        probe={"every": 5, "batch": 32, "betas": [0.1, 0.5], "n_points": [2, 4]},
    ),
    # Table 1 and Fig. 3-4: the 784-256-256-10 MLP, from symmetric to independent feedback
    "fashion_mnist": dict(
        preset="fmnist-mlp",
        space={
            **_PAPER_SPACE,
            "asymmetry_angle": {"choices": [0.0, 30.0, 60.0, 90.0]},
            "lr": {"low": 3e-3, "high": 3e-2, "log": True},
        },
        trials=64,
        actors=4,
        gpus_per_actor=0.25,
        cpus_per_actor=2.0,
        pruner="median",
        pruner_warmup=5,
        probe={"every": 5, "batch": 64, "betas": [0.05, 0.5], "n_points": [2, 4, 6]},
    ),
    # Table 2
    "cifar10": dict(preset="cifar10-conv", space=_CONV_SPACE, trials=32, **_GPU),
    "cifar100": dict(preset="cifar100-conv", space=_CONV_SPACE, trials=32, **_GPU),
    "imagenet32": dict(preset="imagenet32-conv", space=_CONV_SPACE, trials=16, **_GPU),
}
