"""Observations and reference posterior samples of the sbibm tasks, read from sbibm's wheel.

sbibm (Lueckmann et al., AISTATS 2021) ships, for each task and each of its ten
observations, the observed data (``observation.csv``) and 10,000 reference posterior samples
(``reference_posterior_samples.csv.bz2``) as data files of its wheel. sbibm itself is never
imported (its dependencies are stale): the wheel is fetched with
``pip download sbibm==1.1.0 --no-deps`` into ``build/sbibm/`` and read as a zip file.
"""

from __future__ import annotations

import bz2
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["SBIBM_VERSION", "observation", "reference_samples", "sbibm_wheel", "true_parameters"]

SBIBM_VERSION = "1.1.0"
CACHE = Path(__file__).resolve().parent.parent / "build" / "sbibm"


def sbibm_wheel(cache: Path = CACHE) -> Path:
    """The sbibm wheel, downloaded (once) with pip if it is not in ``cache``."""
    found = sorted(cache.glob(f"sbibm-{SBIBM_VERSION}-*.whl"))
    if not found:
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache),
             f"sbibm=={SBIBM_VERSION}"],
            check=True,
        )  # fmt: skip
        found = sorted(cache.glob(f"sbibm-{SBIBM_VERSION}-*.whl"))
    if not found:
        raise FileNotFoundError(f"no sbibm {SBIBM_VERSION} wheel in {cache}")
    return found[0]


def _csv(task: str, num_observation: int, name: str) -> np.ndarray:
    if not 1 <= num_observation <= 10:
        raise ValueError(f"sbibm observations are numbered 1..10, got {num_observation}")
    member = f"sbibm/tasks/{task}/files/num_observation_{num_observation}/{name}"
    with zipfile.ZipFile(sbibm_wheel()) as wheel:
        try:
            raw = wheel.read(member)
        except KeyError:
            raise KeyError(f"sbibm {SBIBM_VERSION} has no file {member}") from None
    if name.endswith(".bz2"):
        raw = bz2.decompress(raw)
    return np.loadtxt(io.StringIO(raw.decode()), delimiter=",", skiprows=1, ndmin=2)


def observation(task: str, num_observation: int) -> np.ndarray:
    """The observed data, shape ``(dim_x,)``."""
    return _csv(task, num_observation, "observation.csv")[0]


def true_parameters(task: str, num_observation: int) -> np.ndarray:
    """The parameters the observation was simulated from, shape ``(dim_theta,)``."""
    return _csv(task, num_observation, "true_parameters.csv")[0]


def reference_samples(task: str, num_observation: int) -> np.ndarray:
    """The 10,000 reference posterior samples, shape ``(10000, dim_theta)``."""
    return _csv(task, num_observation, "reference_posterior_samples.csv.bz2")
