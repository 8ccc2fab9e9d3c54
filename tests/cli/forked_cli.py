"""Run the real ``rotalumis`` command many times, fast: a warm server process forks one child
per invocation.

Each child is a fresh copy of a process that has imported rotalumis (and torch) once: it
changes to the requested directory, points its stdin, stdout and stderr at files, and runs
``rotalumis.cli.main.main()`` with the given arguments, exactly what the installed
command runs; an uncaught exception prints its traceback as Python would (status 1). The
server runs outside pytest, so pytest's warning filters, output capture and SIGALRM
handler (pytest-timeout) do not leak into the command. Run as a script, the server reads
one JSON request per line on stdin and answers one JSON line on stdout.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    """What one invocation did."""

    returncode: int
    stdout: str
    stderr: str


def _child(argv: list[str], cwd: str, out: str, err: str) -> None:
    """In the forked child: run the command and exit with its status (never returns)."""
    status = 1
    try:
        os.chdir(cwd)
        fd_in = os.open(os.devnull, os.O_RDONLY)
        fd_out = os.open(out, os.O_WRONLY)
        fd_err = os.open(err, os.O_WRONLY)
        for fd, target in ((fd_in, 0), (fd_out, 1), (fd_err, 2)):
            os.dup2(fd, target)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        from rotalumis.cli.main import main

        sys.argv = ["rotalumis", *argv]
        try:
            main()
            status = 0
        except SystemExit as exc:
            code = exc.code
            if code is None:
                status = 0
            elif isinstance(code, int):
                status = code
            else:
                print(code, file=sys.stderr)
                status = 1
        except BaseException:
            traceback.print_exc()
            status = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(status)


def _serve() -> None:
    import rotalumis.cli.main
    import rotalumis.data
    import rotalumis.nn  # noqa: F401

    for line in sys.stdin:
        request: dict[str, Any] = json.loads(line)
        with tempfile.TemporaryDirectory() as tmp:
            out, err = os.path.join(tmp, "out"), os.path.join(tmp, "err")
            for path in (out, err):
                open(path, "w").close()
            pid = os.fork()
            if pid == 0:
                _child(request["argv"], request["cwd"], out, err)
            deadline = time.monotonic() + float(request.get("timeout", 120))
            status = None
            while status is None:
                done, raw = os.waitpid(pid, os.WNOHANG)
                if done:
                    status = os.waitstatus_to_exitcode(raw)
                elif time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    status = "timeout"
                else:
                    time.sleep(0.005)
            with open(out) as f_out, open(err) as f_err:
                answer = {"returncode": status, "stdout": f_out.read(), "stderr": f_err.read()}
        print(json.dumps(answer), flush=True)


class ForkedCLI:
    """The client side: ``cli(args, cwd=...)`` runs ``rotalumis ARGS`` in a fork of the server."""

    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
        self._proc = subprocess.Popen(
            [sys.executable, __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )

    def __call__(self, *args: str, cwd: Path | str = ROOT, timeout: float = 120) -> Result:
        """Run the command; a time-out gives return code -9 and a note on stderr."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        request = {"argv": list(args), "cwd": str(cwd), "timeout": timeout}
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        answer = json.loads(self._proc.stdout.readline())
        if answer["returncode"] == "timeout":
            return Result(-9, answer["stdout"], answer["stderr"] + f"\n(timed out: {timeout} s)")
        return Result(answer["returncode"], answer["stdout"], answer["stderr"])

    def close(self) -> None:
        """Stop the server."""
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None:
                pipe.close()
        self._proc.wait(timeout=30)


if __name__ == "__main__":
    _serve()
