"""The results directory of ``rotalumis run --out DIR``, replaced as a whole.

The files of a run (posterior, summary, plot, report, address graphs) are written into a
fresh temporary directory next to ``DIR`` and swapped in only when all are complete (an
atomic exchange of the two directories on Linux, two renames elsewhere); the old set is
removed afterwards. A run killed midway leaves the old results untouched, and a new run
never leaves files of an older one beside its own. ``DIR`` is checked before inference
starts: a file, an unwritable place, or a directory holding anything but a run's files is
an error then, not after the inference.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import sys
import tempfile
from pathlib import Path

from .loading import CommandError

__all__ = ["RUN_FILES", "RunOutput"]

RUN_FILES = frozenset(
    {
        "empirical.npz",
        "summary.json",
        "posterior.png",
        "report.html",
        "address_structure.json",
        "address_graphs",
    }
)
"""What a run writes into ``--out`` (a directory holding only these may be replaced)."""

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _is_ours(name: str) -> bool:
    """A run's file, or a temporary file left behind while writing one."""
    if name in RUN_FILES:
        return True
    return name.endswith(".tmp") and any(f in name for f in RUN_FILES)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunOutput:
    """The output set of one run: check ``out`` now, write into :attr:`staging`, then
    :meth:`commit` (or :meth:`discard`).

    Raises:
        CommandError: if ``out`` is a file, holds files a run did not write, or no
            directory can be created next to it.
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        target = out.resolve()  # a symlink: its target is replaced, the link stays
        if target.exists() and not target.is_dir():
            raise CommandError(f"--out {out} exists and is not a directory")
        if target.is_dir():
            try:
                foreign = sorted(n for n in os.listdir(target) if not _is_ours(n))
            except OSError as exc:
                raise CommandError(f"--out {out}: cannot read it ({exc.strerror})") from None
            if foreign:
                shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
                raise CommandError(
                    f"--out {out} holds files that are not results of `rotalumis run` "
                    f"({shown}); the results replace the whole directory, so choose a new "
                    "or an earlier --out directory"
                )
        self.target = target
        parent = target.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self._remove_stale(parent)
            self.staging = Path(
                tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=parent)
            )
        except OSError as exc:
            raise CommandError(
                f"--out {out}: cannot write in {parent} ({exc.strerror or exc})"
            ) from None

    def _remove_stale(self, parent: Path) -> None:
        """Staging directories of earlier runs of this ``--out`` that were killed."""
        for path in parent.glob(f".{self.target.name}.*.tmp"):
            try:
                pid = int(path.name[len(self.target.name) + 2 :].split(".", 1)[0])
            except ValueError:
                continue
            if pid != os.getpid() and not _alive(pid) and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)

    def commit(self) -> None:
        """Put the staged files in place of ``out`` (atomically where possible).

        Raises:
            OSError: if the directories cannot be renamed.
        """
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.staging, 0o777 & ~umask)  # mkdtemp made it private
        target = self.target
        if not target.exists():
            os.rename(self.staging, target)
            return
        if not _exchange(self.staging, target):
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            os.rename(target, old / "set")
            os.rename(self.staging, target)
            self.staging = old
        shutil.rmtree(self.staging, ignore_errors=True)  # now the old set

    def discard(self) -> None:
        """Remove the staging directory (after a failure, or after :meth:`commit`)."""
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.staging, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directories atomically (Linux ``renameat2(RENAME_EXCHANGE)``); ``False``
    where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))
