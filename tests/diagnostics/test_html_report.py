"""The HTML report: written by `rotalumis run --report` and `rotalumis report`, self-contained,
rendered by headless Chromium with every image loaded."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from rotalumis.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
MODELS = str(ROOT / "examples" / "reference_models.py")
SECTIONS = ("summary", "diagnostics", "plots", "addresses")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Page(HTMLParser):
    """Collects the ids of sections and the src of images."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a.get("id") or "")
        if tag == "img":
            self.images.append(a.get("src") or "")


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def mcmc_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lmh")
    r = cli(
        "run", f"{MODELS}:branching", "-e", "lmh", "-n", "300", "--chains", "2",
        "-o", "obs=2", "--seed", "0", "--out", str(out), "--report", "-q",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert f"report written to {out / 'report.html'}" in r.output
    return out


def test_run_report_writes_a_self_contained_page(mcmc_dir: Path) -> None:
    from PIL import Image

    html = (mcmc_dir / "report.html").read_text()
    page = parse(html)
    assert page.sections == list(SECTIONS)
    # posterior, traces, autocorrelation, R-hat, log density, two address graphs
    assert len(page.images) == 7
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as im:
            im.load()
            assert im.width > 100 and im.height > 100
    assert 'src="http' not in html and "<link" not in html  # nothing fetched from outside
    for text in ("R-hat", "ESS bulk", "Trace types", "Address dictionary", "DOT source"):
        assert text in html
    # the address structure was kept next to the results, graphs with their DOT
    assert (mcmc_dir / "address_structure.json").is_file()
    for ext in ("dot", "svg", "png"):
        assert (mcmc_dir / "address_graphs" / f"top_types.{ext}").is_file()


def test_report_command_on_a_run_without_traces(tmp_path: Path) -> None:
    out = tmp_path / "is"
    r = cli("run", f"{MODELS}:unknown_mean", "-n", "500", "-o", "obs0=8", "-o", "obs1=9",
            "--seed", "1", "--out", str(out), "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    r = cli("report", str(out), "--truth", "mu=7.25", "--out", str(tmp_path / "r.html"))
    assert r.exit_code == 0, r.output
    html = (tmp_path / "r.html").read_text()
    assert parse(html).sections == list(SECTIONS)
    assert "Pareto k" in html and "Not recorded" in html
    # prior proposal far from the posterior: the weight diagnostics warn
    assert "diagnostic warning(s)" in html and "heavy tail" in html


def test_report_errors(tmp_path: Path) -> None:
    r = cli("report", str(tmp_path))
    assert r.exit_code == 2 and "empirical.npz not found" in r.output
    r = cli("report", str(tmp_path), "--truth", "mu")
    assert r.exit_code == 2 and "NAME=NUMBER" in r.output
    r = cli("run", f"{MODELS}:unknown_mean", "--report", "-q")
    assert r.exit_code == 2 and "--report needs --out" in r.output


# Marks, once the page has loaded, whether each image decoded (natural width > 0).
CHECK_IMAGES = """<script>
window.addEventListener('load', () => {
  const ok = [...document.images].map(i => (i.complete && i.naturalWidth > 0) ? 1 : 0);
  document.body.setAttribute('data-images', ok.join(','));
});
</script></body>"""


def chromium(args: list[str], tmp: Path) -> str:
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp / 'chromium-profile'}",
    ]  # fmt: skip
    assert CHROMIUM is not None
    proc = subprocess.run(
        [CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=90, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="Debian `chromium` not installed")
def test_report_renders_in_headless_chromium(mcmc_dir: Path, tmp_path: Path) -> None:
    from PIL import Image

    report = mcmc_dir / "report.html"
    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text().replace("</body>", CHECK_IMAGES, 1))
    dom = chromium(["--dump-dom", probe.as_uri()], tmp_path)
    flags = re.search(r'data-images="([01,]*)"', dom)
    assert flags is not None, "the page did not finish loading"
    assert flags.group(1).split(",") == ["1"] * 7  # every image decoded by the browser
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in dom
    shot = tmp_path / "shot.png"
    chromium([f"--screenshot={shot}", "--window-size=1280,2000", report.as_uri()], tmp_path)
    with Image.open(shot) as im:
        pixels = np.asarray(im.convert("RGB"), dtype=float)
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels.std() > 20  # not blank
    # the dark header band and the white page are both there
    assert (pixels[:40].mean(axis=(0, 1)) < 100).all() and pixels[300:].mean() > 200
