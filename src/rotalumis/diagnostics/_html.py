"""Small HTML building blocks for the self-contained report (escaped text, data-URI images)."""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["details", "fig_png", "img", "page", "section", "table", "warnings_box"]

_CSS = """
body { font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 0;
       color: #222; background: #fafafa; }
header { background: #1f2d4d; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px 0; font-size: 24px; }
nav a { color: #cfe0ff; margin-right: 16px; text-decoration: none; }
main { padding: 8px 32px 40px 32px; max-width: 1200px; }
section { background: #fff; border: 1px solid #ddd; border-radius: 6px; margin: 18px 0;
          padding: 6px 20px 16px 20px; }
h2 { border-bottom: 2px solid #4c72b0; padding-bottom: 4px; }
table { border-collapse: collapse; margin: 8px 0 12px 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th { background: #eef2f8; } td.text, th.text { text-align: left; }
td.mono { font-family: monospace; text-align: left; font-size: 12px; } th.mono { text-align: left; }
figure { margin: 12px 0; } figcaption { color: #555; font-size: 13px; }
img { max-width: 100%; border: 1px solid #eee; }
.warn { background: #fff4e5; border-left: 5px solid #e69500; padding: 8px 14px; margin: 8px 0; }
.ok { background: #eaf7ea; border-left: 5px solid #3c9a3c; padding: 8px 14px; margin: 8px 0; }
pre { background: #f3f3f3; padding: 8px; overflow-x: auto; font-size: 12px; }
"""


def esc(x: Any) -> str:
    """Escape any value as HTML text."""
    return html.escape(str(x), quote=True)


def fmt(x: Any) -> str:
    """Numbers to 4 significant digits, NaN/None as a dash."""
    if x is None:
        return "–"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return "–" if math.isnan(x) else f"{x:.4g}"
    return str(x)


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    text_cols: Sequence[int] = (0,),
    mono_cols: Sequence[int] = (),
) -> str:
    """An HTML table; columns in ``text_cols`` are left-aligned, ``mono_cols`` monospace."""

    def cls(i: int) -> str:
        if i in mono_cols:
            return ' class="mono"'
        return ' class="text"' if i in text_cols else ""

    head = "".join(f"<th{cls(i)}>{esc(h)}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f"<td{cls(i)}>{esc(fmt(c))}</td>" for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def img(png: bytes, alt: str, caption: str | None = None) -> str:
    """A figure whose PNG is embedded as a base64 data URI (the page needs no other file)."""
    data = base64.b64encode(png).decode("ascii")
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{esc(alt)}" src="data:image/png;base64,{data}">{cap}</figure>'


def fig_png(make: Any, *args: Any, **kwargs: Any) -> bytes:
    """Call a plotting function with an in-memory file as its ``path``; return the PNG."""
    buf = io.BytesIO()
    make(*args, path=buf, **kwargs)
    return buf.getvalue()


def warnings_box(messages: Sequence[str], ok: str) -> str:
    """A box listing warnings, or a green one saying ``ok`` when there are none."""
    if not messages:
        return f'<div class="ok">{esc(ok)}</div>'
    items = "".join(f"<li>{esc(m)}</li>" for m in messages)
    return f'<div class="warn"><strong>Warnings</strong><ul>{items}</ul></div>'


def details(summary: str, body: str) -> str:
    """A collapsed block (e.g. DOT source)."""
    return f"<details><summary>{esc(summary)}</summary>{body}</details>"


def section(sid: str, title: str, body: str) -> str:
    """A titled section with an id (the navigation links to it)."""
    return f'<section id="{esc(sid)}"><h2>{esc(title)}</h2>{body}</section>'


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str, str]]) -> str:
    """The whole page: header, navigation and ``(id, title, body)`` sections."""
    nav = "".join(f'<a href="#{esc(sid)}">{esc(t)}</a>' for sid, t, _ in sections)
    body = "".join(section(sid, t, b) for sid, t, b in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{esc(title)}</h1><div>{esc(subtitle)}</div><nav>{nav}</nav></header>"
        f"<main>{body}</main></body></html>\n"
    )
