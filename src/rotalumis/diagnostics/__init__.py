"""L4 diagnostics: see what an inference run did, without changing its results.

* ArviZ export and diagnostics: :func:`to_inference_data`, :func:`convergence_table`
  (rank-normalised split R-hat, bulk/tail ESS, MCSE), :func:`autocorrelation`,
  :func:`rhat_evolution`, :func:`importance_diagnostics` (ESS, Pareto ``k``);
  :func:`weight_sources` (which sites' terms make importance weights heavy).
* Plots (matplotlib, Agg): :func:`plot_posterior`, :func:`plot_traces`,
  :func:`plot_log_prob`, :func:`plot_autocorrelation`, :func:`plot_rhat_evolution`,
  :func:`plot_pair`; :func:`plot_training` (an inference network's learning curve).
* Address structure: :class:`AddressStructure` (trace types, address ids, transition
  graphs), rendered by Graphviz with :func:`to_dot` / :func:`render_dot`.
* :func:`c2st`: the classifier two-sample test of the sbibm benchmark (scikit-learn).
* Surrogates: :func:`compare_surrogate` (trace-type TV, per-address C2ST, fallbacks) giving a
  :class:`SurrogateFidelity` with plots; saved in a run directory it becomes a report section.
* :func:`write_report`: one self-contained HTML page from a ``rotalumis run`` directory.
* Calibration across observations: :func:`calibrate` (simulation-based calibration ranks
  and TARP coverage of an inference network's posteriors) giving a
  :class:`CalibrationResult` (chi-square tests of uniform ranks), drawn by
  :func:`plot_rank_histograms` and :func:`plot_coverage`, reported by
  :func:`write_calibration_report`.
"""

from .address_graph import GraphvizError, graphviz_available, render_dot, to_dot
from .addresses import AddressGraph, AddressStructure, SiteInfo, TraceTypeRow
from .c2st import c2st
from .calibration import CalibrationResult, calibrate
from .calibration_plots import plot_coverage, plot_rank_histograms, write_calibration_report
from .chain_plots import (
    plot_autocorrelation,
    plot_log_prob,
    plot_pair,
    plot_rhat_evolution,
    plot_traces,
)
from .convergence import (
    PARETO_K_MAX,
    RHAT_MAX,
    autocorrelation,
    convergence_table,
    convergence_warnings,
    importance_diagnostics,
    importance_warnings,
    rhat_evolution,
)
from .inference_data import to_inference_data
from .plots import plot_posterior
from .report import save_address_structure, write_report
from .surrogate_fidelity import SurrogateFidelity, compare_surrogate
from .training_plots import plot_training
from .weight_sources import WeightSource, weight_sources

__all__ = [
    "PARETO_K_MAX",
    "RHAT_MAX",
    "AddressGraph",
    "AddressStructure",
    "CalibrationResult",
    "GraphvizError",
    "SiteInfo",
    "SurrogateFidelity",
    "TraceTypeRow",
    "WeightSource",
    "autocorrelation",
    "c2st",
    "calibrate",
    "compare_surrogate",
    "convergence_table",
    "convergence_warnings",
    "graphviz_available",
    "importance_diagnostics",
    "importance_warnings",
    "plot_autocorrelation",
    "plot_coverage",
    "plot_log_prob",
    "plot_pair",
    "plot_posterior",
    "plot_rank_histograms",
    "plot_rhat_evolution",
    "plot_traces",
    "plot_training",
    "render_dot",
    "rhat_evolution",
    "save_address_structure",
    "to_dot",
    "to_inference_data",
    "weight_sources",
    "write_calibration_report",
    "write_report",
]
