"""The committed generated code is exactly what ``make ppx-schema`` makes from the schema."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from ppx_helpers import ROOT

GENERATED = ROOT / "src" / "rotalumis" / "remote" / "ppx_generated"


@pytest.mark.timeout(120)
def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    if shutil.which("flatc") is None or shutil.which("make") is None:
        pytest.skip("flatc (apt-get install flatbuffers-compiler) or make is not installed")
    out = tmp_path / "ppx_generated"
    subprocess.run(
        ["make", "-s", "ppx-schema", f"PPX_GENERATED={out}"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=100,
    )
    fresh = {p.name: p.read_text() for p in out.glob("*.py")}
    committed = {p.name: p.read_text() for p in GENERATED.glob("*.py")}
    assert fresh == committed, "run `make ppx-schema` and commit the result"
    assert len(committed) == 27  # 24 tables, 2 unions, __init__
