"""Table 1 and Fig. 3-4: the 784-256-256-10 MLP on Fashion-MNIST (fmnist-mlp preset), from
symmetric to independent feedback; 64 trials, 4 actors sharing a GPU (0.25 each).

Search space: method {classic, hep}, |beta| log-uniform 0.05-1, N in {2, 4, 6, 8} (hep only),
lambda_homeo 0 or log-uniform 0.1-20, initial asymmetry {0, 30, 60, 90} degrees,
lr log-uniform 3e-3-3e-2.

    python studies/fashion_mnist.py --data-dir DIR   # the four IDX files

Flags, cluster use and where the space lives: studies/README.md.
"""

import sys

from eqpop.cli import script_main

if __name__ == "__main__":
    sys.exit(script_main("fashion_mnist", sys.argv[1:]))
