"""Start a pool of PPX simulator processes: :class:`SimulatorPool`.

A simulator in another language is a program that serves PPX at an address it is given.
``SimulatorPool(["./my_simulator", "{address}"], n=8)`` starts eight of them, each with its
own address in place of ``{address}``; ``pool.model()`` is a :class:`~.client.RemoteModel`
over all of them, whose engines spread independent work units across the processes.
``rotalumis pool --n 8 -- ./my_simulator {address}`` does the same from the shell.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from .client import RemoteModel

__all__ = ["SimulatorPool"]

PLACEHOLDER = "{address}"


class SimulatorPool:
    """``n`` simulator processes, each started from ``command`` with its own address.

    Args:
        command: The program and its arguments; ``{address}`` (in one or more arguments) is
            replaced by the process's address.
        n: Number of processes.
        addresses: The addresses to use (default: fresh abstract-namespace IPC addresses,
            ``ipc://@rotalumis-pool-...``; give ``tcp://...`` ones to serve other machines).
        env: Extra environment variables of the processes.

    Raises:
        ValueError: without ``{address}`` in the command, for ``n < 1``, or for a list of
            addresses whose length is not ``n``.
        OSError: when the program cannot be started (the processes started so far are
            stopped).

    Example:
        >>> with SimulatorPool(["./my_simulator", "{address}"], n=4) as pool:  # doctest: +SKIP
        ...     post = pool.model(timeout=30).posterior(10_000, observe={"y": 1.0})
    """

    def __init__(
        self,
        command: Sequence[str],
        n: int,
        addresses: Sequence[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        command = list(command)
        if not any(PLACEHOLDER in part for part in command):
            raise ValueError(
                f"the simulator command {command!r} has no {PLACEHOLDER} placeholder for "
                "the address each process serves at"
            )
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive number of processes, got {n!r}")
        if addresses is None:
            tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
            addresses = [f"ipc://@rotalumis-pool-{tag}-{i}" for i in range(n)]
        if len(addresses) != n:
            raise ValueError(f"{len(addresses)} addresses given for {n} processes")
        self.addresses = list(addresses)
        self.processes: list[subprocess.Popen[bytes]] = []
        try:
            for address in self.addresses:
                argv = [part.replace(PLACEHOLDER, address) for part in command]
                self.processes.append(subprocess.Popen(argv, env={**os.environ, **(env or {})}))
        except BaseException:
            self.close()
            raise

    def model(self, timeout: float | None = 60.0, **options: Any) -> RemoteModel:
        """A :class:`RemoteModel` over every process of the pool (handshakes each; a process
        still starting is waited for up to ``timeout`` seconds)."""
        return RemoteModel(self.addresses, timeout=timeout, **options)

    def exited(self) -> list[tuple[str, int]]:
        """``(address, exit status)`` of the processes that have exited."""
        return [
            (address, code)
            for address, proc in zip(self.addresses, self.processes, strict=False)
            if (code := proc.poll()) is not None
        ]

    def close(self, timeout: float = 10.0) -> None:
        """Stop the processes: SIGTERM, then SIGKILL after ``timeout`` seconds."""
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __enter__(self) -> SimulatorPool:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SimulatorPool(n={len(self.processes)}, addresses={self.addresses!r})"
