"""Writing files safely, and recognising what an interrupted write left behind.

Every file rotalumis writes (saved results, dataset shards and manifests, networks, reports,
plots, address structures) goes through :func:`atomic_write`:

* the data go to a fresh temporary file beside the target, created by
  :func:`tempfile.mkstemp`: an unpredictable name opened with ``O_CREAT | O_EXCL |
  O_NOFOLLOW``, so a file or symlink planted at a guessable name is neither opened nor
  followed;
* the file gets the permissions a plain ``open()`` would give it (``0666`` less the umask),
  not mkstemp's ``0600``, so all the files of one result have the same permissions;
* once complete, it is flushed to disk and moved over the target with :func:`os.replace`
  (a symlink at the target is replaced, never followed): readers see the old file or the
  new one, never a part of one.

A write killed half-way leaves its temporary file. Temporary names have the form
``.TARGET.PID-HOST.RANDOM.tmp``: hidden, never a name rotalumis reads, and they say who
wrote them. :func:`remove_stale_temporaries` deletes those whose process, on this host, is
no longer running; :func:`atomic_write` does it for its target before writing.

Example:
    >>> with atomic_write("summary.json", "w") as fh:  # doctest: +SKIP
    ...     fh.write("{}")
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "atomic_write",
    "file_mode",
    "is_temporary",
    "remove_stale_temporaries",
    "write_bytes_atomic",
    "write_text_atomic",
]

_HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:64] or "host"
_TARGET_CHARS = 120  # of the target's name kept in a temporary's name (NAME_MAX is 255)
# The legacy form ``.TARGET.PID.tmp`` (no host, no random part) is also recognised.
_TEMPORARY = re.compile(
    r"^\.(?P<target>.+)\.(?P<pid>[0-9]{1,10})(?:-(?P<host>[A-Za-z0-9_-]+)\.[a-z0-9_]+)?\.tmp$"
)


def file_mode() -> int:
    """The permissions a new file gets from ``open()``: ``0o666`` less the process umask."""
    return 0o666 & ~_umask()


def _umask() -> int:
    try:  # Linux tells it without changing it (os.umask would, for every thread at once)
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def is_temporary(name: str) -> bool:
    """Whether a file name is one of :func:`atomic_write`'s temporary files."""
    return _TEMPORARY.match(name) is not None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OverflowError:
        return False
    return True


def remove_stale_temporaries(
    directory: str | os.PathLike[str], target: str | None = None
) -> list[Path]:
    """Delete the temporaries that killed writers left in ``directory``; return them.

    Only temporary files (see :func:`is_temporary`) written on this host by a process that
    is no longer running are removed; those of live processes, of other hosts (a shared
    file system) and of this process are left alone.

    Args:
        directory: Where to look.
        target: Only the temporaries of this file name (default: all).
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    own = os.getpid()
    for entry in entries:
        m = _TEMPORARY.match(entry.name)
        if m is None or (target is not None and m["target"] != target[:_TARGET_CHARS]):
            continue
        pid = int(m["pid"])
        if m["host"] not in (None, _HOST) or pid in (0, own) or _alive(pid):
            continue
        with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
            if not entry.is_dir(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable (best effort: not every file system lets a directory sync)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str],
    mode: str = "wb",
    *,
    encoding: str = "utf-8",
    clean_stale: bool = True,
) -> Iterator[IO[Any]]:
    """Open a fresh temporary file beside ``path``; move it over ``path`` when the block ends.

    If the block raises (or the process is interrupted), the temporary file is removed and
    ``path`` is left as it was.

    Args:
        path: The file to (re)write. Its directory must exist.
        mode: ``"wb"`` (bytes) or ``"w"`` (text).
        encoding: Encoding of text mode.
        clean_stale: First remove the stale temporaries of ``path`` (one directory scan;
            writers of many files in one directory pass ``False`` and clean once).

    Yields:
        The open file.

    Raises:
        ValueError: for another mode.
        OSError: if the directory is missing or not writable.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write writes in mode 'wb' or 'w', not {mode!r}")
    target = Path(path)
    directory = target.parent
    if clean_stale:
        remove_stale_temporaries(directory, target.name)
    prefix = f".{target.name[:_TARGET_CHARS]}.{os.getpid()}-{_HOST}."
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, file_mode())
        fh = os.fdopen(fd, mode, encoding=None if "b" in mode else encoding)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    try:
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` with :func:`atomic_write`."""
    with atomic_write(path, "wb") as fh:
        fh.write(data)


def write_text_atomic(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` with :func:`atomic_write`."""
    with atomic_write(path, "w", encoding=encoding) as fh:
        fh.write(text)
