"""Table 2: the paper's ConvNet with hEP and homeostasis on ImageNet 32x32
(imagenet32-conv preset); 16 trials, one GPU per actor, Hyperband pruning.

Search space: |beta| log-uniform 0.1-2, N in {2, 4, 6, 8}, lambda_homeo 0 or log-uniform 0.1-20,
lr log-uniform 2e-3-2e-2.

    python studies/imagenet32.py --data-dir DIR      # the npz or the pickled batches

Flags, cluster use and where the space lives: studies/README.md.
"""

import sys

from eqpop.cli import script_main

if __name__ == "__main__":
    sys.exit(script_main("imagenet32", sys.argv[1:]))
