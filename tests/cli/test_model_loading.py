"""Models loaded from FILE.py:NAME have the same addresses in every process (issue 11, item 4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

SIMULATOR = textwrap.dedent(
    """
    import numpy as np

    from rotalumis.intercept import InterceptedModel


    def shock():
        return np.random.normal(0.0, 1.0)


    def simulate():
        return shock() + np.random.uniform()


    model = InterceptedModel(simulate, name="Probe")
    """
)

PROBE = textwrap.dedent(
    """
    import json, sys
    from rotalumis.cli.loading import load_model

    model = load_model(sys.argv[1])
    print(json.dumps(list(model.get_trace(seed=0).trace_type)))
    """
)


def _addresses(target: str, cwd: Path, hash_seed: str) -> list[str]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, target],
        cwd=cwd, env=env, capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    return list(json.loads(out.stdout.splitlines()[-1]))


def test_addresses_of_a_loaded_file_are_the_same_in_every_process(tmp_path: Path) -> None:
    (tmp_path / "probe_sim.py").write_text(SIMULATOR)
    # on main the module was named with hash() of the path, salted per process: the frames
    # of the file's helper functions (shock) carried a different module name in each run
    first = _addresses(f"{tmp_path / 'probe_sim.py'}:model", tmp_path, "1")
    second = _addresses(f"{tmp_path / 'probe_sim.py'}:model", tmp_path, "2")
    assert len(first) == 2
    assert first == second
    assert any("probe_sim.shock" in a for a in first), first
    # and they are the addresses of `import probe_sim` in Python
    imported = textwrap.dedent(
        """
        import json, probe_sim
        print(json.dumps(list(probe_sim.model.get_trace(seed=0).trace_type)))
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    out = subprocess.run(
        [sys.executable, "-c", imported], cwd=tmp_path, env=env, capture_output=True,
        text=True, check=True, timeout=300,
    )  # fmt: skip
    assert json.loads(out.stdout.splitlines()[-1]) == first


def test_a_file_named_like_an_installed_module_gets_a_stable_private_name(
    tmp_path: Path,
) -> None:
    (tmp_path / "json.py").write_text(SIMULATOR)
    first = _addresses(f"{tmp_path / 'json.py'}:model", tmp_path.parent, "1")
    second = _addresses(f"{tmp_path / 'json.py'}:model", tmp_path.parent, "2")
    assert first == second
    assert all("_rotalumis_user_json_" in a for a in first), first
