"""The HTML report shows a black-box optimization saved in the results directory."""

from __future__ import annotations

import base64
import io

import numpy as np
import torch
from PIL import Image

from rotalumis.diagnostics import write_report
from rotalumis.optimize import FiniteDifferenceConfig, optimize_blackbox

torch.set_num_threads(1)


def bowl(a, b):
    return np.array([float((a - 1.0) ** 2 + (b + 0.5) ** 2) + np.random.normal(0.0, 0.1)])


def first(y):
    return y[:, 0]


def test_report_of_a_directory_with_only_an_optimization(tmp_path):
    cfg = FiniteDifferenceConfig(lr=0.2)
    result = optimize_blackbox(
        bowl, {"a": 2.5, "b": 0.5}, first, "fd", budget=40, config=cfg, seed=0
    )
    result.save(tmp_path)
    page = write_report(tmp_path).read_text()
    assert '<section id="optimization">' in page
    for text in ("40 of a budget of 40", '<td class="text">fd</td>', "Settings", ">a<", ">b<"):
        assert text in page, text
    src = page.split('src="data:image/png;base64,', 1)[1].split('"', 1)[0]
    with Image.open(io.BytesIO(base64.b64decode(src))) as im:
        im.load()
        assert im.width > 500
    assert 'src="http' not in page


def test_inference_report_gains_an_optimization_section(tmp_path):
    from pathlib import Path

    from typer.testing import CliRunner

    from rotalumis.cli.main import app

    models = Path(__file__).resolve().parents[2] / "examples" / "reference_models.py"
    args = ["run", f"{models}:branching", "-e", "is", "-n", "200", "-o", "obs=2", "--seed", "0"]
    run = CliRunner().invoke(app, [*args, "--out", str(tmp_path), "-q"])
    assert run.exit_code == 0, run.output
    before = write_report(tmp_path).read_text()
    assert '<section id="optimization">' not in before
    optimize_blackbox(bowl, {"a": 2.5, "b": 0.5}, first, "fd", budget=8, seed=0).save(tmp_path)
    after = write_report(tmp_path).read_text()
    ids = [s.split('"', 1)[0] for s in after.split('<section id="')[1:]]
    assert ids == ["summary", "diagnostics", "plots", "addresses", "optimization"]
