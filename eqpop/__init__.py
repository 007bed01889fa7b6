"""eqpop: equilibrium networks, every gradient estimator side by side, trained as a population."""

from eqpop.dynamics import Settled, settle
from eqpop.estimators import ESTIMATORS, Estimate, estimate
from eqpop.nets import NETS, get_net

__all__ = ["ESTIMATORS", "NETS", "Estimate", "Settled", "estimate", "get_net", "settle"]
__version__ = "0.1.0"
