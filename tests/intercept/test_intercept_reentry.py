"""The installer of the patches under re-entry: finalizers that run inside it (a collection
starts at any allocation, e.g. while it installs or removes the patches), abandoned blocks
of executions finalized in another thread or during another execution, and fork.

Each case runs in a fresh interpreter with a time limit, so that a deadlock fails the test
instead of hanging the suite."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

_SRC = str(Path(__file__).resolve().parents[2] / "src")

# A patch object appended to the installer's list: its apply/restore run a collection where
# the real patches' allocations may start one (deterministically, with gc disabled otherwise).
# A generator whose cleanup intercepts: finalized by that collection, it enters and leaves
# interception on the thread that holds the installer.
_PRELUDE = """
import gc, random, sys, threading
import rotalumis.intercept as ri
from rotalumis.core import RNG, FunctionModel, current_execution
from rotalumis.intercept import context, intercept

gc.disable()
with intercept():
    pass  # the installer's list of patches is built
installer = context._INSTALLER
originals = dict(vars(random.Random))

class Collect:
    def apply(self):
        gc.collect()
    def restore(self):
        gc.collect()

def cleanup(log):
    try:
        yield
    finally:
        with intercept():
            log.append(random.random())

def abandon(log):
    g = cleanup(log)
    next(g)
    cycle = [g]
    cycle.append(cycle)  # collected only by the cyclic collector

def same_as_before():
    now = vars(random.Random)
    return all(now.get(k) is v for k, v in originals.items()) and now.keys() == originals.keys()
"""


def _run(body: str, timeout: float = 60.0) -> str:
    code = _PRELUDE + textwrap.dedent(body)
    env = dict(os.environ, PYTHONPATH=_SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # a session of its own: a deadlocked forked child is killed with it
    with subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    ) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail(f"deadlock: no exit within {timeout} s")
    assert proc.returncode == 0, out + err
    assert "Exception ignored" not in err, err
    return out


def test_a_finalizer_that_intercepts_while_the_patches_are_installed() -> None:
    out = _run(
        """
        installer._patches.append(Collect())
        log = []
        abandon(log)
        with intercept():  # installs; the collection inside finalizes the generator
            random.random()
        assert len(log) == 1, log
        assert not ri.is_installed() and same_as_before()
        with intercept():  # and again, cleanly
            assert ri.is_installed()
        assert not ri.is_installed() and same_as_before()
        print("ok")
        """
    )
    assert out.strip() == "ok"


def test_a_finalizer_that_intercepts_while_the_patches_are_removed() -> None:
    out = _run(
        """
        installer._patches.append(Collect())
        log = []
        with intercept():
            abandon(log)
        # removal: the collection inside finalizes the generator, which installs again
        assert len(log) == 1, log
        assert not ri.is_installed() and same_as_before()
        print("ok")
        """
    )
    assert out.strip() == "ok"


def test_an_abandoned_block_of_executions_releases_its_patches_when_collected() -> None:
    """A block of executions left unclosed in a reference cycle holds the patches until the
    collector finalizes it: in this thread during another model's execution (which stays
    current), or in another thread; either way the patches are then removed."""
    out = _run(
        """
        def forward():
            with intercept(check_escapes=False):
                return random.random()

        from rotalumis.core.limits import TraceLimits

        def left_open():
            left = FunctionModel(forward, "left")
            # no time limit: its SIGALRM handler can be restored from the main thread only
            left.trace_limits = TraceLimits(max_seconds=None)
            block = left.executions(RNG(1))
            block.__enter__()()  # one execution: it holds the patches
            cycle = [block]
            cycle.append(cycle)

        # collected in this thread, during an execution of another model
        left_open()
        assert ri.is_installed()
        seen = []
        def other():
            here = current_execution()
            gc.collect()
            seen.append(current_execution() is here)
            return 0.0
        FunctionModel(other, "other").prior(1, seed=0, progress=False)
        assert seen == [True], seen
        assert not ri.is_installed() and same_as_before()

        # collected in another thread
        left_open()
        assert ri.is_installed()
        t = threading.Thread(target=gc.collect)
        t.start()
        t.join()
        assert not ri.is_installed() and same_as_before()
        print("ok")
        """
    )
    assert out.strip() == "ok"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_fork_while_another_thread_installs_leaves_the_child_a_usable_installer() -> None:
    out = _run(
        """
        import os, time
        entered, go = threading.Event(), threading.Event()
        class Slow:
            def apply(self):
                entered.set()
                go.wait(10)
            def restore(self):
                pass
        installer._patches.append(Slow())
        def installs():
            with intercept():
                pass
        t = threading.Thread(target=installs)
        t.start()
        entered.wait(10)  # the thread is inside the installer
        threading.Timer(0.5, go.set).start()
        pid = os.fork()  # waits for the installer to be free
        if pid == 0:
            ok = False
            try:  # the installer is free here, and intercepts
                seen = []
                def forward():
                    with intercept(check_escapes=False):
                        seen.append(ri.is_installed())
                        return random.random()
                m = FunctionModel(forward, "child")
                post = m.prior(2, seed=0, progress=False, keep_traces=True)
                ok = seen == [True, True] and len({t.result for t in post.traces}) == 2
            except BaseException:
                import traceback
                traceback.print_exc()
            finally:
                os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        t.join()
        assert os.waitstatus_to_exitcode(status) == 0, status
        assert not ri.is_installed()
        installer._patches.pop()
        assert same_as_before()
        print("ok")
        """,
        timeout=30.0,
    )
    assert out.strip() == "ok"
