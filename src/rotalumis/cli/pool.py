"""``rotalumis pool --n N -- PROGRAM ARGS... {address}``: start N PPX simulator processes.

Prints the address of each (one per line, after a ``pool:`` line) and keeps them running
until Ctrl-C or SIGTERM, which stop them all; a process that exits on its own is reported
on stderr. Give the addresses to ``RemoteModel([...])`` to spread work units over them.
"""

from __future__ import annotations

import signal
import time
from types import FrameType
from typing import Annotated

import typer

from rotalumis.remote import SimulatorPool

from .loading import CommandError, fail

__all__ = ["pool_command"]


class _Stop(BaseException):
    """SIGTERM arrived: stop the simulators."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Stop()


def pool_command(
    command: Annotated[
        list[str],
        typer.Argument(help="the simulator program and its arguments, with {address}"),
    ],
    n: Annotated[int, typer.Option("--n", help="number of simulator processes")] = 2,
    tcp: Annotated[
        str | None,
        typer.Option(
            help="serve at tcp://HOST:PORT, PORT+1, ... (e.g. 0.0.0.0:5600) instead of "
            "private ipc:// addresses (for engines on other machines)"
        ),
    ] = None,
) -> None:
    """Start N simulator processes, each at its own address (put {address} in COMMAND)."""
    try:
        addresses = None
        if tcp is not None:
            host, _, port = tcp.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) <= 65535 - n:
                raise CommandError(f"--tcp must be HOST:PORT with a free port range, got {tcp!r}")
            addresses = [f"tcp://{host}:{int(port) + i}" for i in range(n)]
        pool = SimulatorPool(command, n, addresses)
    except (CommandError, ValueError) as exc:
        fail(exc)
    except OSError as exc:
        fail(f"cannot start {command[0]!r}: {exc.strerror or exc}")
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        typer.echo(f"pool: {n} simulators of {' '.join(command)}")
        for address in pool.addresses:
            typer.echo(address)
        reported: set[str] = set()
        while len(reported) < n:
            for address, code in pool.exited():
                if address not in reported:
                    reported.add(address)
                    typer.echo(f"simulator at {address} exited with status {code}", err=True)
            time.sleep(0.2)
    except (KeyboardInterrupt, _Stop):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        pool.close()
