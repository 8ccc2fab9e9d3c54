"""Checks of PPX endpoints beyond their scheme: a tcp port must be one a socket can have.

libzmq reads a tcp port into 16 bits, so ``tcp://127.0.0.1:70000`` would silently become
port 4464; both sides (``rotalumis serve --address``, :class:`RemoteModel`) check first.
"""

from __future__ import annotations

__all__ = ["check_tcp_port"]

_MAX_PORT = 65535


def check_tcp_port(address: str) -> str:
    """Return ``address`` unchanged; raise if it is ``tcp://HOST:PORT`` with a bad port.

    ``PORT`` must be an integer from 1 to 65535, or ``*`` (a free port, when binding).
    Other schemes pass unchanged.

    Raises:
        ValueError: naming the address and the port.
    """
    if not isinstance(address, str) or not address.startswith("tcp://"):
        return address
    host, colon, port = address[len("tcp://") :].rpartition(":")
    if not colon or not host:
        raise ValueError(f"invalid PPX address {address!r}: a tcp address is tcp://HOST:PORT")
    if port == "*":
        return address
    if not port.isdigit() or not 0 < int(port) <= _MAX_PORT:
        raise ValueError(
            f"invalid PPX address {address!r}: port {port!r} is not a number from 1 to "
            f"{_MAX_PORT} (or * for a free port)"
        )
    return address
