"""One long-lived PPX simulator per Dask worker: :class:`SimulatorPerWorker`.

A Dask worker plugin: when a worker starts (or the plugin is registered), it starts one
simulator process from a command with ``{address}`` (as ``rotalumis pool`` does) at a fresh
private address; the worker's tasks run their executions on it through one connection,
one at a time. :meth:`SimulatorPerWorker.model` is the
:class:`~.client.RemoteModel` that the engines take: pickled to the workers, its executions
run on the worker's own simulator, so no addresses travel and every worker drives its
simulator over a local socket.

A simulator that dies (or stops answering within ``timeout``) is reported in the worker's
log, with its address and exit status, and replaced by a fresh process; the execution fails
with :class:`~rotalumis.core.errors.SimulatorLostError`, and the Dask executor runs the
work unit again (its result depends only on its index, so the run's result is unchanged).
The simulator is stopped when the worker closes or the plugin is unregistered.

Needs Dask (``pip install 'rotalumis[distributed]'``); import this module explicitly.
"""

from __future__ import annotations

import logging
import os
import queue
import subprocess
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

from distributed import WorkerPlugin, get_worker
from rotalumis.core import Model
from rotalumis.core.errors import ModelError, RemoteSimulatorError, SimulatorLostError
from rotalumis.core.forkpool import die_with_parent

from .client import RemoteModel
from .launch import PLACEHOLDER

__all__ = ["SimulatorPerWorker", "WorkerSimulatorModel"]

log = logging.getLogger(__name__)

#: The plugin's name on the workers, unless another one is given.
DEFAULT_NAME = "rotalumis-simulator"


