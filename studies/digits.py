"""The default study: the digits-mlp preset (64-64-32-10, started symmetric) for 10 epochs,
24 trials on 2 CPU actors, median pruning; about 3 minutes on a laptop.

Search space: method {classic, hep}, |beta| log-uniform 0.05-1, N in {2, 4, 6, 8} (hep only),
lambda_homeo 0 or log-uniform 0.1-20, lr log-uniform 0.01-0.2.

    python studies/digits.py
    ray submit cluster/aws-gpu.yaml studies/digits.py --data-dir ~/data/digits \
        --storage postgresql:///optuna --out ~/reports/digits

Every ``eqpop study`` flag works here (--trials, --timeout, --actors, --gpus-per-actor,
--storage, --out, --resume, --set KEY=VALUE). Run again to continue the study. The space lives
in ``eqpop/population/builtin.py``.
"""

import sys

from eqpop.population.cli import script_main

if __name__ == "__main__":
    sys.exit(script_main("digits", sys.argv[1:]))
