"""The default study: the digits-mlp preset narrowed to 64-64-32-10 (damped, dt 0.5, T_free
40; started symmetric) for 10 epochs, 24 trials on 2 CPU actors, median pruning; about 3
minutes on a laptop.

Search space: method {classic, hep}, |beta| log-uniform 0.05-1, N in {2, 4, 6, 8} (hep only),
lambda_homeo 0 or log-uniform 0.1-20, lr log-uniform 0.01-0.2.

    python studies/digits.py

Flags, cluster use and where the space lives: studies/README.md.
"""

import sys

from eqpop.cli import script_main

if __name__ == "__main__":
    sys.exit(script_main("digits", sys.argv[1:]))
