"""Table 2: the paper's ConvNet (128-256-512-512) with hEP and homeostasis on CIFAR-10
(cifar10-conv preset); 32 trials, one GPU per actor, Hyperband pruning.

Search space: |beta| log-uniform 0.1-2, N in {2, 4, 6, 8}, lambda_homeo 0 or log-uniform 0.1-20,
lr log-uniform 2e-3-2e-2.

    python studies/cifar10.py --data-dir DIR         # cifar-10-batches-py/ inside

Flags, cluster use and where the space lives: studies/README.md.
"""

import sys

from eqpop.cli import script_main

if __name__ == "__main__":
    sys.exit(script_main("cifar10", sys.argv[1:]))
