"""Population-based training on digits: the default study's net and space (method, |beta|, N for
hEP, lambda_homeo, lr), 4 members trained at once on 4 half-CPU actors, each lineage 10 epochs;
every 2 epochs a member in the bottom quarter takes a top member's checkpoint and goes on with
its settings perturbed. A minute or two on 2 cores.

    python studies/digits-pbt.py
    eqpop report reports/digits-pbt                     # the lineages' schedules
    eqpop train --replay reports/digits-pbt --trial K   # one lineage, retrained from scratch

Flags, cluster use and where the space lives: studies/README.md; PBT: README.md.
"""

import sys

from eqpop.cli import script_main

if __name__ == "__main__":
    sys.exit(script_main("digits-pbt", sys.argv[1:]))
