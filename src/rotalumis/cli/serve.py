"""``rotalumis serve FILE.py:MODEL --address ADDR``: serve a model to PPX engines.

Register on the app with ``app.command("serve")(serve_command)``; also runnable on its own as
``python -m rotalumis.cli.serve FILE.py:MODEL --address ADDR``.

SIGTERM (what ``kill``, ``timeout``, SLURM and systemd send) stops the server as Ctrl-C does:
the socket is closed and a socket file removed; the exit status is 143 (130 for Ctrl-C).
"""

from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import Annotated

import typer

from rotalumis.core import RotalumisError
from rotalumis.core.limits import limit_traces
from rotalumis.remote import private_address
from rotalumis.remote.endpoint import check_tcp_port
from rotalumis.remote.server import DEFAULT_ADDRESS, PPXServer
from rotalumis.remote.zmq_transport import ZMQServerTransport

from .loading import CommandError, fail, load_model
from .options import MaxChoices, MaxSeconds, limit_options

__all__ = ["serve_command"]


class _Terminated(BaseException):
    """SIGTERM arrived: unwind past the model's handlers, close the socket, exit 143."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated()


def serve_command(
    target: Annotated[str, typer.Argument(help="The model: FILE.py:NAME")],
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            "-a",
            help="ZeroMQ endpoint to bind: ipc://@NAME, ipc:///DIR/NAME.sock or "
            "tcp://127.0.0.1:PORT (tcp://*:PORT listens on every interface) "
            f"[default: {DEFAULT_ADDRESS}, reachable by every local user]",
            show_default=False,
        ),
    ] = None,
    private: Annotated[
        bool,
        typer.Option(
            "--private",
            help="listen on a socket only you can reach: NAME.sock in a 0700 directory "
            "($XDG_RUNTIME_DIR/rotalumis or /tmp/rotalumis-UID); for shared machines",
        ),
    ] = False,
    seed: Annotated[
        int | None, typer.Option(help="seed for draws the engine does not make")
    ] = None,
    max_choices: MaxChoices = None,
    max_seconds: MaxSeconds = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="log warnings only")] = False,
) -> None:
    """Serve MODEL over PPX so that any PPX engine (rotalumis, pyprob...) can drive it."""
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
    )
    try:
        if private and address is not None:
            raise CommandError("give --address or --private, not both")
        limits = limit_options(max_choices, max_seconds)
        if address is not None:
            check_tcp_port(address)  # before loading the model
        model = load_model(target)
        endpoint = private_address(model.name) if private else address or DEFAULT_ADDRESS
        server = PPXServer(model, ZMQServerTransport(endpoint), seed=seed)
    except (CommandError, RotalumisError, ValueError) as exc:
        fail(exc)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        typer.echo(f"serving {model.name} over PPX at {server.transport.address} (Ctrl-C stops)")
        with limit_traces(**limits):  # each execution of the served model
            server.serve_forever()
    except KeyboardInterrupt:
        typer.echo("stopped", err=True)
        raise typer.Exit(130) from None
    except _Terminated:
        typer.echo("terminated", err=True)
        raise typer.Exit(128 + signal.SIGTERM) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    typer.run(serve_command)
