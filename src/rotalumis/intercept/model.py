""":class:`InterceptedModel`: a model made of an unmodified simulator function."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rotalumis.core import Distribution, Model, observe, sample

from .context import Intercept

__all__ = ["InterceptedModel"]

Likelihood = Callable[[Any], Distribution]


class InterceptedModel(Model):
    """Run ``simulator`` under interception, with named priors and observed outputs.

    One execution: each parameter in ``priors`` is sampled (named, so it is reported in the
    posterior) and passed to ``simulator`` as a keyword argument; the simulator runs
    unmodified with every ``random`` / ``numpy.random`` / ``torch`` draw intercepted; then for each
    ``name, likelihood`` in ``observe`` the simulator's output is observed through
    ``likelihood(output)`` under ``name``. The execution returns the simulator's output
    (or ``result(output)``).

    Args:
        simulator: The unmodified simulator function.
        priors: Prior distributions of the simulator's keyword parameters, by name.
        observe: Likelihood of each named observation given the simulator's output.
        names: Names for intercepted draws, ``{name: address pattern}`` (see
            :func:`~rotalumis.intercept.intercept`): the simulator's own latent draws
            reported in the posterior.
        observed: Intercepted draws that are the data, ``{name: address pattern}``: the
            simulator's own noise draw becomes the likelihood of the observation ``name``.
        result: Maps the simulator's output to the value an execution returns (default:
            the output itself); keep it small, engines store one per sample.
        name: Model name (default: the simulator's name).
        check_escapes: Check once, after the first execution, that two executions with one
            seed agree (see :func:`~rotalumis.intercept.intercept`); ``False`` turns it off.

    Example:
        >>> import numpy as np
        >>> from rotalumis.core import Normal
        >>> def simulate(theta):
        ...     return theta + np.random.normal(0.0, 1.0)
        >>> m = InterceptedModel(
        ...     simulate,
        ...     priors={"theta": Normal(0.0, 1.0)},
        ...     observe={"y": lambda out: Normal(out, 0.1)},
        ... )
        >>> posterior = m.posterior(100, engine="is", observe={"y": 1.0}, seed=0)
    """

    def __init__(
        self,
        simulator: Callable[..., Any],
        priors: Mapping[str, Distribution] | None = None,
        observe: Mapping[str, Likelihood] | None = None,
        names: Mapping[str, str] | None = None,
        observed: Mapping[str, str] | None = None,
        result: Callable[[Any], Any] | None = None,
        name: str | None = None,
        check_escapes: bool = True,
    ) -> None:
        if not callable(simulator):
            raise TypeError(f"simulator must be callable, got {simulator!r}")
        super().__init__(name or getattr(simulator, "__name__", "simulator"))
        self.simulator = simulator
        self.priors = dict(priors or {})
        self.likelihoods = dict(observe or {})
        self._intercept = Intercept(names, observed, check_escapes)  # validated now
        self.names = dict(names or {})
        self.observed = dict(observed or {})
        self.result = result
        for key, dist in self.priors.items():
            if not isinstance(dist, Distribution):
                raise TypeError(f"prior {key!r} must be a Distribution, got {dist!r}")
        for key, fn in self.likelihoods.items():
            if not callable(fn):
                raise TypeError(f"observation {key!r} needs a callable output -> Distribution")

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        params = {key: sample(dist, name=key, address=key) for key, dist in self.priors.items()}
        with self._intercept._fresh():
            output = self.simulator(*args, **params, **kwargs)
        for key, likelihood in self.likelihoods.items():
            observe(likelihood(output), name=key, address=key)
        return output if self.result is None else self.result(output)
