"""MCMC effective sample sizes through ArviZ (autocorrelation-aware, rank-normalised)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["chain_array", "import_arviz", "mcmc_ess"]


def import_arviz() -> Any:
    """Import ArviZ without its import-time FutureWarning about the 1.x refactor (we pin the
    0.23 line, the newest for Python 3.11; the warning is not actionable for users)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module="arviz")
        import arviz

    return arviz


def chain_array(values: np.ndarray, lengths: list[int]) -> np.ndarray | None:
    """Reshape concatenated chains into ``(chains, draws)``; ``None`` if lengths differ."""
    if not lengths or len(set(lengths)) != 1 or sum(lengths) != len(values):
        return None
    return values.reshape(len(lengths), lengths[0])


def mcmc_ess(result: Any) -> dict[str, float]:
    """Bulk ESS (ArviZ) of the result and each scalar named latent of an MCMC ``Empirical``.

    Returns an empty dict for results that are not MCMC chains (no ``metadata["chains"]``).
    """
    chains = result.metadata.get("chains")
    if not chains:
        return {}
    az = import_arviz()
    lengths = [int(c["length"]) for c in chains]
    out: dict[str, float] = {}
    items = [("result", result)]
    items += [(name, result.get(name)) for name in result.latent_names]
    for label, emp in items:
        try:
            values = np.asarray(emp.to_numpy(), dtype=float)
        except (TypeError, ValueError):
            continue
        if values.ndim != 1:
            continue
        arr = chain_array(values, lengths)
        if arr is None or arr.shape[1] < 4:
            continue
        if np.ptp(arr) == 0:
            out[label] = 1.0  # a chain that never moved carries one sample's information
            continue
        out[label] = float(az.ess(arr, method="bulk"))
    return out
