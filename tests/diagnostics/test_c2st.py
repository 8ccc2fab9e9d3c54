"""C2ST as sbibm computes it: about 0.5 for samples of one distribution, about 1 apart."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rotalumis.diagnostics import c2st


def test_same_distribution_scores_one_half() -> None:
    rng = np.random.default_rng(0)
    cov = [[1.0, 0.8], [0.8, 1.0]]
    a = rng.multivariate_normal([0, 0], cov, 1500)
    b = rng.multivariate_normal([0, 0], cov, 1500)
    # accuracy of a 3000-sample test is within 0.5 +- 0.03 (3 sd) for indistinguishable
    # samples; the classifier's own overfitting only lowers it
    assert abs(c2st(a, b) - 0.5) < 0.04


def test_separated_distributions_score_one() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(0.0, 1.0, (1500, 3))
    b = rng.normal(0.0, 1.0, (1500, 3)) + np.array([6.0, 0.0, 0.0])
    assert c2st(torch.as_tensor(a), b) > 0.99


def test_a_shifted_distribution_scores_in_between() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(0.0, 1.0, (1500, 2))
    b = rng.normal(0.0, 1.0, (1500, 2)) + np.array([1.0, 0.0])
    # the Bayes classifier of N(0, 1) vs N(1, 1) is right with probability Phi(1/2) = 0.69
    assert 0.64 < c2st(a, b) < 0.72


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="reference has dimension 2, samples 3"):
        c2st(np.zeros((10, 2)), np.zeros((10, 3)))
    with pytest.raises(ValueError, match="samples holds non-finite values"):
        c2st(np.zeros((10, 2)), np.full((10, 2), np.nan))
    with pytest.raises(ValueError, match="at least 5 samples"):
        c2st(np.zeros((3, 2)), np.zeros((10, 2)))
