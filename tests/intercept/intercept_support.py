"""Helpers for the intercept tests: run code under interception inside a model execution."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from rotalumis.core import FunctionModel, Trace
from rotalumis.intercept import intercept

HERE = Path(__file__).parent

P_MIN = 1e-3
"""Two-sample tests (seeded, so deterministic) must not reject at this level."""


def run_intercepted(
    fn: Callable[[], Any], seed: int = 0, check_escapes: bool = True
) -> tuple[Any, Trace]:
    """Run ``fn`` under interception as one model execution from the prior (followed by the
    escape check's two executions unless ``check_escapes`` is false)."""

    def forward() -> Any:
        with intercept(check_escapes=check_escapes):
            return fn()

    trace = FunctionModel(forward, "intercepted").get_trace(seed=seed)
    return trace.result, trace


def same_continuous(a: Any, b: Any, what: str) -> None:
    """Two-sample Kolmogorov-Smirnov test."""
    p = stats.ks_2samp(np.ravel(a).astype(float), np.ravel(b).astype(float)).pvalue
    assert p > P_MIN, f"{what}: KS p = {p:.2e}"


def same_discrete(a: Any, b: Any, what: str) -> None:
    """Chi-square test of homogeneity on the pooled categories (tiny ones merged)."""
    a, b = np.ravel(a), np.ravel(b)
    cats, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
    ca = np.bincount(inverse[: len(a)], minlength=len(cats))
    cb = np.bincount(inverse[len(a) :], minlength=len(cats))
    keep = (ca + cb) >= 10
    table = np.array([ca[keep], cb[keep]])
    rest = np.array([[ca[~keep].sum()], [cb[~keep].sum()]])
    if rest.sum() >= 10:
        table = np.hstack([table, rest])
    if table.shape[1] < 2:
        assert np.array_equal(np.unique(a), np.unique(b)), what
        return
    p = stats.chi2_contingency(table).pvalue
    assert p > P_MIN, f"{what}: chi-square p = {p:.2e}"


Z = 5.0
"""Posterior tolerances: 5 Monte Carlo standard errors."""


def check_normal_posterior(
    values: np.ndarray, weights: np.ndarray | None, mean: float, var: float, what: str
) -> None:
    """Posterior mean and second moment within ``Z`` Monte Carlo standard errors of a
    Normal(mean, var) posterior: Kish ESS for weighted samples (importance sampling), batch
    means (25 batches, which absorb the chain's autocorrelation) for MCMC samples."""
    values = np.asarray(values, dtype=float)
    if weights is None:
        kept = values[: len(values) // 25 * 25]
        m, second = float(values.mean()), float((values**2).mean())
        se = kept.reshape(25, -1).mean(axis=1).std(ddof=1) / 5.0
        se2 = (kept**2).reshape(25, -1).mean(axis=1).std(ddof=1) / 5.0
    else:
        w = np.asarray(weights, dtype=float)
        w = w / w.sum()
        ess = 1.0 / float(np.sum(w * w))
        m, second = float(np.sum(w * values)), float(np.sum(w * values**2))
        se = math.sqrt(float(np.sum(w * (values - m) ** 2)) / ess)
        se2 = math.sqrt(float(np.sum(w * (values**2 - second) ** 2)) / ess)
    assert abs(m - mean) < Z * se, f"{what}: mean {m:.4f} vs {mean:.4f} (se {se:.4f})"
    exact2 = var + mean**2
    assert abs(second - exact2) < Z * se2, f"{what}: E[x^2] {second:.4f} vs {exact2:.4f}"


def run_json_script(script: Path, *args: str, env: Mapping[str, str | None] = {}) -> Any:
    """Run ``script`` in a fresh interpreter (this folder importable, ``env`` changing the
    environment: ``None`` removes a variable) and parse the last line it prints as JSON."""
    environ = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), *sys.path]))
    for key, value in env.items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    proc = subprocess.run(
        [sys.executable, str(script), *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=HERE,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])
