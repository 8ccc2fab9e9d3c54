"""A discrete-state hidden Markov model with Gaussian emissions (16 observations)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rotalumis.core import Categorical, Model, Normal, observe, sample

__all__ = ["HiddenMarkovModel"]

DEFAULT_OBSERVATIONS = (
    0.9, 0.8, 0.7, 0.0, -0.025, -5.0, -2.0, -0.1,
    0.0, 0.13, 0.45, 6.0, 0.2, 0.3, -1.0, -1.0,
)  # fmt: skip


class HiddenMarkovModel(Model):
    """Three hidden states; ``state{t}`` latents, ``obs{t} ~ Normal(means[state{t}], 1)``.

    The result is the tensor of the 16 states. Exact posterior marginals by
    forward-backward (:meth:`exact_marginals`).
    """

    def __init__(self, num_steps: int = 16) -> None:
        super().__init__("HiddenMarkovModel")
        self.num_steps = num_steps
        self.initial = [1.0 / 3, 1.0 / 3, 1.0 / 3]
        self.transition = [[0.1, 0.5, 0.4], [0.2, 0.2, 0.6], [0.15, 0.15, 0.7]]
        self.means = [-1.0, 1.0, 0.0]
        self.std = 1.0

    def forward(self) -> torch.Tensor:
        states = []
        probs = self.initial
        for t in range(self.num_steps):
            s = sample(Categorical(probs), name=f"state{t}")
            observe(Normal(self.means[s], self.std), name=f"obs{t}")
            states.append(s)
            probs = self.transition[s]
        return torch.tensor(states)

    def observations(self, values: Sequence[float] = DEFAULT_OBSERVATIONS) -> dict[str, float]:
        """The ``observe=`` mapping for a sequence of observed values."""
        return {f"obs{t}": float(v) for t, v in enumerate(values)}

    def exact_marginals(self, values: Sequence[float] = DEFAULT_OBSERVATIONS) -> torch.Tensor:
        """``P(state_t = s | all observations)`` as a (num_steps, 3) tensor."""
        y = torch.tensor([float(v) for v in values], dtype=torch.float64)
        means = torch.tensor(self.means, dtype=torch.float64)
        z = (y[:, None] - means) / self.std
        emit = torch.exp(-0.5 * z * z)  # Gaussian likelihoods up to a common constant
        trans = torch.tensor(self.transition, dtype=torch.float64)
        n = len(values)
        alpha = torch.zeros(n, 3, dtype=torch.float64)
        a = torch.tensor(self.initial, dtype=torch.float64) * emit[0]
        alpha[0] = a / a.sum()
        for t in range(1, n):
            a = (alpha[t - 1] @ trans) * emit[t]
            alpha[t] = a / a.sum()
        beta = torch.ones(n, 3, dtype=torch.float64)
        for t in range(n - 2, -1, -1):
            b = trans @ (emit[t + 1] * beta[t + 1])
            beta[t] = b / b.sum()
        post = alpha * beta
        return post / post.sum(dim=1, keepdim=True)
