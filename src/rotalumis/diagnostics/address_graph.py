"""Render an :class:`~.addresses.AddressGraph` with Graphviz: DOT text, then SVG/PNG by ``dot``.

The DOT source is written next to the images, so a graph can be restyled or re-rendered
without rotalumis. Graphviz's ``dot`` executable must be on ``PATH`` (Debian: ``apt-get
install graphviz``; the Makefile's install step does it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from rotalumis.core.errors import RotalumisError
from rotalumis.core.files import write_bytes_atomic, write_text_atomic

from .addresses import END, START, AddressGraph

__all__ = ["GraphvizError", "graphviz_available", "render_dot", "to_dot"]


class GraphvizError(RotalumisError, RuntimeError):
    """Graphviz's ``dot`` is missing or failed to render a graph."""


def graphviz_available() -> bool:
    """Whether Graphviz's ``dot`` is on ``PATH``."""
    return shutil.which("dot") is not None


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _fill(freq: float) -> str:
    """White (rarely visited) to blue (visited by every trace)."""
    lo, hi = (255, 255, 255), (120, 160, 220)
    rgb = [round(a + (b - a) * min(max(freq, 0.0), 1.0)) for a, b in zip(lo, hi, strict=True)]
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def to_dot(graph: AddressGraph, title: str = "address structure") -> str:
    """DOT source of ``graph``: one box per node labelled with its short id, distribution,
    name and visit frequency (observe sites as red ellipses); edges labelled with the
    transition probability, thicker when more likely."""
    lines = [
        f"digraph {_quote(title)} {{",
        f"  graph [label={_quote(title)}, labelloc=t, fontname=Helvetica, rankdir=TB];",
        '  node [shape=box, style="rounded,filled", fontname=Helvetica, fontsize=11];',
        '  edge [fontname=Helvetica, fontsize=10, color="#555555"];',
        f'  {START} [shape=circle, label="start", fillcolor="#eeeeee", fontsize=9];',
        f'  {END} [shape=doublecircle, label="end", fillcolor="#eeeeee", fontsize=9];',
    ]
    ids = dict(graph.ids)
    for node in graph.visits:
        nid = ids.setdefault(node, f"N{len(ids) + 1}")
        info = graph.info.get(node)
        what = info.distribution if info else "?"
        if info and info.name:
            what += f" · {info.name}"
        freq = graph.frequency(node)
        per_trace = graph.visits_per_trace(node)
        label = f"{nid}\n{what}\n{100 * freq:.1f}% of traces"
        if per_trace > freq + 1e-12:  # a call site visited several times per trace
            label += f"\n{per_trace:.2f} visits/trace"
        is_observe = info is not None and info.kind == "observe"
        shape = "ellipse" if is_observe else "box"
        fill = "#f4cccc" if is_observe else _fill(freq)
        lines.append(f"  {nid} [label={_quote(label)}, shape={shape}, fillcolor={_quote(fill)}];")
    for (a, b), _count in sorted(graph.edges.items(), key=lambda kv: -kv[1]):
        p = graph.probability(a, b)
        src = a if a in (START, END) else ids[a]
        dst = b if b in (START, END) else ids[b]
        width = 0.6 + 3.0 * p
        lines.append(f'  {src} -> {dst} [label="{p:.3f}", penwidth={width:.2f}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_dot(
    source: str,
    stem: str | os.PathLike[str],
    formats: tuple[str, ...] = ("svg", "png"),
    timeout: float = 60.0,
) -> dict[str, Path]:
    """Write ``stem.dot`` and render it to ``stem.<fmt>`` for each format with ``dot``.

    Args:
        source: DOT text (e.g. from :func:`to_dot`).
        stem: Output path without extension.
        formats: Graphviz output formats.
        timeout: Seconds allowed per rendering.

    Returns:
        ``{"dot": path, fmt: path, ...}``.

    Raises:
        GraphvizError: if ``dot`` is not installed, fails or times out (the message names
            the DOT file).
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    dot_path = stem.with_name(stem.name + ".dot")
    write_text_atomic(dot_path, source)
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizError(
            f"Graphviz's `dot` is not installed, so {dot_path} cannot be rendered "
            "(apt-get install graphviz, or render the DOT file elsewhere)"
        )
    out = {"dot": dot_path}
    for fmt in formats:
        target = stem.with_name(f"{stem.name}.{fmt}")
        try:
            proc = subprocess.run(  # to stdout: the file is written atomically here
                [exe, f"-T{fmt}", str(dot_path)],
                capture_output=True, timeout=timeout, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise GraphvizError(f"dot took over {timeout:.0f} s to render {dot_path}") from exc
        if proc.returncode != 0:
            error = proc.stderr.decode(errors="replace").strip()
            raise GraphvizError(f"dot failed to render {dot_path} as {fmt}: {error}")
        write_bytes_atomic(target, proc.stdout)
        out[fmt] = target
    return out
