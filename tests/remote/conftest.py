"""Fixtures of the PPX tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from ppx_helpers import PYPROB_PYTHON, ROOT


@pytest.fixture(scope="session")
def pyprob_python() -> Path:
    """The interpreter of ``.venv-pyprob`` (pyprob 1.5.0), built with make if missing."""
    if not PYPROB_PYTHON.exists():
        try:
            subprocess.run(
                ["make", "pyprob-venv"], cwd=ROOT, check=True, capture_output=True, timeout=900
            )
        except (OSError, subprocess.SubprocessError) as exc:
            pytest.skip(f"cannot create .venv-pyprob with `make pyprob-venv`: {exc}")
    check = subprocess.run(
        [str(PYPROB_PYTHON), "-c", "import pyprob; assert pyprob.__version__ == '1.5.0'"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check.returncode != 0:
        pytest.skip(f".venv-pyprob has no working pyprob 1.5.0: {check.stderr[-500:]}")
    return PYPROB_PYTHON
