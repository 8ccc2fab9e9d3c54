"""Helpers for the intercept tests: run code under interception inside a model execution."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import stats

from rotalumis.core import FunctionModel, Trace
from rotalumis.intercept import intercept

P_MIN = 1e-3
"""Two-sample tests (seeded, so deterministic) must not reject at this level."""


def run_intercepted(fn: Callable[[], Any], seed: int = 0) -> tuple[Any, Trace]:
    """Run ``fn`` under interception as one model execution from the prior."""

    def forward() -> Any:
        with intercept():
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
