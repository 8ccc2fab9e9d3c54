"""The atomic-write helper every writer uses (issue 12, defect 10): unpredictable temporary
names, nothing left behind by a failed write, and what a killed writer leaves is recognised
and removed by the next write (see ``tests/data/test_file_hygiene.py`` for the writers)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rotalumis.core import files
from rotalumis.core.files import (
    atomic_write,
    is_temporary,
    remove_stale_temporaries,
    write_text_atomic,
)
from rotalumis.diagnostics.addresses import AddressStructure

WRITER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from rotalumis.core.files import atomic_write
    with atomic_write(sys.argv[1], "w") as fh:
        fh.write("half")
        fh.flush()
        print("writing", flush=True)
        time.sleep(60)
    """
)


def test_killed_writer_leaves_a_recognisable_temporary_that_the_next_write_removes(
    tmp_path: Path,
) -> None:
    target = tmp_path / "summary.json"
    target.write_text("{}")
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER_SCRIPT, str(target)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    stale = [p for p in tmp_path.iterdir() if p != target]
    assert len(stale) == 1 and is_temporary(stale[0].name) and str(proc.pid) in stale[0].name
    assert target.read_text() == "{}"  # the old content, whole
    write_text_atomic(target, json.dumps({"new": 1}))
    assert sorted(tmp_path.iterdir()) == [target] and json.loads(target.read_text()) == {"new": 1}


def test_temporaries_of_live_processes_and_other_files_are_kept(tmp_path: Path) -> None:
    live = tmp_path / f".x.json.{os.getppid()}-{files._HOST}.abc123.tmp"
    other_host = tmp_path / ".x.json.999999999-elsewhere.abc123.tmp"
    mine_dead = tmp_path / ".x.json.999999999.tmp"  # the old naming, of a dead process
    plain = tmp_path / "notes.tmp"
    for p in (live, other_host, mine_dead, plain):
        p.write_text("")
    removed = remove_stale_temporaries(tmp_path)
    assert removed == [mine_dead]
    assert live.exists() and other_host.exists() and plain.exists()


def test_a_failed_write_leaves_the_target_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "structure.json"
    AddressStructure().save(target)
    before = target.read_bytes()
    with pytest.raises(RuntimeError), atomic_write(target) as fh:
        fh.write(b"partial")
        raise RuntimeError("disk on fire")
    assert target.read_bytes() == before and sorted(tmp_path.iterdir()) == [target]
    with pytest.raises(ValueError, match="mode"), atomic_write(target, "a"):
        pass
