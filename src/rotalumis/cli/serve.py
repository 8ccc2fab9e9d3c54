"""``rotalumis serve FILE.py:MODEL --address ADDR``: serve a model to PPX engines.

Register on the app with ``app.command("serve")(serve_command)``; also runnable on its own as
``python -m rotalumis.cli.serve FILE.py:MODEL --address ADDR``.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from rotalumis.core import RotalumisError
from rotalumis.core.limits import limit_traces
from rotalumis.remote.endpoint import check_tcp_port
from rotalumis.remote.server import DEFAULT_ADDRESS, PPXServer
from rotalumis.remote.zmq_transport import ZMQServerTransport

from .loading import CommandError, load_model
from .options import MaxChoices, MaxSeconds, limit_options

__all__ = ["serve_command"]


def serve_command(
    target: Annotated[str, typer.Argument(help="The model: FILE.py:NAME")],
    address: Annotated[
        str,
        typer.Option(
            "--address",
            "-a",
            help="ZeroMQ endpoint to bind: ipc://@NAME, ipc://PATH or tcp://127.0.0.1:PORT "
            "(tcp://*:PORT listens on every interface)",
        ),
    ] = DEFAULT_ADDRESS,
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
        limits = limit_options(max_choices, max_seconds)
        check_tcp_port(address)
        model = load_model(target)
        server = PPXServer(model, ZMQServerTransport(address), seed=seed)
    except (CommandError, RotalumisError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        typer.echo(f"serving {model.name} over PPX at {server.transport.address} (Ctrl-C stops)")
        with limit_traces(**limits):  # each execution of the served model
            server.serve_forever()
    except KeyboardInterrupt:
        typer.echo("stopped", err=True)
        raise typer.Exit(130) from None


if __name__ == "__main__":
    typer.run(serve_command)
