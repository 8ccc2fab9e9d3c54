"""DOT text of an address graph and its rendering by Graphviz."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rotalumis.diagnostics import (
    AddressStructure,
    GraphvizError,
    graphviz_available,
    render_dot,
    to_dot,
)

needs_dot = pytest.mark.skipif(not graphviz_available(), reason="Graphviz `dot` not installed")


def test_dot_has_every_node_and_labelled_edge(branching_prior: Any) -> None:
    s = AddressStructure.from_result(branching_prior)
    g = s.graph(top=3)
    dot = to_dot(g, 'Branching "prior"')
    assert dot.startswith('digraph "Branching \\"prior\\"" {') and dot.rstrip().endswith("}")
    for node, nid in g.ids.items():
        if node in g.visits:
            assert re.search(rf"^  {nid} \[label=\"{nid}\\n", dot, re.M), nid
    edges = re.findall(r"^  (\w+) -> (\w+) \[label=\"([0-9.]+)\"", dot, re.M)
    assert len(edges) == len(g.edges)
    inverse = {v: k for k, v in g.ids.items()}
    for a, b, p in edges:
        src, dst = inverse.get(a, a), inverse.get(b, b)
        assert float(p) == pytest.approx(g.probability(src, dst), abs=5e-4)
    assert "Poisson · n" in dot and "shape=ellipse" in dot  # the observe site


@needs_dot
def test_render_svg_and_png_keeps_the_dot(branching_prior: Any, tmp_path: Path) -> None:
    from PIL import Image

    g = AddressStructure.from_result(branching_prior).graph(collapse=True)
    files = render_dot(to_dot(g, "sites"), tmp_path / "graphs" / "sites")
    assert files["dot"].read_text() == to_dot(g, "sites")
    svg = ET.parse(files["svg"]).getroot()
    texts = {t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")}
    assert {"S1", "S2", "S3", "start", "end"} <= texts
    with Image.open(files["png"]) as im:
        pixels = np.asarray(im.convert("L"), dtype=float)
    assert pixels.shape[0] > 200 and pixels.std() > 10  # drawn, not blank


@needs_dot
def test_dot_errors_are_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(GraphvizError, match=r"bad\.dot"):
        render_dot("digraph { this is not dot", tmp_path / "bad")
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` on PATH
    with pytest.raises(GraphvizError, match="not installed"):
        render_dot("digraph {}", tmp_path / "g")
    assert (tmp_path / "g.dot").is_file()  # the DOT is still kept
