"""MCMC effective sample sizes through ArviZ (autocorrelation-aware, rank-normalised).

The computation lives with the result (``Empirical.ess`` and its summary, in ``data/``, so
the Python API and the command line report the same figures); this module keeps the
per-variable view and the lazy ArviZ import the other diagnostics use.
"""

from __future__ import annotations

from typing import Any

from rotalumis.data.empirical import import_arviz

__all__ = ["import_arviz", "mcmc_ess"]


def mcmc_ess(result: Any) -> dict[str, float]:
    """Bulk ESS (ArviZ) of the result and each numeric named latent of an MCMC ``Empirical``
    (the smallest over elements of array values), as its summary reports them.

    Returns an empty dict for results that are not MCMC chains (``result.chains`` unset).
    """
    if result.chains is None:
        return {}
    summary = result.summary()
    return {
        label: float(row["ess"])
        for label, row in summary.items()
        if row.get("ess") is not None and "." not in label
    }
