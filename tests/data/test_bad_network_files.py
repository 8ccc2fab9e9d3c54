"""Damaged and crafted inference-network files: DatasetError naming the file (issue 12, 7).

A file with the right format tag but a missing or malformed configuration or state dict
used to fail with a raw KeyError/RuntimeError, and a configuration with huge sizes would
allocate a giant network before noticing. The table holds those cases; the fuzz replaces or
deletes every configuration field; loading must never build anything the state dict does
not back (sizes are checked on the ``meta`` device first).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from file_fuzz import check_truncations, mutations

from rotalumis.core import DatasetError
from rotalumis.nn import InferenceNetwork
from rotalumis.nn.embeddings import ObservationSpec
from rotalumis.nn.heads import SiteSpec
from rotalumis.nn.network import NetworkConfig

pytestmark = pytest.mark.timeout(120)
torch.set_num_threads(1)

SIZES = {"observation_dim": 8, "lstm_dim": 8, "address_dim": 4, "value_dim": 4}


@pytest.fixture(scope="module")
def payload() -> dict[str, Any]:
    config = NetworkConfig(observations=(ObservationSpec("obs", dim=4, depth=1),), **SIZES)
    sites = (
        SiteSpec("mu", "Normal", "real", 1, (), 2),
        SiteSpec("k", "Categorical", "cat", 1, (), 3, categories=3),
    )
    return InferenceNetwork(config, sites).payload()


def _save(payload: dict[str, Any], path: Path) -> Path:
    torch.save(payload, path)
    return path


def _with_config(payload: dict[str, Any], change: Any) -> dict[str, Any]:
    cfg = json.loads(payload["config"])
    change(cfg)
    return {**payload, "config": json.dumps(cfg)}


def _drop_state(key: str) -> Any:
    return lambda p: {**p, "state_dict": {k: v for k, v in p["state_dict"].items() if k != key}}


def _set_state(key: str, value: Any) -> Any:
    return lambda p: {**p, "state_dict": {**p["state_dict"], key: value}}


CASES: dict[str, Any] = {
    "config missing": lambda p: {k: v for k, v in p.items() if k != "config"},
    "config not JSON": lambda p: {**p, "config": "{oops"},
    "config a number": lambda p: {**p, "config": "12"},
    "config nested 100000 deep": lambda p: {**p, "config": "[" * 100_000 + "]" * 100_000},
    "network section missing": lambda p: _with_config(p, lambda c: c.pop("network")),
    "sites not a list": lambda p: _with_config(p, lambda c: c.update(sites={"a": 1})),
    "lstm_dim 10**9": lambda p: _with_config(p, lambda c: c["network"].update(lstm_dim=10**9)),
    "lstm_dim 60000 (in range, not backed by weights)": lambda p: _with_config(
        p, lambda c: c["network"].update(lstm_dim=60_000)
    ),
    "lstm_dim a string": lambda p: _with_config(p, lambda c: c["network"].update(lstm_dim="8")),
    "lstm_depth negative": lambda p: _with_config(p, lambda c: c["network"].update(lstm_depth=-1)),
    "unknown network field": lambda p: _with_config(p, lambda c: c["network"].update(bogus=1)),
    "no observations": lambda p: _with_config(p, lambda c: c["network"].update(observations=[])),
    "observation shape negative": lambda p: _with_config(
        p, lambda c: c["network"]["observations"][0].update(shape=[-3])
    ),
    "observation embedding unknown": lambda p: _with_config(
        p, lambda c: c["network"]["observations"][0].update(embedding="rnn")
    ),
    "one address too many": lambda p: _with_config(p, lambda c: c["sites"].append(c["sites"][0])),
    "one address too few": lambda p: _with_config(p, lambda c: c["sites"].pop()),
    "site head unknown": lambda p: _with_config(p, lambda c: c["sites"][0].update(head="magic")),
    "site numel against value_shape": lambda p: _with_config(
        p, lambda c: c["sites"][0].update(numel=6)
    ),
    "site categories 10**12": lambda p: _with_config(
        p, lambda c: c["sites"][1].update(categories=10**12)
    ),
    "state dict missing": lambda p: {k: v for k, v in p.items() if k != "state_dict"},
    "state dict a list": lambda p: {**p, "state_dict": [1, 2]},
    "state entry missing": _drop_state("lstm.weight_hh_l0"),
    "state entry of the wrong shape": _set_state("lstm.weight_hh_l0", torch.zeros(3, 3)),
    "state entry not a tensor": _set_state("lstm.weight_hh_l0", [1.0, 2.0]),
    "state entry unexpected": _set_state("lstm.extra", torch.zeros(1)),
    "a list instead of a payload": lambda p: [1, 2, 3],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_network_file_is_a_dataset_error_naming_it(
    payload: dict[str, Any], tmp_path: Path, case: str
) -> None:
    path = _save(CASES[case](payload), tmp_path / "net.pt")
    with pytest.raises(DatasetError) as info:
        InferenceNetwork.load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_network_config_fuzz_and_truncation(payload: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "net.pt"
    tried = 0
    for what, cfg in mutations(json.loads(payload["config"])):
        _save({**payload, "config": json.dumps(cfg)}, path)
        try:
            net = InferenceNetwork.load(path)
        except DatasetError as exc:
            assert str(path) in str(exc), what
        else:  # a harmless change (an address's name...): the weights all loaded
            assert len(net.state_dict()) == len(payload["state_dict"]), what
        tried += 1
    data = _save(payload, path).read_bytes()
    tried += check_truncations(path, data, InferenceNetwork.load, DatasetError)
    assert tried > 300


def test_a_sound_file_still_loads(payload: dict[str, Any], tmp_path: Path) -> None:
    net = InferenceNetwork.load(_save(payload, tmp_path / "net.pt"))
    for k, v in payload["state_dict"].items():
        assert torch.equal(net.state_dict()[k], v), k
