"""Resolve ``FILE.py:NAME`` targets and ``NAME=VALUE`` observations given on the command line."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import keyword
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, NoReturn

import typer

from rotalumis.core import FunctionModel, Model

__all__ = ["CommandError", "check_writable", "load_model", "parse_observations"]


class CommandError(Exception):
    """A user error on the command line; printed as one line, no traceback."""


def fail(message: object) -> NoReturn:
    """Print ``error: MESSAGE`` on stderr (one line, no traceback) and exit with status 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2) from None


def _module_name(path: Path) -> str:
    """The name ``FILE.py`` is imported under: the same in every process and run.

    Addresses of intercepted draws name the modules of the frames they pass through, so a
    name that changed between processes (``hash()`` of a string is salted per process) would
    give every CLI run other addresses, and trained networks, datasets and saved traces would
    not carry over. The file's stem is used (the addresses are then those of ``import STEM``
    in Python) unless another module already has that name; then the stem and a digest of the
    resolved path.
    """
    stem, resolved = path.stem, path.resolve()
    if stem.isidentifier() and not keyword.iskeyword(stem):
        loaded = sys.modules.get(stem)
        if loaded is not None:
            origin = getattr(loaded, "__file__", None)
        else:
            try:
                spec = importlib.util.find_spec(stem)
            except (ImportError, ValueError):
                spec = None
            origin = resolved if spec is None else spec.origin
        if origin is not None and Path(origin).resolve() == resolved:
            return stem
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:12]
    return f"_rotalumis_user_{stem}_{digest}"


def load_model(target: str) -> Model:
    """Load the model ``NAME`` from ``FILE.py`` given as ``FILE.py:NAME``.

    ``NAME`` may be a :class:`Model` instance, a :class:`Model` subclass (instantiated with
    no arguments) or a plain function (wrapped with :func:`rotalumis.model`).

    Raises:
        CommandError: for a malformed target, a missing file or an unknown name.
    """
    path_text, sep, name = target.rpartition(":")
    if not sep or not path_text or not name:
        raise CommandError(f"expected FILE.py:MODEL, got {target!r}")
    path = Path(path_text)
    if not path.is_file():
        raise CommandError(f"model file not found: {path}")
    module_name = _module_name(path)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise CommandError(f"cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    sys.path.insert(0, str(path.resolve().parent))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise CommandError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.path.pop(0)
    _pickle_by_value(module)
    if not hasattr(module, name):
        found = sorted(
            k
            for k, v in vars(module).items()
            if isinstance(v, Model)
            or (isinstance(v, type) and issubclass(v, Model) and v.__module__ == module_name)
        )
        raise CommandError(
            f"{path} has no model named {name!r} (models found: {', '.join(found) or 'none'})"
        )
    obj = getattr(module, name)
    if isinstance(obj, Model):
        return obj
    if isinstance(obj, type) and issubclass(obj, Model):
        try:
            return obj()
        except TypeError as exc:
            raise CommandError(f"cannot instantiate {name} without arguments: {exc}") from exc
    if callable(obj):
        return FunctionModel(obj, name)
    raise CommandError(f"{path}:{name} is a {type(obj).__name__}, not a model")


def _parse_value(name: str, text: str) -> Any:
    if text.startswith("@"):
        file = Path(text[1:])
        if not file.is_file():
            raise CommandError(f"observation {name!r}: file not found: {file}")
        if file.suffix == ".npy":
            import numpy as np

            return np.load(file, allow_pickle=False).tolist()
        text = file.read_text()
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise CommandError(
            f"observation {name!r}: {text!r} is not a number or a JSON list of numbers"
        ) from None
    if isinstance(value, bool) or not isinstance(value, (int, float, list)):
        raise CommandError(f"observation {name!r}: {text!r} is not a number or a list")
    return value


def parse_observations(items: list[str] | None) -> dict[str, Any]:
    """Parse ``NAME=VALUE`` items (VALUE: a number, a JSON list, or ``@file.npy|.json``).

    Raises:
        CommandError: for a malformed item or a name given twice.
    """
    out: dict[str, Any] = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        if not sep or not name.strip() or not text.strip():
            raise CommandError(f"--observe expects NAME=VALUE, got {item!r}")
        name = name.strip()
        if name in out:
            raise CommandError(f"--observe gives {name!r} twice; give each name once")
        out[name] = _parse_value(name, text.strip())
    return out


def check_writable(path: Path, option: str) -> None:
    """Fail now, rather than after the work, if the file ``path`` cannot be written.

    Creates the missing directories above ``path`` and a probe file beside it.

    Raises:
        CommandError: if ``path`` is a directory or its directory is not writable.
    """
    if path.is_dir():
        raise CommandError(f"{option} {path} is a directory, not a file")
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise CommandError(
            f"{option} {path}: cannot write in {parent} ({exc.strerror or exc})"
        ) from None


def _pickle_by_value(module: Any) -> None:
    """Let Dask ship the models of a model file to its workers by value (the file's module,
    imported under a private name, cannot be imported there)."""
    try:
        import cloudpickle
    except ImportError:  # no Dask: nothing is shipped
        return
    cloudpickle.register_pickle_by_value(module)
