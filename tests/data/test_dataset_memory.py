"""Streaming a dataset larger than a memory cap keeps the resident set bounded (measured)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from rotalumis.core import Model, Normal, observe, sample
from rotalumis.data import TraceDataset, generate_dataset

torch.set_num_threads(1)

PIXELS = 4000  # float64 per trace in the observation: 32 kB
NUM_TRACES = 8000  # about 244 MB decoded
CAP_MB = 96  # growth of the peak RSS allowed while streaming everything


class BigObservation(Model):
    """One latent seen through a 4000-pixel noisy image."""

    def forward(self) -> None:
        b = sample(Normal(0.0, 1.0), name="b")
        observe(Normal(b * torch.ones(PIXELS, dtype=torch.float64), 1.0), name="image")


STREAM = textwrap.dedent(
    """
    import json, sys
    import torch
    from rotalumis.data import TraceDataset

    def hwm_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    torch.set_num_threads(1)
    ds = TraceDataset(sys.argv[1])
    first = next(ds.iter_batches(64, seed=0, buffer_size=512))  # warm up allocators
    before = hwm_mb()
    traces, pixels = 0, 0.0
    for batch in ds.iter_batches(64, seed=1, buffer_size=512):
        traces += batch.size
        pixels += float(batch.observations["image"].sum())
    print(json.dumps({"traces": traces, "growth_mb": hwm_mb() - before, "before_mb": before}))
    """
)


def test_streaming_memory_is_bounded(tmp_path: Path) -> None:
    directory = tmp_path / "big"
    generate_dataset(BigObservation(), directory, NUM_TRACES, seed=0, traces_per_shard=500)
    decoded_mb = NUM_TRACES * PIXELS * 8 / 2**20
    assert decoded_mb > 2 * CAP_MB  # the data could not fit under the cap
    assert len(TraceDataset(directory)) == NUM_TRACES
    out = subprocess.run(
        [sys.executable, "-c", STREAM, str(directory)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["traces"] == NUM_TRACES
    assert result["growth_mb"] < CAP_MB, result
