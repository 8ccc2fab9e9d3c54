"""Shared matplotlib plumbing: the Agg backend, saving, colours."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["CHAIN_COLORS", "finish", "pyplot"]

CHAIN_COLORS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3")


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed), imported lazily."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def finish(fig: Any, path: str | os.PathLike[str] | None, title: str | None, dpi: int = 110) -> Any:
    """Add the title, lay out, save to ``path`` (if given) and close ``fig``; return it.

    A closed figure keeps its axes and artists, so callers (and tests) can inspect it.
    """
    plt = pyplot()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return fig
