"""File-system IPC sockets: never take over a live server's path; clean up after ourselves.

libzmq binds ``ipc:///path`` by first unlinking whatever is at ``path``, so a second server
on the same path would silently take it over (the first keeps running, unreachable), and it
would even delete a regular file given by mistake. :class:`SocketFile` guards the bind:

* under an exclusive ``flock`` on ``path.lock`` (so that two servers starting at once are
  serialised; the lock file is removed again right after binding), it refuses a path that
  holds anything but a socket, and a socket that accepts connections (a live server):
  "address already in use", as for ``ipc://@name`` and tcp;
* a socket nobody listens on (a server killed with ``kill -9``) is stale and replaced;
* after binding, the socket is made ``0600`` (only its owner may connect);
* :meth:`SocketFile.release` removes the socket file on close, if it is still ours (the same
  inode), since libzmq leaves it behind when the process exits soon after closing.

Abstract addresses (``ipc://@name``) have no file and need none of this.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import socket
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rotalumis.core.errors import RemoteSimulatorError

__all__ = ["SocketFile", "ipc_path", "private_address", "private_directory"]

_LOCK_WAIT_S = 5.0
_PROBE_TIMEOUT_S = 1.0
_LOCK_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


def ipc_path(address: str) -> Path | None:
    """The socket file of an ``ipc://`` address; ``None`` for abstract, wildcard or non-ipc."""
    if not address.startswith("ipc://"):
        return None
    rest = address[len("ipc://") :]
    if not rest or rest.startswith("@") or rest == "*":
        return None
    return Path(rest)


def _listening(path: Path) -> bool:
    """Whether a process accepts connections on the Unix socket at ``path``."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(_PROBE_TIMEOUT_S)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except TimeoutError:
        return True  # its backlog is full: very much alive
    except OSError as exc:
        return exc.errno == errno.EAGAIN
    finally:
        probe.close()
    return True


class _Lock:
    """An exclusive ``flock`` on ``path``, created if needed and removed on release."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock (waiting a few seconds); ``False`` if the file cannot be created."""
        deadline = time.monotonic() + _LOCK_WAIT_S
        while True:
            try:
                fd = os.open(
                    self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
                )
            except OSError:
                return False  # e.g. a read-only directory: binding will say what is wrong
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if time.monotonic() > deadline:
                    raise RemoteSimulatorError(
                        f"cannot listen on ipc://{self.path.with_suffix('')}: another server "
                        f"holds {self.path} (Address already in use)"
                    ) from None
                time.sleep(0.01)
                continue
            # The holder before us may have removed the file after we opened it: retry then.
            with contextlib.suppress(FileNotFoundError):
                st, now = os.fstat(fd), os.stat(self.path, follow_symlinks=False)
                if (st.st_dev, st.st_ino) == (now.st_dev, now.st_ino):
                    self.fd = fd
                    return True
            os.close(fd)

    def release(self) -> None:
        """Remove the lock file, then unlock (in this order, see :meth:`acquire`)."""
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            os.close(self.fd)
            self.fd = None


class SocketFile:
    """Guards the socket file of one ``ipc://PATH`` server (see the module docstring).

    Args:
        address: The ``ipc://`` address with a file path.
    """

    def __init__(self, address: str) -> None:
        path = ipc_path(address)
        if path is None:
            raise ValueError(f"{address!r} is not an ipc:// address with a file path")
        self.address = address
        self.path = path
        self._identity: tuple[int, int] | None = None

    def _lock(self) -> _Lock:
        return _Lock(self.path.with_name(self.path.name + ".lock"))

    def _check_free(self) -> None:
        try:
            st = os.stat(self.path, follow_symlinks=False)
        except FileNotFoundError:
            return
        except OSError:
            return  # e.g. a missing permission: binding will say so
        if not stat.S_ISSOCK(st.st_mode):
            raise RemoteSimulatorError(
                f"cannot listen on {self.address}: {self.path} exists and is not a socket "
                "(refusing to replace it)"
            )
        if _listening(self.path):
            raise RemoteSimulatorError(
                f"cannot listen on {self.address}: Address already in use (a server is "
                "listening there)"
            )

    def bind(self, do_bind: Callable[[], None]) -> None:
        """Check that the path is free, call ``do_bind`` and make the socket ``0600``.

        Raises:
            RemoteSimulatorError: if a server listens there or the path is not a socket.
        """
        lock = self._lock()
        locked = lock.acquire()
        try:
            self._check_free()
            do_bind()
            with contextlib.suppress(OSError):
                os.chmod(self.path, 0o600)
                st = os.stat(self.path, follow_symlinks=False)
                self._identity = (st.st_dev, st.st_ino)
        finally:
            if locked:
                lock.release()

    def release(self) -> None:
        """Remove the socket file if it is still the one we bound (idempotent)."""
        if self._identity is None:
            return
        lock = self._lock()
        locked = lock.acquire()
        try:
            st = os.stat(self.path, follow_symlinks=False)
            if (st.st_dev, st.st_ino) == self._identity:
                os.unlink(self.path)
        except OSError:
            pass
        finally:
            self._identity = None
            if locked:
                lock.release()


def private_directory() -> Path:
    """A directory only this user can enter, for sockets: created ``0700`` if needed.

    ``$XDG_RUNTIME_DIR/rotalumis`` when the session has a runtime directory, else
    ``<tmp>/rotalumis-<uid>``. An existing directory is used only if it is a real directory
    (not a symlink) owned by this user with no permissions for others.

    Raises:
        RemoteSimulatorError: if the directory exists but is not private.
    """
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        path = Path(runtime) / "rotalumis"
    else:
        path = Path(tempfile.gettempdir()) / f"rotalumis-{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    st = os.stat(path, follow_symlinks=False)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise RemoteSimulatorError(
            f"{path} is not a private directory (it must be a directory owned by you with "
            "mode 0700); remove it or give an --address"
        )
    return path


def private_address(name: str = "rotalumis") -> str:
    """An ``ipc://`` address only this user can reach: ``NAME.sock`` in :func:`private_directory`.

    The safe choice for ``serve`` on a machine shared with other users: the directory is
    ``0700`` and the server makes the socket ``0600``, whereas any local user can connect to
    an abstract address (``ipc://@name``) or a loopback tcp port.

    Args:
        name: The socket's name (characters other than letters, digits, ``.``, ``_`` and
            ``-`` become ``_``).

    Raises:
        RemoteSimulatorError: if the private directory exists but is not private.

    Example:
        >>> serve(model, private_address("my-model"))  # doctest: +SKIP
    """
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:64].lstrip(".") or "rotalumis"
    return f"ipc://{private_directory() / safe}.sock"
