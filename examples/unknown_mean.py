"""Gaussian with unknown mean, as a file for the command line:

    rotalumis run examples/unknown_mean.py:model --engine is -n 10000 \
        --observe obs0=8 --observe obs1=9 --seed 0 --out results/unknown_mean
"""

import math

import rotalumis as rl


class UnknownMean(rl.Model):
    """mu ~ Normal(1, sqrt 5); obs0, obs1 ~ Normal(mu, sqrt 2)."""

    def forward(self):
        mu = rl.sample(rl.Normal(1.0, math.sqrt(5.0)), name="mu")
        rl.observe(rl.Normal(mu, math.sqrt(2.0)), name="obs0")
        rl.observe(rl.Normal(mu, math.sqrt(2.0)), name="obs1")
        return mu


model = UnknownMean()
