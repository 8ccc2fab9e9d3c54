"""Fixtures of the command-line tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from forked_cli import ForkedCLI


@pytest.fixture(scope="session")
def cli() -> Iterator[ForkedCLI]:
    """``cli(*args, cwd=...)`` runs the real ``rotalumis`` command in a fresh forked process."""
    runner = ForkedCLI()
    yield runner
    runner.close()
