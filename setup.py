"""Build of the optional C accelerator of interception (``rotalumis.intercept._accel``).

Everything else is in pyproject.toml. The extension is optional: when it cannot be built
(no C compiler, no Python headers, another Python implementation) the installation still
succeeds, prints one line saying so, and interception runs in pure Python
(``rotalumis.intercept._session``, which behaves identically). See docs/interception.md.
"""

from __future__ import annotations

import platform
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

_NOTE = (
    "rotalumis: the C accelerator of interception was not built ({}); "
    "interception runs in pure Python"
)


class OptionalBuildExt(build_ext):
    """build_ext that reports a failed build in one line instead of failing the install."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler at all (DistutilsPlatformError, ...)
            print(_NOTE.format(f"{type(exc).__name__}: {exc}"), file=sys.stderr)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # CompileError, LinkError, ...
            print(_NOTE.format(f"{type(exc).__name__}: {exc}"), file=sys.stderr)


_PARTS = ("", "_sites", "_wrapper", "_settle", "_lazy", "_patch")
"""The C files of the accelerator: ``_accel.c``, ``_accel_sites.c``, ..."""

_CPYTHON = platform.python_implementation() == "CPython" and sys.version_info >= (3, 11)

setup(
    ext_modules=[
        Extension(
            "rotalumis.intercept._accel",
            [f"src/rotalumis/intercept/_accel{part}.c" for part in _PARTS],
            depends=["src/rotalumis/intercept/_accel.h"],
            optional=True,
        )
    ]
    if _CPYTHON
    else [],
    cmdclass={"build_ext": OptionalBuildExt},
)
