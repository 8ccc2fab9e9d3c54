"""L4 diagnostics: plots (more to come: ArviZ diagnostics, address graphs, reports)."""

from .plots import plot_posterior

__all__ = ["plot_posterior"]
