"""Models of ``bench_scale.py`` (a module, so Dask workers and ``rotalumis serve`` import it)."""

from __future__ import annotations

import os
import time

from rotalumis.core import Model, Normal, observe, sample


def busy(seconds: float) -> None:
    """Burn ``seconds`` of this thread's CPU time (a simulator that computes)."""
    end = time.thread_time() + seconds
    x = 0.0
    while time.thread_time() < end:
        for i in range(200):
            x += i * 1e-9


class CpuBound(Model):
    """Unknown mean whose simulator computes for ~2 ms per execution."""

    def forward(self) -> float:
        mu = sample(Normal(0.0, 1.0), name="mu")
        busy(0.002)
        observe(Normal(mu, 1.0), name="y")
        return float(mu)


class LatencyBound(Model):
    """Unknown mean whose simulator waits ``SCALE_SLEEP`` seconds (default 50 ms) per
    execution without using the CPU (as on I/O or a remote service)."""

    def forward(self) -> float:
        mu = sample(Normal(0.0, 1.0), name="mu")
        time.sleep(float(os.environ.get("SCALE_SLEEP", "0.05")))
        observe(Normal(mu, 1.0), name="y")
        return float(mu)


class Fast(Model):
    """Unknown mean with nothing else: engine overhead only (~tens of microseconds)."""

    def forward(self) -> float:
        mu = sample(Normal(0.0, 1.0), name="mu")
        observe(Normal(mu, 1.0), name="y")
        return float(mu)