class SimulatorPerWorker(WorkerPlugin):
    """A Dask worker plugin that keeps one PPX simulator process on each worker.

    Args:
        command: The simulator program and its arguments; ``{address}`` (in one or more
            arguments) is replaced by the address the process must serve at (a private
            ``ipc://@...`` address of the worker's machine).
        timeout: Seconds to wait for each reply of the simulator; a simulator silent for
            longer is taken for dead and replaced.
        start_timeout: Seconds a new simulator may take to answer its first handshake.
        env: Extra environment variables of the simulator processes.
        name: The plugin's name on the workers (several plugins need distinct names).

    Raises:
        ValueError: without ``{address}`` in the command, or for a non-positive time-out.

    Example:
        >>> plugin = SimulatorPerWorker(["./my_simulator", "{address}"])  # doctest: +SKIP
        >>> with DaskExecutor("local:8", worker_plugins=[plugin]) as cluster:  # doctest: +SKIP
        ...     post = plugin.model().posterior(10_000, observe=obs, seed=0, cluster=cluster)
    """

    def __init__(
        self,
        command: Sequence[str],
        timeout: float = 60.0,
        start_timeout: float = 120.0,
        env: dict[str, str] | None = None,
        name: str = DEFAULT_NAME,
    ) -> None:
        command = [str(part) for part in command]
        if not any(PLACEHOLDER in part for part in command):
            raise ValueError(
                f"the simulator command {command!r} has no {PLACEHOLDER} placeholder for "
                "the address each worker's simulator serves at"
            )
        for key, value in (("timeout", timeout), ("start_timeout", start_timeout)):
            if not value > 0:
                raise ValueError(f"{key} must be a positive number of seconds, got {value!r}")
        self.command = command
        self.timeout = float(timeout)
        self.start_timeout = float(start_timeout)
        self.env = dict(env or {})
        self.name = name
        self._reset_state()

    def _reset_state(self) -> None:
        self.address: str | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.remote: RemoteModel | None = None
        self.restarts = 0
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:  # only the settings travel to the workers
        return {k: getattr(self, k) for k in ("command", "timeout", "start_timeout", "env", "name")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset_state()

    # -- on the worker ------------------------------------------------------------------------
    def setup(self, worker: Any) -> None:
        """Start the worker's simulator (Dask calls it when the plugin reaches a worker)."""
        self._start()

    def teardown(self, worker: Any) -> None:
        """Stop the worker's simulator (when the worker closes or the plugin is removed)."""
        with self._lock:
            self._stop()

    def _start(self) -> None:
        self.address = f"ipc://@rotalumis-worker-{os.getpid()}-{uuid.uuid4().hex[:10]}"
        argv = [part.replace(PLACEHOLDER, self.address) for part in self.command]
        self.process = _launch(argv, {**os.environ, **self.env})
        self.remote = None  # connected by the first execution (not in the worker's loop)

    def _stop(self) -> None:
        if self.remote is not None:
            self.remote.close()
            self.remote = None
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _connected(self) -> RemoteModel:
        """The connection to the simulator, handshaken (waits for a starting process)."""
        if self.remote is not None:
            return self.remote
        assert self.process is not None and self.address is not None
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                self.remote = RemoteModel(self.address, timeout=min(self.timeout, 5.0))
                break
            except RemoteSimulatorError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    lost = self._lost("did not answer its first handshake")
                    raise RemoteSimulatorError(str(lost)) from None
        self.remote.close()
        self.remote = RemoteModel(self.address, timeout=self.timeout)
        return self.remote

    def _lost(self, what: str) -> SimulatorLostError:
        """Report the simulator as failed, start a fresh one, and the error to raise."""
        assert self.process is not None
        address = self.address
        try:
            status = self.process.wait(0.5)
        except subprocess.TimeoutExpired:
            status = None
        how = f"exited with status {status}" if status is not None else "was still running"
        message = f"the worker's simulator at {address} {what} ({how}); starting a new one"
        log.warning(message)
        self._stop()
        self.restarts += 1
        self._start()
        return SimulatorLostError(message, address or "", retryable=True)

    def execute(self, model: RemoteModel) -> Any:
        """Run one execution of ``model`` on this worker's simulator (one at a time).

        Raises:
            SimulatorLostError: when the simulator died or stopped answering during it
                (after a fresh one was started; the executor runs the unit again).
        """
        with self._lock:
            remote = self._connected()

            def request(data: bytes) -> Any:
                try:
                    return remote._request(data)
                except RemoteSimulatorError as exc:  # dead, or silent past the time-out
                    raise self._lost(f"failed during an execution: {exc}") from exc

            return model._run(request, remote.address)

    def model(self, name: str | None = None) -> WorkerSimulatorModel:
        """The model whose executions run on the workers' simulators (give it to the
        engines with ``cluster=`` a Dask executor or client where this plugin runs)."""
        return WorkerSimulatorModel(self.name, name)

    def __repr__(self) -> str:
        return f"SimulatorPerWorker({self.command!r}, name={self.name!r})"


def _launch(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start a simulator process from the launcher thread of this worker process.

    The process gets SIGTERM when the thread that started it ends (Linux's parent-death
    signal), so that a worker killed outright leaves no simulator behind: the launcher
    thread lives as long as the process, unlike Dask's task threads.
    """
    global _LAUNCHER
    with _LAUNCHER_LOCK:
        if _LAUNCHER is None or not _LAUNCHER.is_alive():
            _LAUNCHER = threading.Thread(target=_launcher, name="rotalumis-launcher", daemon=True)
            _LAUNCHER.start()
        reply: queue.SimpleQueue[subprocess.Popen[bytes] | BaseException] = queue.SimpleQueue()
        _LAUNCHES.put((argv, env, reply))
        out = reply.get()
    if isinstance(out, BaseException):
        raise out
    return out


_LAUNCHES: queue.SimpleQueue[tuple[list[str], dict[str, str], Any]] = queue.SimpleQueue()
_LAUNCHER: threading.Thread | None = None
_LAUNCHER_LOCK = threading.Lock()


def _launcher() -> None:
    parent = os.getpid()
    while True:
        argv, env, reply = _LAUNCHES.get()
        try:
            # its output goes to the worker's stderr (its log), never into a program's results
            proc = subprocess.Popen(
                argv, env=env, stdout=2, preexec_fn=lambda: die_with_parent(parent)
            )
            reply.put(proc)
        except BaseException as exc:  # handed to the thread that asked
            reply.put(exc)


class WorkerSimulatorModel(RemoteModel):
    """A :class:`RemoteModel` whose executions run on the simulator of the Dask worker that
    runs them (see :class:`SimulatorPerWorker`); made by :meth:`SimulatorPerWorker.model`.

    Outside a Dask worker that has the plugin (e.g. without ``cluster=``) an execution
    raises :class:`~rotalumis.core.errors.ModelError`.

    Args:
        plugin: The name of the :class:`SimulatorPerWorker` plugin on the workers.
        name: The model's name (default: ``"RemoteModel"``).
    """

    supports_worker_processes = True  # each worker has its own simulator

    def __init__(self, plugin: str = DEFAULT_NAME, name: str | None = None) -> None:
        Model.__init__(self, name or "RemoteModel")  # no connection here: see forward()
        self.plugin = plugin
        self.address = f"dask-worker-simulator:{plugin}"
        self.addresses = [self.address]
        self.timeout = None
        self.system_name = None
        self.model_name = None
        self._fixed_name = name is not None
        self._transport = None
        self._pool = None

    def connect(self) -> None:
        """Nothing to connect here: each worker's plugin holds the connection."""

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """One execution on this worker's simulator.

        Raises:
            ModelError: with arguments, or outside a Dask worker with the plugin.
            SimulatorLostError: when the worker's simulator died during it.
        """
        if args or kwargs:
            raise ModelError("a PPX simulator takes no arguments: call forward() without any")
        try:
            plugin = get_worker().plugins.get(self.plugin)
        except ValueError:  # not in a Dask worker
            plugin = None
        if not isinstance(plugin, SimulatorPerWorker):
            raise ModelError(
                f"{self.name}: its executions run on the simulators of Dask workers with the "
                f"SimulatorPerWorker plugin {self.plugin!r}: pass cluster= a DaskExecutor "
                "(or client) where that plugin is registered"
            )
        return plugin.execute(self)

    def __repr__(self) -> str:
        return f"WorkerSimulatorModel(name={self.name!r}, plugin={self.plugin!r})"
