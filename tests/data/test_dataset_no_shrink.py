"""A smaller ``num_traces`` never rewrites a dataset's manifest down (issue 12, defect 9).

Before, ``generate_dataset(..., n)`` with ``n`` below the dataset's size rewrote the manifest
to ``n`` traces, orphaning the shards beyond it without a word.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rotalumis.core import DatasetError
from rotalumis.data import TraceDataset, generate_dataset
from rotalumis.models import UnknownMean


def test_a_smaller_size_is_an_error_and_the_dataset_is_untouched(tmp_path: Path) -> None:
    path = tmp_path / "d"
    generate_dataset(UnknownMean(), path, 40, seed=1, traces_per_shard=10)
    manifest = (path / "dataset.json").read_text()
    with pytest.raises(DatasetError, match="is a dataset of 40 traces: asking for 30 would shrink"):
        generate_dataset(UnknownMean(), path, 30, seed=1, traces_per_shard=10)
    assert (path / "dataset.json").read_text() == manifest
    assert len(TraceDataset(path)) == 40
    # the same size resumes, a larger one extends
    generate_dataset(UnknownMean(), path, 40, seed=1, traces_per_shard=10)
    generate_dataset(UnknownMean(), path, 50, seed=1, traces_per_shard=10)
    assert len(TraceDataset(path)) == 50
