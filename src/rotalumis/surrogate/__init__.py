"""Layer L2/L3 — probabilistic surrogate networks (Munk et al., UAI 2022).

A surrogate is a learned program with the simulator's address structure: at each step an
LSTM over the sites visited so far predicts the next address (or the end of the trace, or
"unknown") and the distribution of the value drawn there, with the inference network's value
heads. It then stands in for the simulator wherever a model is used.

* :func:`train_surrogate` with :class:`SurrogateConfig` and :class:`SurrogateTraining` —
  learn from prior traces, simulated from a model (remote PPX models included) or read from
  a :class:`~rotalumis.data.TraceDataset`;
* :class:`SurrogateModel` — the trained surrogate as a :class:`~rotalumis.core.Model`
  (same addresses, names and observe sites; falls back to the simulator on "unknown");
* :class:`SurrogateEnsemble` — several surrogates of one simulator as one model (a uniform
  mixture: each execution runs one member), so that training randomness averages out;
* :class:`SurrogateNetwork` — the network, saved and loaded like the inference network;
* :func:`simulate_steps`, :func:`trace_type`, :class:`Step`, :class:`SiteFilter` — traces
  as the sequences of sites a surrogate learns.

Fidelity tools (trace-type frequencies, per-address C2ST, plots) live in
:mod:`rotalumis.diagnostics` (``compare_surrogate``), above this layer.

Imports :mod:`rotalumis.core`, :mod:`rotalumis.data` and :mod:`rotalumis.nn`.
"""

from ._sequence import SiteFilter, Step, trace_type
from ._sites import LearnedDistribution
from .ensemble import SurrogateEnsemble
from .model import SurrogateModel, SurrogateStats
from .network import SurrogateConfig, SurrogateNetwork
from .training import SurrogateTraining, TrainedSurrogate, simulate_steps, train_surrogate

__all__ = [
    "LearnedDistribution",
    "SiteFilter",
    "Step",
    "SurrogateConfig",
    "SurrogateEnsemble",
    "SurrogateModel",
    "SurrogateNetwork",
    "SurrogateStats",
    "SurrogateTraining",
    "TrainedSurrogate",
    "simulate_steps",
    "trace_type",
    "train_surrogate",
]
