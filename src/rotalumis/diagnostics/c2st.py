"""Classifier two-sample test (C2ST), computed as the sbibm benchmark computes it.

A classifier learns to tell samples of one distribution from samples of another; its
cross-validated accuracy is 0.5 when it cannot (the distributions agree) and 1 when it always
can. The settings follow sbibm 1.1.0's ``c2st`` (Lueckmann et al., AISTATS 2021), so numbers
are comparable with its published tables: both samples are standardised with the mean and
standard deviation (``ddof=1``) of the *reference* sample; scikit-learn's ``MLPClassifier``
with two ReLU hidden layers of ``10 * dim`` units, Adam, ``max_iter=10000`` and the seed as
``random_state``; 5-fold cross-validation on shuffled folds (``KFold(shuffle=True)``, same
seed); the mean accuracy over the folds. scikit-learn is imported only when it runs
(``pip install rotalumis[bench]``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["c2st"]


def _as_samples(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or len(arr) < 2:
        raise ValueError(
            f"c2st: {name} must be samples of shape (n, dim) with n >= 2, got {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise ValueError(f"c2st: {name} holds non-finite values")
    return arr


def c2st(reference: Any, samples: Any, seed: int = 1, folds: int = 5) -> float:
    """Cross-validated accuracy of a classifier telling ``samples`` from ``reference``.

    Args:
        reference: Reference samples ``(n, dim)`` (array, tensor); they set the
            standardisation.
        samples: The samples to judge, ``(m, dim)``.
        seed: Seed of the classifier's initialisation and of the folds (sbibm uses 1).
        folds: Cross-validation folds.

    Returns:
        The mean accuracy over the folds: about 0.5 for samples of the same distribution,
        up to 1.0 for distributions the classifier separates.

    Raises:
        ValueError: if the samples have different dimensions, are not finite, or are too
            few for the folds.
        ImportError: without scikit-learn.
    """
    from sklearn.model_selection import KFold
    from sklearn.neural_network import MLPClassifier

    x = _as_samples(reference, "reference")
    y = _as_samples(samples, "samples")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"c2st: reference has dimension {x.shape[1]}, samples {y.shape[1]}")
    if min(len(x), len(y)) < folds:
        raise ValueError(f"c2st: need at least {folds} samples of each kind")
    mean, std = x.mean(0), x.std(0, ddof=1)
    std = np.where(std > 0, std, 1.0)
    data = np.concatenate([(x - mean) / std, (y - mean) / std])
    target = np.concatenate([np.zeros(len(x)), np.ones(len(y))])
    width = 10 * x.shape[1]
    scores = []
    for train, test in KFold(n_splits=folds, shuffle=True, random_state=seed).split(data):
        clf = MLPClassifier(
            activation="relu",
            hidden_layer_sizes=(width, width),
            max_iter=10000,
            solver="adam",
            random_state=seed,
        )
        clf.fit(data[train], target[train])
        scores.append(float(np.mean(clf.predict(data[test]) == target[test])))
    return float(np.mean(scores))
