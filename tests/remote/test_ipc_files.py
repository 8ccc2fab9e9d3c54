"""``rotalumis serve`` on file-system IPC sockets (issue 12, defects 2 and 10).

libzmq unlinks the file before binding ``ipc:///path``: a second server used to take over a
running server's path silently (the first kept running, unreachable), and a regular file at
the path was deleted. Now the path is probed under a lock: a live server's socket gives
"Address already in use", anything but a socket is refused, and a stale socket (of a server
killed with SIGKILL) is replaced. The socket is 0600, removed on Ctrl-C and SIGTERM, and
``--private`` puts it in a 0700 directory: other local users cannot connect, whereas any local
user can connect to the default abstract address.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from ppx_helpers import MODELS, ipc_address, served, start_server

from rotalumis.remote.client import RemoteModel

pytestmark = pytest.mark.timeout(120)


def serve_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "rotalumis.cli.serve", f"{MODELS}:UnknownMean", *args]


def one_error_line(cmd: list[str], env: dict[str, str] | None = None) -> str:
    """Run ``serve``; it must exit by itself with status 2 and one ``error:`` line."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    try:
        _, err = proc.communicate(timeout=45)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("serve kept running instead of refusing")
    lines = err.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def works(address: str) -> bool:
    remote = RemoteModel(address, timeout=10)
    try:
        return len(remote.prior(3, seed=0, progress=False)) == 3
    finally:
        remote.close()


def test_second_server_on_the_same_file_is_refused(tmp_path: Path) -> None:
    sock = tmp_path / "sim.sock"
    address = f"ipc://{sock}"
    with served("UnknownMean", address):
        inode = sock.stat().st_ino
        line = one_error_line(serve_cmd("--address", address))
        assert "Address already in use" in line and str(sock) in line
        assert sock.stat().st_ino == inode  # not taken over
        assert works(address)  # the first server is still reachable


def test_a_regular_file_at_the_path_is_left_alone(tmp_path: Path) -> None:
    victim = tmp_path / "notes.txt"
    victim.write_text("precious")
    line = one_error_line(serve_cmd("--address", f"ipc://{victim}"))
    assert "not a socket" in line and victim.read_text() == "precious"


@pytest.mark.parametrize(
    ("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
def test_socket_is_private_and_removed_on_exit(tmp_path: Path, sig: int, status: int) -> None:
    sock = tmp_path / "sim.sock"
    server = start_server("UnknownMean", f"ipc://{sock}")
    try:
        assert stat.S_ISSOCK(sock.stat().st_mode)
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        assert works(f"ipc://{sock}")
    finally:
        code = server.stop(sig)
    assert code == status and "Traceback" not in server.stderr
    assert list(tmp_path.iterdir()) == []  # neither the socket nor a lock file remains


def test_stale_socket_of_a_killed_server_is_replaced(tmp_path: Path) -> None:
    sock = tmp_path / "sim.sock"
    address = f"ipc://{sock}"
    server = start_server("UnknownMean", address)
    assert server.stop(signal.SIGKILL) == -signal.SIGKILL
    assert sock.exists()  # nobody could clean up after SIGKILL
    with served("UnknownMean", address):
        assert works(address)


def test_private_socket_directory(tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = {"XDG_RUNTIME_DIR": str(runtime)}
    proc = subprocess.Popen(
        serve_cmd("--private"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, **env},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        sock = runtime / "rotalumis" / "UnknownMean.sock"
        assert f"ipc://{sock}" in line, line
        assert stat.S_IMODE((runtime / "rotalumis").stat().st_mode) == 0o700
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        assert works(f"ipc://{sock}")
        # a second --private server of the same model is refused, not a takeover
        assert "already in use" in one_error_line(serve_cmd("--private"), env)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    assert proc.returncode == 143 and not sock.exists()


def test_private_refuses_a_directory_others_can_enter(tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    (runtime / "rotalumis").mkdir(parents=True)
    os.chmod(runtime / "rotalumis", 0o755)
    line = one_error_line(serve_cmd("--private"), {"XDG_RUNTIME_DIR": str(runtime)})
    assert "not a private directory" in line


def _connect_as(user: pwd.struct_passwd, address: str) -> str:
    """Connect to a Unix socket from a forked child running as ``user``."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop privileges, try, report, exit without cleanup
        status = "connected"
        try:
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect("\0" + address[1:] if address.startswith("@") else address)
        except OSError as exc:
            status = type(exc).__name__
        os.write(write, status.encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as f:
        return f.read()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_other_users_reach_abstract_sockets_but_not_file_sockets() -> None:
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody'")

    def as_nobody(target: str) -> str:
        return _connect_as(nobody, target)

    abstract = ipc_address()
    with served("UnknownMean", abstract):
        assert as_nobody(abstract.removeprefix("ipc://")) == "connected"  # the documented risk
    # even in a directory everyone may enter (pytest's own are 0700), the socket is 0600
    shared = Path(tempfile.mkdtemp(prefix="rotalumis-test-", dir="/tmp"))
    try:
        os.chmod(shared, 0o777)
        with served("UnknownMean", f"ipc://{shared / 'sim.sock'}"):
            assert as_nobody(str(shared / "sim.sock")) == "PermissionError"
    finally:
        shutil.rmtree(shared)
