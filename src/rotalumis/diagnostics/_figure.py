"""Shared matplotlib plumbing: the Agg backend, saving, colours."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rotalumis.core.files import atomic_write

__all__ = ["CHAIN_COLORS", "finish", "pyplot", "save_figure"]

CHAIN_COLORS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3")


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed), imported lazily."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def finish(fig: Any, path: str | os.PathLike[str] | Any, title: str | None, dpi: int = 110) -> Any:
    """Add the title, lay out, save to ``path`` (a file name or an open binary file; if
    given) and close ``fig``; return it.

    A closed figure keeps its axes and artists, so callers (and tests) can inspect it.
    """
    plt = pyplot()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if isinstance(path, str | os.PathLike):
        save_figure(fig, path, dpi)
    elif path is not None:
        fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return fig


def save_figure(fig: Any, path: str | os.PathLike[str], dpi: int = 110) -> Path:
    """Save ``fig`` to ``path`` atomically, in the format its extension names.

    Like matplotlib, a path without extension gets that of the default format. Returns the
    path written.
    """
    target = Path(path)
    fmt = target.suffix.lstrip(".").lower()
    if not fmt:
        fmt = str(pyplot().rcParams["savefig.format"])
        target = target.with_name(f"{target.name}.{fmt}")
    with atomic_write(target) as fh:
        fig.savefig(fh, format=fmt, dpi=dpi)
    return target
